// Turn a checkpoint's preprocessing description into a function: image (path or bytes) -> normalized CHW pixels.
import type { PreprocessSpec } from '../models/checkpoint.js';
import { decodeImage, type ImageLimits } from '../image/decode.js';
import { openaiPipeline, pipelineFromPreprocessorConfig, preprocessImage, type PreprocessPipeline, type RGBTriple } from '../image/pipelines.js';

export type ImageInput = string | Uint8Array;
export type ImagePreprocessor = (input: ImageInput, name: string) => Promise<Float32Array>;

/** `source` names the preprocessing config in errors (default "preprocessor_config.json"). */
export function pipelineFor(spec: PreprocessSpec, source?: string): PreprocessPipeline {
  const p = pipelineOf(spec, source);
  // A pipeline whose output cannot be the tower's input is refused now, not after decoding every image.
  const out = p.doCenterCrop ? p.crop : p.doResize && typeof p.size !== 'number' ? p.size : undefined;
  if (out && (out.height !== spec.size || out.width !== spec.size)) {
    const field = p.doCenterCrop ? 'crop_size' : 'size';
    throw new Error(`${source ?? 'preprocessor_config.json'}: ${field} ${out.width}x${out.height} does not match the image tower's input, ${spec.size}x${spec.size}`);
  }
  return p;
}

function pipelineOf(spec: PreprocessSpec, source?: string): PreprocessPipeline {
  if (spec.kind === 'hf' && spec.hfConfig) return pipelineFromPreprocessorConfig(spec.hfConfig, undefined, source);
  if (spec.kind === 'hf') {
    // No preprocessor_config.json: CLIPImageProcessor's defaults at the tower's resolution.
    return pipelineFromPreprocessorConfig({
      size: { shortest_edge: spec.size }, crop_size: { height: spec.size, width: spec.size },
      image_mean: spec.mean, image_std: spec.std, resample: 3,
      do_resize: true, do_center_crop: true, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, do_convert_rgb: true,
    }, undefined, source ?? 'image config');
  }
  return openaiPipeline(spec.size, spec.mean as RGBTriple, spec.std as RGBTriple, source ?? 'image config');
}

export interface PreprocessorOptions {
  /** Names the preprocessing config in errors. */
  source?: string;
  /** Image size limits (see image/decode.ts); the environment and defaults otherwise. */
  limits?: ImageLimits;
  /** Fast decode of large JPEGs (see LoadOptions.fastDecode): reduced at decode to a short edge of 2x the tower's input. */
  fastDecode?: boolean;
  /** In a pool worker: see DecodeOptions.noRetry. */
  noRetry?: boolean;
}

export function makeImagePreprocessor(spec: PreprocessSpec, opts: PreprocessorOptions = {}): ImagePreprocessor {
  const p = pipelineFor(spec, opts.source);
  // Twice the input size leaves the exact (antialiased) resize a real downscale to do, so what the decoder's
  // cheaper reduction loses is mostly averaged away again.
  const decodeOpts = { ...(opts.fastDecode ? { reduceTo: 2 * spec.size } : {}), ...(opts.noRetry ? { noRetry: true } : {}) };
  return async (input, name) => {
    const img = await decodeImage(input, name, opts.limits, decodeOpts);
    let out;
    try {
      out = preprocessImage(img, p);
    } catch (e) {
      throw new Error(`cannot preprocess image ${name}: ${(e as Error).message}`);
    }
    if (out.width !== spec.size || out.height !== spec.size) {
      throw new Error(`${name}: preprocessing gave ${out.width}x${out.height}, the image tower takes ${spec.size}x${spec.size}`);
    }
    return out.pixels;
  };
}
