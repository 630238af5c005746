// Image-level resizes: PIL Image.resize() (mode-dependent wrapper around the resampler) and
// torchvision tensor resize, plus the shortest-edge size rule both pipelines share.
import { premultiply, unpremultiply } from './convert.js';
import { type ResampleFilter, resampleBands } from './resample.js';
import { resampleBandsTorch, resizeNearestExactTorch } from './resample-torch.js';
import { type DecodedImage, makeImage } from './types.js';
import { cropRows, type AxisWindow } from './fixed-point-passes.js';

/**
 * Resize as `Image.resize((width, height), filter)` does: same size is a plain copy;
 * '1' and 'P' always use NEAREST; LA/RGBA with any other filter go through premultiplied
 * alpha ('La'/'RGBa') and back.
 */
export function pilResize(img: DecodedImage, width: number, height: number, filter: ResampleFilter, win?: ResizeWindow): DecodedImage {
  if (width === img.width && height === img.height) return sameSize(img, win);
  if (img.mode === '1' || img.mode === 'P') filter = 'nearest';
  const alpha = (img.mode === 'LA' || img.mode === 'RGBA') && filter !== 'nearest';
  const ch = img.channels;
  const src = alpha ? premultiply(img.data, ch as 2 | 4) : img.data;
  let out = resampleBands(src, img.width, img.height, ch, width, height, filter, win);
  if (alpha) out = unpremultiply(out, ch as 2 | 4);
  return makeImage(win ? win.x.n : width, win ? win.y.n : height, img.mode, out, ch);
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
export function torchResize(img: DecodedImage, width: number, height: number, filter: ResampleFilter, win?: ResizeWindow): DecodedImage {
  if (width === img.width && height === img.height) return sameSize(img, win);
  const ch = img.channels;
  let out: Uint8Array;
  if (filter === 'nearest') {
    out = resizeNearestExactTorch(img.data, img.width, img.height, ch, width, height);
    if (win) out = cropRows(out, width, ch, win.y.first, win.y.n, win.x);
  } else if (filter === 'bicubic' || filter === 'bilinear' || filter === 'lanczos') {
    out = resampleBandsTorch(img.data, img.width, img.height, ch, width, height, filter === 'lanczos' ? 'bicubic' : filter, win);
  } else throw new Error(`torchvision tensor resize does not support the "${filter}" filter`);
  return makeImage(win ? win.x.n : width, win ? win.y.n : height, img.mode, out, ch);
}

/** The part of the resized image a following crop keeps (output coordinates). */
export interface ResizeWindow { x: AxisWindow; y: AxisWindow }

function sameSize(img: DecodedImage, win?: ResizeWindow): DecodedImage {
  if (!win) return { ...img, data: img.data.slice() };
  return makeImage(win.x.n, win.y.n, img.mode, cropRows(img.data, img.width, img.channels, win.y.first, win.y.n, win.x), img.channels);
}
