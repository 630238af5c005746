// The model flags every command shares, and loading a model from them.
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { BUNDLED_MODELS, DEFAULT_MODEL } from '../hub/bundled.js';
import { ClipModel, type LoadOptions } from '../runtime/clip-model.js';

export const positiveInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} expects a positive integer, got "${v}"`);
  return n;
};

export function modelOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <model>', 'checkpoint directory or file, hub id (org/name[@revision]) or alias (see `clip models`)', DEFAULT_MODEL)
    .option('--tokenizer <dir>', 'directory with tokenizer.json, for checkpoints that ship none')
    .option('--config <file>', 'open_clip_config.json for a bare OpenAI .pt/.bin file')
    .addOption(new Option('--format <format>', 'use the weights or the ONNX files of a directory that has both').choices(['auto', 'weights', 'onnx']).default('auto'))
    .addOption(new Option('--device <device>', 'execution provider (webgpu falls back to cpu when no adapter exists)').choices(['cpu', 'webgpu']).default('cpu'))
    .addOption(new Option('--dtype <dtype>', 'weights: fp32, fp16 (storage), int8 (quantized at load)').choices(['fp32', 'fp16', 'int8']).default('fp32'))
    .option('--threads <n>', 'intra-op threads', positiveInt('--threads'))
    .option('--allow-unverified', 'accept hub files that cannot be checked against a sha256 or git blob sha1 (as CLIP_HUB_ALLOW_UNVERIFIED=1)')
    .option('--no-cache', 'neither read nor write the cache of ONNX built from the weights (as CLIP_ONNX_CACHE=0)')
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'))
    .option('--fast-decode', 'decode large JPEGs at reduced scale (libvips shrink-on-load to 2x the model input) before the exact resize: much faster on phone photos, not bit-exact with the reference preprocessing (see the benchmarks in the README)')
    .option('--max-image-pixels <n>', 'refuse images with more pixels than this, read from the header (default 134217728, or CLIP_MAX_IMAGE_PIXELS)', positiveInt('--max-image-pixels'));
}

export function loadOptionsFrom(o: Record<string, any>): LoadOptions {
  // commander sets cache=true unless --no-cache is given; pass only the opt-out so CLIP_ONNX_CACHE still applies.
  return {
    device: o.device, threads: o.threads, tokenizerDir: o.tokenizer, configPath: o.config, format: o.format, dtype: o.dtype,
    ...(o.cache === false ? { cache: false } : {}),
    // Only the opt-in, so that CLIP_HUB_ALLOW_UNVERIFIED applies without the flag.
    ...(o.allowUnverified === true ? { hub: { allowUnverified: true } } : {}),
    ...(o.maxImagePixels ? { imageLimits: { maxPixels: o.maxImagePixels } } : {}),
    ...(o.fastDecode === true ? { fastDecode: true } : {}),
  };
}

/**
 * How a job or an index records its model: a bundled model by name and a hub id as given (both mean the
 * same thing from any directory), a local path made absolute (so the cwd does not matter).
 */
export function modelId(m: string): string {
  if (Object.hasOwn(BUNDLED_MODELS, m) || !existsSync(m)) return m;
  return resolve(m);
}

let toldBundled = false;

/** The bundled model knows emoji drawings only: say so once, since it answers photos confidently and wrongly. */
export function noteBundledModel(model: string): void {
  if (toldBundled || model !== DEFAULT_MODEL) return;
  toldBundled = true;
  process.stderr.write(`clip: using the bundled demo model ${DEFAULT_MODEL} (11 MB, trained on emoji drawings only: it misreads photos); ` +
    'for photos pass --model ViT-B-32 (OpenAI CLIP, ~600 MB downloaded once)\n');
}

export function loadModel(o: Record<string, any>, opts: { quiet?: boolean } = {}): Promise<ClipModel> {
  if (!opts.quiet) noteBundledModel(o.model);
  return ClipModel.load(o.model, loadOptionsFrom(o));
}
