// Image-level resizes: PIL Image.resize() (mode-dependent wrapper around the resampler) and
// torchvision tensor resize, plus the shortest-edge size rule both pipelines share.
import { premultiply, unpremultiply } from './convert.js';
import { type ResampleFilter, resampleBands } from './resample.js';
import { resampleBandsTorch, resizeNearestExactTorch } from './resample-torch.js';
import { type DecodedImage, makeImage } from './types.js';

/**
 * Resize as `Image.resize((width, height), filter)` does: same size is a plain copy;
 * '1' and 'P' always use NEAREST; LA/RGBA with any other filter go through premultiplied
 * alpha ('La'/'RGBa') and back.
 */
export function pilResize(img: DecodedImage, width: number, height: number, filter: ResampleFilter): DecodedImage {
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  if (img.mode === '1' || img.mode === 'P') filter = 'nearest';
  const alpha = (img.mode === 'LA' || img.mode === 'RGBA') && filter !== 'nearest';
  const ch = img.channels;
  const src = alpha ? premultiply(img.data, ch as 2 | 4) : img.data;
  let out = resampleBands(src, img.width, img.height, ch, width, height, filter);
  if (alpha) out = unpremultiply(out, ch as 2 | 4);
  return makeImage(width, height, img.mode, out, ch);
}

/**
 * Output size when the shorter edge becomes `size` (torchvision Resize(int) and transformers'
 * get_resize_output_image_size with default_to_square=False agree): the long edge is
 * int(size * long / short), truncated.
 */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? { width: size, height: newLong } : { width: newLong, height: size };
}

/**
 * torchvision.transforms.v2.functional.resize on a uint8 tensor with antialias=True, as
 * transformers' torchvision backend calls it: bicubic/bilinear through torch's int16-tap
 * kernel, NEAREST as NEAREST_EXACT, LANCZOS replaced by BICUBIC (as transformers does).
 * Bands are resized independently: no alpha premultiplication, unlike PIL.
 */
export function torchResize(img: DecodedImage, width: number, height: number, filter: ResampleFilter): DecodedImage {
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  const ch = img.channels;
  let out: Uint8Array;
  if (filter === 'nearest') out = resizeNearestExactTorch(img.data, img.width, img.height, ch, width, height);
  else if (filter === 'bicubic' || filter === 'bilinear' || filter === 'lanczos') {
    out = resampleBandsTorch(img.data, img.width, img.height, ch, width, height, filter === 'lanczos' ? 'bicubic' : filter);
  } else throw new Error(`torchvision tensor resize does not support the "${filter}" filter`);
  return makeImage(width, height, img.mode, out, ch);
}
