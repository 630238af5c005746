// The CLIP preprocessing pipelines, step for step:
//  - 'openai': OpenAI clip.load()'s torchvision Compose: Resize(N, BICUBIC) on the PIL image in
//    its original mode, CenterCrop(N) (round-half-even offsets), convert('RGB'), ToTensor, Normalize.
//  - 'hf': transformers CLIPImageProcessor: convert('RGB') first, resize the shortest edge,
//    center crop, rescale + normalize. Two backends:
//      'torchvision' (transformers v5's default CLIPImageProcessor): torch uint8 antialiased
//        resize (int16 taps), int() crop offsets, fused rescale/normalize;
//      'pil' (CLIPImageProcessorPil, and v4's default): PIL resize, floor crop offsets, numpy math.
// They differ on palette/RGBA images and by a pixel of crop offset on odd excesses, so a model
// must be fed by the pipeline its reference numbers came from.
import { flattenOnto, toRGB } from './convert.js';
import { centerCropHFNumpy, centerCropHFTorch, centerCropTorchvision, roundHalfEven } from './crop.js';
import { checkPixels, decodeImage } from './decode.js';
import { type NormalizeOptions, normalizeInto } from './normalize.js';
import { pilResize, shortestEdgeSize, torchResize } from './resize.js';
import type { DecodedImage } from './types.js';

import {
  MAX_PREPROCESS_EDGE, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, openaiPipeline, pipelineFromPreprocessorConfig,
  type HFBackend, type PreprocessPipeline, type RGBTriple,
} from './pipeline-config.js';

// Reading a config is pipeline-config.ts's job; these names stay importable from here.
export {
  MAX_PREPROCESS_EDGE, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, openaiPipeline, pipelineFromPreprocessorConfig,
  type HFBackend, type PreprocessPipeline, type RGBTriple,
};

export interface PreprocessedImage {
  /** 3 * height * width floats, channels first, normalized. */
  pixels: Float32Array;
  /** height * width * 3 bytes: the RGB image after resize and crop, before rescale/normalize. */
  uint8: Uint8Array;
  width: number;
  height: number;
}

export type ImageInput = string | Uint8Array | DecodedImage;

const torchBackend = (p: PreprocessPipeline): boolean => p.kind === 'hf' && (p.backend ?? 'torchvision') === 'torchvision';

/**
 * The size an image is resized to, refused past the pixel limit: a cheap 1x1000000 strip would otherwise
 * become 224 x 224000000 (the resamplers allocate per output row and column).
 */
function resizeTarget(img: DecodedImage, p: PreprocessPipeline): { width: number; height: number } {
  const t = typeof p.size === 'number' ? shortestEdgeSize(img.width, img.height, p.size) : p.size;
  if (t.width < 1 || t.height < 1) throw new Error(`a ${img.width}x${img.height} image cannot be resized to ${t.width}x${t.height}`);
  checkPixels(t.width, t.height, `the ${img.width}x${img.height} image, resized for the model,`);
  return t;
}

function resizeStep(img: DecodedImage, p: PreprocessPipeline): DecodedImage {
  if (!p.doResize) return img;
  const t = resizeTarget(img, p);
  return (torchBackend(p) ? torchResize : pilResize)(img, t.width, t.height, p.resample);
}

/**
 * Resize and center crop in one step when the crop needs no padding: only the kept pixels are resampled
 * (each output pixel depends only on its own taps, so the bytes are the same as resize-then-crop).
 * Returns undefined when the two steps must run separately.
 */
function resizeCropped(img: DecodedImage, p: PreprocessPipeline): DecodedImage | undefined {
  if (!p.doResize || !p.doCenterCrop) return undefined;
  const t = resizeTarget(img, p);
  const { height: ch, width: cw } = p.crop;
  if (t.width < cw || t.height < ch) return undefined;
  // The crop rule of each pipeline (see crop.ts): torchvision rounds half to even, transformers' torch
  // backend truncates, its numpy backend floors (the same for non-negative values).
  const offset = (size: number, crop: number): number =>
    p.kind === 'openai' ? roundHalfEven((size - crop) / 2) : Math.floor((size - crop) / 2);
  const win = { x: { first: offset(t.width, cw), n: cw }, y: { first: offset(t.height, ch), n: ch } };
  return (torchBackend(p) ? torchResize : pilResize)(img, t.width, t.height, p.resample, win);
}

/** The uint8 stage: resized, cropped RGB image (HWC), before rescale and normalize. */
export function preprocessToUint8(img: DecodedImage, p: PreprocessPipeline): DecodedImage {
  if (p.kind === 'hf') {
    // transformers converts to RGB before anything else.
    const rgb = p.background ? flattenOnto(img, p.background) : toRGB(img);
    const direct = resizeCropped(rgb, p);
    if (direct) return direct;
    let im = resizeStep(rgb, p);
    if (p.doCenterCrop) im = (torchBackend(p) ? centerCropHFTorch : centerCropHFNumpy)(im, p.crop.height, p.crop.width);
    return im;
  }
  // torchvision works on the PIL image in its own mode; RGB comes last.
  const direct = resizeCropped(img, p);
  if (direct) return toRGB(direct);
  let im = resizeStep(img, p);
  if (p.doCenterCrop) im = centerCropTorchvision(im, p.crop.height, p.crop.width);
  return toRGB(im);
}

function normalizeOptions(p: PreprocessPipeline): NormalizeOptions {
  return {
    mean: p.mean, std: p.std, normalize: p.doNormalize,
    rescale: p.doRescale ? p.rescaleFactor : null,
    arithmetic: p.kind === 'openai' ? 'totensor' : torchBackend(p) ? 'fused' : 'numpy',
  };
}

/** Full preprocessing of a decoded image. */
export function preprocessImage(img: DecodedImage, p: PreprocessPipeline): PreprocessedImage {
  const rgb = preprocessToUint8(img, p);
  const pixels = new Float32Array(3 * rgb.width * rgb.height);
  normalizeInto(rgb.data, rgb.width, rgb.height, normalizeOptions(p), pixels);
  return { pixels, uint8: rgb.data, width: rgb.width, height: rgb.height };
}

async function load(input: ImageInput): Promise<DecodedImage> {
  return typeof input === 'string' || input instanceof Uint8Array ? decodeImage(input) : input;
}

/** Decode (if needed) and preprocess one image. */
export async function preprocess(input: ImageInput, p: PreprocessPipeline): Promise<PreprocessedImage> {
  return preprocessImage(await load(input), p);
}

/** Preprocess several images into one [B, 3, H, W] float32 tensor (all must end at the same size). */
export async function preprocessBatch(
  inputs: readonly ImageInput[], p: PreprocessPipeline,
): Promise<{ data: Float32Array; dims: [number, number, number, number] }> {
  if (inputs.length === 0) throw new Error('preprocessBatch: no images');
  let data: Float32Array | null = null;
  let h = 0, w = 0;
  for (let i = 0; i < inputs.length; i++) {
    const rgb = preprocessToUint8(await load(inputs[i]!), p);
    if (!data) {
      h = rgb.height; w = rgb.width;
      data = new Float32Array(inputs.length * 3 * h * w);
    } else if (rgb.height !== h || rgb.width !== w) {
      const what = typeof inputs[i] === 'string' ? ` (${inputs[i] as string})` : '';
      throw new Error(`preprocessBatch: image ${i}${what} is ${rgb.width}x${rgb.height}, others are ${w}x${h}; enable center crop`);
    }
    normalizeInto(rgb.data, w, h, normalizeOptions(p), data, i * 3 * h * w);
  }
  return { data: data!, dims: [inputs.length, 3, h, w] };
}
