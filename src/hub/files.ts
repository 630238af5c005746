// Which files of a repo a CLIP checkpoint needs, mirroring what src/models/checkpoint.ts reads: the configs and
// tokenizer files, one set of weights (safetensors over .bin; open_clip's own when open_clip_config.json is
// there, since the loader then takes that path), and the ONNX towers only when asked or when nothing else exists.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HubError } from './errors.js';

export type Format = 'auto' | 'weights' | 'onnx';

/** Small files read when present. */
export const META_FILES = [
  'config.json', 'preprocessor_config.json', 'open_clip_config.json',
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'vocab.txt',
  // SigLIP (google/siglip-*) ships its sentencepiece model instead of a tokenizer.json.
  'spiece.model',
];
const HF_WEIGHTS = ['model.safetensors', 'pytorch_model.bin'];
const OPEN_CLIP_WEIGHTS = ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin', ...HF_WEIGHTS];

export const onnxTowers = (variant = '') => [`onnx/vision_model${variant}.onnx`, `onnx/text_model${variant}.onnx`];
// Towers over 2 GB keep their weights beside them; the name depends on the exporter.
const externalData = (f: string) => [`${f}_data`, `${f}.data`, f.replace(/\.onnx$/, '.onnx_data')];

export function pickFiles(repo: string, available: string[], format: Format = 'auto', variant = ''): string[] {
  const has = new Set(available);
  const openClip = has.has('open_clip_config.json');
  if (!openClip && !has.has('config.json')) {
    throw new HubError(`${repo} has neither config.json nor open_clip_config.json: not a CLIP checkpoint this toolkit can load ` +
      `(files: ${available.slice(0, 20).join(', ')}${available.length > 20 ? ', …' : ''})`, 'invalid');
  }
  const files = META_FILES.filter((f) => has.has(f));
  const weights = (openClip ? OPEN_CLIP_WEIGHTS : HF_WEIGHTS).find((f) => has.has(f));
  const towers = onnxTowers(variant);
  const onnxOk = !openClip && towers.every((f) => has.has(f));
  if (format === 'onnx' || (format === 'auto' && !weights)) {
    if (!onnxOk) {
      const what = format === 'onnx' ? `no ONNX towers (${towers.join(', ')})` : 'no weights (model.safetensors, pytorch_model.bin) and no ONNX towers';
      throw new HubError(`${repo} has ${what}`, 'not-found');
    }
    return [...files, ...towers, ...towers.flatMap(externalData).filter((f) => has.has(f))];
  }
  if (!weights) throw new HubError(`${repo} has no weights (looked for ${(openClip ? OPEN_CLIP_WEIGHTS : HF_WEIGHTS).join(', ')})`, 'not-found');
  return [...files, weights];
}

const present = (dir: string, f: string) => existsSync(join(dir, f)); // follows symlinks: a dangling one is absent

/** Enough to load (offline, or when the network fails): a config and the weights or towers asked for. */
export function snapshotUsable(dir: string, format: Format = 'auto', variant = ''): boolean {
  if (present(dir, 'open_clip_config.json')) return format !== 'onnx' && OPEN_CLIP_WEIGHTS.some((f) => present(dir, f));
  if (!present(dir, 'config.json')) return false;
  const onnxOk = onnxTowers(variant).every((f) => present(dir, f));
  const weights = HF_WEIGHTS.some((f) => present(dir, f));
  return format === 'onnx' ? onnxOk : format === 'weights' ? weights : weights || onnxOk;
}

/**
 * Complete as far as we can tell without asking the hub: usable, and every small file either there or marked
 * absent in .no_exist (written when we listed the repo). Caches filled by other tools may lack the markers;
 * they then cost one listing request, after which they are complete too.
 */
export function snapshotSettled(dir: string, noExist: (f: string) => string, format: Format = 'auto', variant = ''): boolean {
  return snapshotUsable(dir, format, variant) && META_FILES.every((f) => present(dir, f) || existsSync(noExist(f)));
}
