// Model weights and optimizer state of a trainer, written tensor by tensor under the checkpoint's own names
// (the trainer's parameters are the checkpoint's tensors as stored; ClipTrainer.loadState reads them back).
import type { AdamWState } from './adamw.js';
import { writeSafetensorsLazily, type LazyTensor } from '../io/safetensors.js';
import type { Param } from './trainer.js';

const lazy = (values: [string, { data: Float32Array; dims: number[] }][], prefix = ''): LazyTensor[] =>
  values.map(([name, v]) => ({ name: prefix + name, shape: v.dims, data: () => v.data }));

export function writeModelWeights(path: string, params: Map<string, Param>): void {
  writeSafetensorsLazily(path, lazy([...params].sort(([a], [b]) => a.localeCompare(b))), { format: 'pt' });
}

/** exp_avg/<name>, exp_avg_sq/<name> and the step in the metadata: what loadAdamWState reads. */
export function writeOptimizerState(path: string, state: AdamWState, params: Map<string, Param>): void {
  const of = (moments: Map<string, Float32Array>) =>
    [...moments].map(([n, data]): [string, { data: Float32Array; dims: number[] }] => [n, { data, dims: params.get(n)!.dims }]);
  writeSafetensorsLazily(path, [...lazy(of(state.m), 'exp_avg/'), ...lazy(of(state.v), 'exp_avg_sq/')], { format: 'clip-ts-adamw', step: String(state.step) });
}
