// The PIL mode conversions the pipelines need, with Pillow's integer rounding
// (Convert.c: MULDIV255 to premultiply, truncating division to undo it).
import { type DecodedImage, makeImage } from './types.js';

/** round(a * b / 255) the way Pillow computes it, without a division. */
function muldiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/** RGBA -> 'RGBa' / LA -> 'La': colour bands times alpha. The last band is alpha. */
export function premultiply(data: Uint8Array, ch: 2 | 4): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += ch) {
    const a = data[i + ch - 1]!;
    for (let b = 0; b < ch - 1; b++) out[i + b] = muldiv255(data[i + b]!, a);
    out[i + ch - 1] = a;
  }
  return out;
}

/** 'RGBa' -> RGBA / 'La' -> LA: alpha 0 or 255 copies; otherwise 255*c/alpha truncated, clipped. */
export function unpremultiply(data: Uint8Array, ch: 2 | 4): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += ch) {
    const a = data[i + ch - 1]!;
    for (let b = 0; b < ch - 1; b++) {
      const c = data[i + b]!;
      out[i + b] = a === 0 || a === 255 ? c : Math.min(255, Math.trunc((255 * c) / a));
    }
    out[i + ch - 1] = a;
  }
  return out;
}

/**
 * PIL convert('RGB'): grey bands are replicated, alpha is dropped without compositing,
 * palette images are already stored as their colours.
 */
export function toRGB(img: DecodedImage): DecodedImage {
  if (img.channels === 3) return img.mode === 'RGB' ? img : makeImage(img.width, img.height, 'RGB', img.data, 3);
  const n = img.width * img.height;
  const src = img.data, ch = img.channels;
  const out = new Uint8Array(n * 3);
  const grey = ch <= 2;
  for (let i = 0; i < n; i++) {
    const s = i * ch;
    out[i * 3] = src[s]!;
    out[i * 3 + 1] = grey ? src[s]! : src[s + 1]!;
    out[i * 3 + 2] = grey ? src[s]! : src[s + 2]!;
  }
  return makeImage(img.width, img.height, 'RGB', out, 3);
}

/** Composite an image with alpha (LA or RGBA) over a solid colour: c*a + bg*(255-a), rounded, per band. */
export function flattenOnto(img: DecodedImage, bg: readonly [number, number, number] | readonly number[]): DecodedImage {
  const ch = img.channels;
  if (ch !== 2 && ch !== 4) return toRGB(img);
  const n = img.width * img.height;
  const src = img.data;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const s = i * ch;
    const a = src[s + ch - 1]!;
    for (let b = 0; b < 3; b++) {
      const c = ch === 2 ? src[s]! : src[s + b]!;
      out[i * 3 + b] = Math.round((c * a + bg[b]! * (255 - a)) / 255);
    }
  }
  return makeImage(img.width, img.height, 'RGB', out, 3);
}
