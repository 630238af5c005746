// The one writer of model directories and training state: every saved model (a training checkpoint, the
// final model, saveHfCheckpoint, the fp16 export of the bundled model) is written by writeModelDir, and every
// optimizer state file by writeOptimizerState. Weights go tensor by tensor in HF checkpoint layout (what the
// loader, transformers and ClipTrainer.loadState read back).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AdamWState } from './adamw.js';
import { hfKeys, toCheckpointLayout, toCheckpointLayoutShapes, type KeyMapper, type NamedTensor } from './params.js';
import { writeSafetensorsLazily, type LazyTensor } from '../io/safetensors.js';
import type { Param } from './trainer.js';

/** What a model directory holds besides its weights. */
export interface ModelDirFiles {
  /** config.json, written as indented JSON (omit when `files` copies one). */
  config?: Record<string, unknown>;
  /** preprocessor_config.json, written as indented JSON. */
  preprocessor?: Record<string, unknown>;
  /** Other files (tokenizer, ...): paths copied in as they are, or name -> contents. */
  files?: string[] | Record<string, string | Uint8Array>;
}

const jsonFile = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

/**
 * Write a model directory: model.safetensors (the tensors in the order given, float32 unless a tensor says
 * otherwise), then config.json, preprocessor_config.json and the other files.
 */
export function writeModelDir(dir: string, tensors: LazyTensor[], f: ModelDirFiles = {}): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensorsLazily(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  if (f.config) writeFileSync(join(dir, 'config.json'), jsonFile(f.config));
  if (f.preprocessor) writeFileSync(join(dir, 'preprocessor_config.json'), jsonFile(f.preprocessor));
  if (Array.isArray(f.files)) for (const p of f.files) copyFileSync(p, join(dir, basename(p)));
  else for (const [name, content] of Object.entries(f.files ?? {})) writeFileSync(join(dir, name), content);
}

/** Tensors already in memory, as the writer takes them. */
export const eagerTensors = (tensors: NamedTensor[]): LazyTensor[] => tensors.map((t) => ({ name: t.name, shape: t.shape, data: () => t.data }));

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

/** A trainer's parameters in HF checkpoint layout, converted as the writer reaches each one. */
export function modelTensors(params: Map<string, Param>, keys: KeyMapper = hfKeys): LazyTensor[] {
  return lazyLayout([...params].map(([n, p]) => [n, { data: () => p.data, dims: p.dims }]), keys);
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
