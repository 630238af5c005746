// Turn a checkpoint's preprocessing description into a function: image (path or bytes) -> normalized CHW pixels.
import type { PreprocessSpec } from '../models/checkpoint.js';
import { decodeImage } from '../image/decode.js';
import { openaiPipeline, pipelineFromPreprocessorConfig, preprocessImage, type PreprocessPipeline, type RGBTriple } from '../image/pipelines.js';

export type ImageInput = string | Uint8Array;
export type ImagePreprocessor = (input: ImageInput, name: string) => Promise<Float32Array>;

export function pipelineFor(spec: PreprocessSpec): PreprocessPipeline {
  if (spec.kind === 'hf' && spec.hfConfig) return pipelineFromPreprocessorConfig(spec.hfConfig);
  if (spec.kind === 'hf') {
    // No preprocessor_config.json: CLIPImageProcessor's defaults at the tower's resolution.
    return pipelineFromPreprocessorConfig({
      size: { shortest_edge: spec.size }, crop_size: { height: spec.size, width: spec.size },
      image_mean: spec.mean, image_std: spec.std, resample: 3,
      do_resize: true, do_center_crop: true, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, do_convert_rgb: true,
    });
  }
  return openaiPipeline(spec.size, spec.mean as RGBTriple, spec.std as RGBTriple);
}

export function makeImagePreprocessor(spec: PreprocessSpec): ImagePreprocessor {
  const p = pipelineFor(spec);
  return async (input, name) => {
    const img = await decodeImage(input, name);
    const out = preprocessImage(img, p);
    if (out.width !== spec.size || out.height !== spec.size) {
      throw new Error(`${name}: preprocessing gave ${out.width}x${out.height}, the image tower takes ${spec.size}x${spec.size}`);
    }
    return out.pixels;
  };
}
