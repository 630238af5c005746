// Copy a trained model directory with its float32 weights stored as float16: half the bytes, and the
// loader widens them back at load (models/checkpoint.ts), so only storage precision changes. This is how
// the bundled default model stays small enough to ship in the package.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, type LazyTensor } from '../io/safetensors.js';
import { floatsToHalf, toFloat32 } from '../io/tensor.js';
import { writeModelDir } from './checkpoint-io.js';

/** Files of an HF model directory that travel with the weights. */
const MODEL_FILES = /^(config|preprocessor_config|tokenizer|tokenizer_config|special_tokens_map|vocab)\.json$|^merges\.txt$/;

export function exportHalf(srcDir: string, dstDir: string): { tensors: number; bytes: number } {
  const src = join(srcDir, 'model.safetensors');
  if (!existsSync(src)) throw new Error(`${srcDir}: no model.safetensors to export`);
  const f = new SafetensorsFile(src);
  let bytes = 0;
  try {
    const tensors: LazyTensor[] = f.keys().map((name) => {
      const t = f.get(name);
      if (t.dtype !== 'float32') return { name, dtype: t.dtype, shape: t.shape, data: () => t.bytes };
      return {
        name, dtype: 'float16', shape: t.shape,
        data: () => {
          const h = floatsToHalf(toFloat32(t));
          bytes += h.byteLength;
          return h;
        },
      };
    });
    const files = readdirSync(srcDir).filter((file) => MODEL_FILES.test(file)).map((file) => join(srcDir, file));
    writeModelDir(dstDir, tensors, { files });
    return { tensors: tensors.length, bytes };
  } finally {
    f.close();
  }
}
