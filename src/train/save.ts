// Write a trained model as an HF CLIPModel directory (config.json + model.safetensors) that our loader,
// transformers and transformers.js read like the original: tensors sorted by name, through the one
// model-directory writer (checkpoint-io.ts).
import { eagerTensors, writeModelDir } from './checkpoint-io.js';
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
  const sorted = [...tensors].sort((a, b) => a.name.localeCompare(b.name));
  sorted.forEach((t, i) => {
    if (i && sorted[i - 1]!.name === t.name) throw new Error(`saveHfCheckpoint: tensor "${t.name}" given twice`);
  });
  writeModelDir(dir, eagerTensors(sorted), { config, files: extraFiles });
}
