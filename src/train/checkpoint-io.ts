// The one writer of model directories and training state: every saved model (a training checkpoint, the
// final model, saveHfCheckpoint, the fp16 export of the bundled model) is written by writeModelDir, and every
// optimizer state file by writeOptimizerState. Weights go tensor by tensor under the checkpoint's own names
// and layout (the trainer's parameters are the checkpoint's tensors as stored; ClipTrainer.loadState and
// the loader read them back).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AdamWState } from './adamw.js';
import type { NamedTensor } from './params.js';
import { writeSafetensorsLazily, type LazyTensor } from '../io/safetensors.js';
import type { RawTensor } from '../io/tensor.js';
import { openWeights } from '../models/checkpoint.js';
import type { Param } from './trainer.js';

/** What a model directory holds besides its weights. */
export interface ModelDirFiles {
  /** The weights file's name: model.safetensors (HF families, the default) or open_clip_model.safetensors. */
  weightsFile?: string;
  /** config.json, written as indented JSON (omit when `files` or `jsonFiles` has one). */
  config?: Record<string, unknown>;
  /** Other JSON files by name (open_clip_config.json, ...), written as indented JSON. */
  jsonFiles?: Record<string, unknown>;
  /** preprocessor_config.json, written as indented JSON. */
  preprocessor?: Record<string, unknown>;
  /** Other files (tokenizer, ...): paths copied in as they are, or name -> contents. */
  files?: string[] | Record<string, string | Uint8Array>;
}

const jsonFile = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

/**
 * Write a model directory: the weights file (the tensors in the order given, float32 unless a tensor says
 * otherwise), then config.json, the other JSON files, preprocessor_config.json and the other files.
 */
export function writeModelDir(dir: string, tensors: LazyTensor[], f: ModelDirFiles = {}): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensorsLazily(join(dir, f.weightsFile ?? 'model.safetensors'), tensors, { format: 'pt' });
  if (f.config) writeFileSync(join(dir, 'config.json'), jsonFile(f.config));
  for (const [name, json] of Object.entries(f.jsonFiles ?? {})) writeFileSync(join(dir, name), jsonFile(json));
  if (f.preprocessor) writeFileSync(join(dir, 'preprocessor_config.json'), jsonFile(f.preprocessor));
  if (Array.isArray(f.files)) for (const p of f.files) copyFileSync(p, join(dir, basename(p)));
  else for (const [name, content] of Object.entries(f.files ?? {})) writeFileSync(join(dir, name), content);
}

/** Tensors already in memory, as the writer takes them. */
export const eagerTensors = (tensors: NamedTensor[]): LazyTensor[] => tensors.map((t) => ({ name: t.name, shape: t.shape, data: () => t.data }));

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

/** A trainer's parameters and the unread tensors (see unreadTensors), under their checkpoint names, sorted. */
export function modelTensors(params: Map<string, Param>, unread: Map<string, RawTensor> = new Map()): LazyTensor[] {
  const tensors = lazy([...params]);
  for (const [name, t] of unread) if (!params.has(name)) tensors.push({ name, dtype: t.dtype, shape: t.shape, data: () => t.bytes });
  return tensors.sort((a, b) => a.name.localeCompare(b.name));
}

/** exp_avg/<name>, exp_avg_sq/<name> and the step in the metadata: what loadAdamWState reads. */
export function writeOptimizerState(path: string, state: AdamWState, params: Map<string, Param>): void {
  const of = (moments: Map<string, Float32Array>) =>
    [...moments].map(([n, data]): [string, { data: Float32Array; dims: number[] }] => [n, { data, dims: params.get(n)!.dims }]);
  writeSafetensorsLazily(path, [...lazy(of(state.m), 'exp_avg/'), ...lazy(of(state.v), 'exp_avg_sq/')], { format: 'clip-ts-adamw', step: String(state.step) });
}
