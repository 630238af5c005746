// hf-clip-tiny written as a sharded checkpoint (for the sharded-weights and hub tests).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import type { RawTensor } from '../src/io/tensor.js';
import { fixture } from './fixtures.js';

export const META = ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json'];

/**
 * hf-clip-tiny's model.safetensors as `parts` shards `model-0000i-of-0000n.safetensors` plus the index, as
 * save_pretrained writes them; `edit` may rewrite the weight map (hostile variants).
 */
export function writeShardedHfClip(dir: string, parts = 3, edit?: (wm: Record<string, string>) => void): string {
  mkdirSync(dir, { recursive: true });
  for (const f of META) copyFileSync(fixture('hf-clip-tiny', f), join(dir, f));
  const src = new SafetensorsFile(fixture('hf-clip-tiny', 'model.safetensors'));
  const names = src.keys().sort();
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(names.length / parts);
  for (let i = 0; i < parts; i++) {
    const shard = `model-${String(i + 1).padStart(5, '0')}-of-${String(parts).padStart(5, '0')}.safetensors`;
    const m = new Map<string, RawTensor>();
    for (const n of names.slice(i * per, (i + 1) * per)) {
      m.set(n, src.get(n));
      weightMap[n] = shard;
    }
    writeSafetensors(join(dir, shard), m, { format: 'pt' });
  }
  src.close();
  edit?.(weightMap);
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2));
  return dir;
}

