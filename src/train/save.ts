// Write a trained model as an HF CLIPModel directory (config.json + model.safetensors) that our loader,
// transformers and transformers.js read like the original.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeSafetensors } from '../io/safetensors.js';
import type { RawTensor } from '../io/tensor.js';
import type { NamedTensor } from './params.js';

/**
 * `tensors`: under their checkpoint names and in checkpoint layout (what ClipTrainer.checkpointTensors
 * gives for an HF model). `extraFiles`: paths copied in as they are (tokenizer.json,
 * preprocessor_config.json, ...) or name -> contents.
 */
export function saveHfCheckpoint(
  dir: string,
  tensors: NamedTensor[],
  config: Record<string, unknown>,
  extraFiles: string[] | Record<string, string | Uint8Array> = [],
): void {
  mkdirSync(dir, { recursive: true });
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
