// Model weights and optimizer state of a trainer, written tensor by tensor in HF checkpoint layout
// (the same names and layout as saveHfCheckpoint / ClipTrainer.saveState, which load them back).
import type { AdamWState } from './adamw.js';
import { hfKeys, toCheckpointLayout, toCheckpointLayoutShapes, type KeyMapper, type NamedTensor } from './params.js';
import { writeSafetensorsLazily, type LazyTensor } from '../io/safetensors.js';
import type { Param } from './trainer.js';

/** HF-layout tensors of canonical values; a packed qkv is converted once for its three parts. */
function lazyLayout(values: [string, { data: () => Float32Array; dims: number[] }][], keys: KeyMapper, prefix = ''): LazyTensor[] {
  let last: { name: string; parts: NamedTensor[] } | undefined;
  const convert = (name: string, data: () => Float32Array, dims: number[]) => {
    if (last?.name !== name) last = { name, parts: toCheckpointLayout(name, { data: data(), shape: dims }, keys) };
    return last.parts;
  };
  return values.flatMap(([name, v]) => toCheckpointLayoutShapes(name, v.dims, keys).map((s, k) => ({
    name: prefix + s.name, shape: s.shape,
    data: () => convert(name, v.data, v.dims)[k]!.data,
  })));
}

export function writeModelWeights(path: string, params: Map<string, Param>, keys: KeyMapper = hfKeys): void {
  writeSafetensorsLazily(path, lazyLayout([...params].map(([n, p]) => [n, { data: () => p.data, dims: p.dims }]), keys), { format: 'pt' });
}

/** exp_avg/<hf name>, exp_avg_sq/<hf name> and the step in the metadata: what loadAdamWState reads. */
export function writeOptimizerState(path: string, state: AdamWState, params: Map<string, Param>, keys: KeyMapper = hfKeys): void {
  const of = (moments: Map<string, Float32Array>) =>
    [...moments].map(([n, data]): [string, { data: () => Float32Array; dims: number[] }] => [n, { data: () => data, dims: params.get(n)!.dims }]);
  writeSafetensorsLazily(path, [
    ...lazyLayout(of(state.m), keys, 'exp_avg/'),
    ...lazyLayout(of(state.v), keys, 'exp_avg_sq/'),
  ], { format: 'clip-ts-adamw', step: String(state.step) });
}
