// Write a trained model as an HF CLIPModel directory (config.json + model.safetensors) that our loader,
// transformers and transformers.js read like the original.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeSafetensors } from '../io/safetensors.js';
import type { RawTensor } from '../io/tensor.js';
import type { Weight } from '../models/weights.js';
import { hfKeys, toCheckpointLayout, type KeyMapper, type NamedTensor } from './params.js';

/**
 * `params`: canonical parameters (converted to HF layout here) or tensors already in HF layout.
 * `extraFiles`: paths copied in as they are (tokenizer.json, preprocessor_config.json, ...) or
 * name -> contents.
 */
export function saveHfCheckpoint(
  dir: string,
  params: Map<string, Weight> | NamedTensor[],
  config: Record<string, unknown>,
  extraFiles: string[] | Record<string, string | Uint8Array> = [],
  keys: KeyMapper = hfKeys,
): void {
  mkdirSync(dir, { recursive: true });
  const tensors = Array.isArray(params) ? params : [...params].flatMap(([name, w]) => toCheckpointLayout(name, w, keys));
  const out = new Map<string, RawTensor>();
  for (const t of [...tensors].sort((a, b) => a.name.localeCompare(b.name))) {
    if (out.has(t.name)) throw new Error(`saveHfCheckpoint: tensor "${t.name}" given twice`);
    out.set(t.name, { dtype: 'float32', shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  }
  writeSafetensors(join(dir, 'model.safetensors'), out, { format: 'pt' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  if (Array.isArray(extraFiles)) for (const p of extraFiles) copyFileSync(p, join(dir, basename(p)));
  else for (const [name, content] of Object.entries(extraFiles)) writeFileSync(join(dir, name), content);
}
