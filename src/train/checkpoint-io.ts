// Model weights and optimizer state of a trainer, written tensor by tensor under the checkpoint's own names
// (the trainer's parameters are the checkpoint's tensors as stored; ClipTrainer.loadState reads them back).
import type { AdamWState } from './adamw.js';
import { writeSafetensorsLazily, type LazyTensor } from '../io/safetensors.js';
import { openWeights } from '../models/checkpoint.js';
import type { Param } from './trainer.js';

const lazy = (values: [string, { data: Float32Array; dims: number[] }][], prefix = ''): LazyTensor[] =>
  values.map(([name, v]) => ({ name: prefix + name, shape: v.dims, data: () => v.data }));

/**
 * The parameters, plus every tensor of `passThrough` (the checkpoint training started from) that the
 * towers do not read (BatchNorm's num_batches_tracked, HF's position_ids buffers, ...), copied as stored:
 * a saved model has the original's keys.
 */
export function writeModelWeights(path: string, params: Map<string, Param>, passThrough?: string): void {
  const tensors = lazy([...params]);
  const src = passThrough ? openWeights(passThrough) : undefined;
  try {
    for (const key of src?.keys() ?? []) {
      if (params.has(key)) continue;
      const t = src!.get(key);
      tensors.push({ name: key, dtype: t.dtype, shape: t.shape, data: () => t.bytes });
    }
    writeSafetensorsLazily(path, tensors.sort((a, b) => a.name.localeCompare(b.name)), { format: 'pt' });
  } finally {
    src?.close?.();
  }
}

/** exp_avg/<name>, exp_avg_sq/<name> and the step in the metadata: what loadAdamWState reads. */
export function writeOptimizerState(path: string, state: AdamWState, params: Map<string, Param>): void {
  const of = (moments: Map<string, Float32Array>) =>
    [...moments].map(([n, data]): [string, { data: Float32Array; dims: number[] }] => [n, { data, dims: params.get(n)!.dims }]);
  writeSafetensorsLazily(path, [...lazy(of(state.m), 'exp_avg/'), ...lazy(of(state.v), 'exp_avg_sq/')], { format: 'clip-ts-adamw', step: String(state.step) });
}
