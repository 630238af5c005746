// Write a trained model as an HF CLIPModel directory (config.json + model.safetensors) that our loader,
// transformers and transformers.js read like the original: canonical parameters in HF layout, sorted by name,
// through the one model-directory writer (checkpoint-io.ts).
import type { Weight } from '../models/weights.js';
import { eagerTensors, writeModelDir } from './checkpoint-io.js';
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
  const tensors = Array.isArray(params) ? params : [...params].flatMap(([name, w]) => toCheckpointLayout(name, w, keys));
  const sorted = [...tensors].sort((a, b) => a.name.localeCompare(b.name));
  sorted.forEach((t, i) => {
    if (i && sorted[i - 1]!.name === t.name) throw new Error(`saveHfCheckpoint: tensor "${t.name}" given twice`);
  });
  writeModelDir(dir, eagerTensors(sorted), { config, files: extraFiles });
}
