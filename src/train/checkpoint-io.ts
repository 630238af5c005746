// Model weights and optimizer state of a trainer, written tensor by tensor under the checkpoint's own names
// (the trainer's parameters are the checkpoint's tensors as stored; ClipTrainer.loadState reads them back).
import type { AdamWState } from './adamw.js';
import { writeSafetensorsLazily, type LazyTensor } from '../io/safetensors.js';
import type { RawTensor } from '../io/tensor.js';
import { openWeights } from '../models/checkpoint.js';
import type { Param } from './trainer.js';

const lazy = (values: [string, { data: Float32Array; dims: number[] }][], prefix = ''): LazyTensor[] =>
  values.map(([name, v]) => ({ name: prefix + name, shape: v.dims, data: () => v.data }));

/**
 * Tensors of the checkpoint training starts from that the towers do not read (BatchNorm's
 * num_batches_tracked, HF's position_ids buffers, ...), read once at the start: every save writes them
 * back unchanged, so a saved model has the original's keys (and the file they came from may be a
 * checkpoint this run deletes later).
 */
export function unreadTensors(path: string, params: Map<string, Param>): Map<string, RawTensor> {
  const src = openWeights(path);
  try {
    return new Map(src.keys().filter((k) => !params.has(k)).map((k) => {
      const t = src.get(k);
      return [k, { dtype: t.dtype, shape: [...t.shape], bytes: t.bytes.slice() }];
    }));
  } finally {
    src.close?.();
  }
}

/** The parameters and the unread tensors (see unreadTensors), under their checkpoint names. */
export function writeModelWeights(path: string, params: Map<string, Param>, unread: Map<string, RawTensor> = new Map()): void {
  const tensors = lazy([...params]);
  for (const [name, t] of unread) if (!params.has(name)) tensors.push({ name, dtype: t.dtype, shape: t.shape, data: () => t.bytes });
  writeSafetensorsLazily(path, tensors.sort((a, b) => a.name.localeCompare(b.name)), { format: 'pt' });
}

/** exp_avg/<name>, exp_avg_sq/<name> and the step in the metadata: what loadAdamWState reads. */
export function writeOptimizerState(path: string, state: AdamWState, params: Map<string, Param>): void {
  const of = (moments: Map<string, Float32Array>) =>
    [...moments].map(([n, data]): [string, { data: Float32Array; dims: number[] }] => [n, { data, dims: params.get(n)!.dims }]);
  writeSafetensorsLazily(path, [...lazy(of(state.m), 'exp_avg/'), ...lazy(of(state.v), 'exp_avg_sq/')], { format: 'clip-ts-adamw', step: String(state.step) });
}
