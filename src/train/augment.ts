// Training-time image augmentation on preprocessed pixels. With a few thousand images a small CLIP
// memorizes exact pixels within a few epochs; random zoomed crops make it learn shapes that survive a
// change of framing and line weight, which is what zero-shot on other drawing styles needs.
// It works on the normalized [n, 3, S, S] floats the store hands out (every pipeline's output), so it
// costs one bilinear resample per image (~0.1 ms at 64 px) and no re-decode.
import { Rng } from '../tasks/rng.js';
import { drawChanges, redraw } from './redraw.js';

/**
 * none; crop: random zoomed crops; crop+style: crops, then half of the images get one drawing-style
 * change — dark outlines traced along color edges, grayscale, or a blur — so the image tower cannot
 * lean on one artist's rendering (emoji sets differ mostly in outlines, shading and detail).
 * crop+redraw: crops, then three images in four get one or two of redraw.ts's ten changes (thin or
 * thick outlines, line art, flat fills, one-colour glyph, stroke weight, hue, gray, blur).
 */
export type Augment = 'none' | 'crop' | 'crop+style' | 'crop+redraw';
export const AUGMENTS: Augment[] = ['none', 'crop', 'crop+style', 'crop+redraw'];

export interface CropRange {
  /** Window area relative to the image, [min, max]; above 1 the window reaches past the image (zoom out). */
  scale: [number, number];
  /** Aspect ratio (w/h) range, drawn log-uniformly. */
  ratio: [number, number];
}

/**
 * torchvision RandomResizedCrop's ratio range; zoom in to 60% of the area and out to 180% (the drawing
 * then fills 75% of the side on a white margin: emoji sets differ in how much of the canvas they use).
 */
export const DEFAULT_CROP: CropRange = { scale: [0.6, 1.8], ratio: [3 / 4, 4 / 3] };

/** A crop scale range a user gave: 0 < min <= max, and at most 4 (a drawing at half the side). */
export function checkCropScale(scale: readonly number[]): void {
  const [lo, hi] = scale;
  if (scale.length !== 2 || !(lo! > 0) || !(hi! >= lo!) || !(hi! <= 4)) throw new Error(`crop scale must be two numbers 0 < min <= max <= 4 (window area / image area), got ${JSON.stringify(scale)}`);
}

/** One crop window in pixel units; it may extend past the image on either side when zooming out. */
export interface Window {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where a window of length `len` starts along an axis of `size`: inside when it fits, else covering it. */
const place = (size: number, len: number, u: number) => (len <= size ? u * (size - len) : -u * (len - size));

export function drawWindow(size: number, rng: Rng, range: CropRange = DEFAULT_CROP): Window {
  const area = size * size;
  const s = range.scale[0] + rng.float() * (range.scale[1] - range.scale[0]);
  const logR = Math.log(range.ratio[0]) + rng.float() * (Math.log(range.ratio[1]) - Math.log(range.ratio[0]));
  const r = Math.exp(logR);
  const w = Math.sqrt(s * area * r);
  const h = Math.sqrt((s * area) / r);
  return { x: place(size, w, rng.float()), y: place(size, h, rng.float()), w, h };
}

/**
 * Resample window `win` of one [3, S, S] image (at `offset` in `buf`) back to S x S, bilinearly with
 * half-pixel centers; outside the image is `fill` (per channel: normalized white). Zooming out by the
 * default's 1.35x per side needs no antialiasing to speak of (a --crop-scale up to 4, 2x, thins lines a little).
 */
export function cropResize(buf: Float32Array, offset: number, size: number, win: Window, scratch: Float32Array, fill: readonly number[] = [0, 0, 0]): void {
  const n = size * size;
  scratch.set(buf.subarray(offset, offset + 3 * n));
  const sx = win.w / size;
  const sy = win.h / size;
  const clamp = (v: number) => (v < 0 ? 0 : v > size - 1 ? size - 1 : v);
  const outside = (v: number) => v < -0.5 || v > size - 0.5;
  for (let oy = 0; oy < size; oy++) {
    const ry = win.y + (oy + 0.5) * sy - 0.5;
    const fy = clamp(ry);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, size - 1);
    const wy = fy - y0;
    for (let ox = 0; ox < size; ox++) {
      const rx = win.x + (ox + 0.5) * sx - 0.5;
      if (outside(rx) || outside(ry)) {
        for (let c = 0; c < 3; c++) buf[offset + c * n + oy * size + ox] = fill[c]!;
        continue;
      }
      const fx = clamp(rx);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, size - 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const src = c * n;
        const a = scratch[src + y0 * size + x0]!;
        const b = scratch[src + y0 * size + x1]!;
        const d = scratch[src + y1 * size + x0]!;
        const e = scratch[src + y1 * size + x1]!;
        buf[offset + c * n + oy * size + ox] = (a + (b - a) * wx) * (1 - wy) + (d + (e - d) * wx) * wy;
      }
    }
  }
}

/** Per-channel normalization of the pixels (x - mean) / std, so style changes can work on [0, 1] values. */
export interface Normalization {
  mean: readonly number[];
  std: readonly number[];
}

/** The [3, S, S] image at `offset` back in [0, 1] RGB, into `into`. */
function toUnit(buf: Float32Array, offset: number, n: number, norm: Normalization, into: Float32Array): Float32Array {
  for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) into[c * n + p] = buf[offset + c * n + p]! * norm.std[c]! + norm.mean[c]!;
  return into;
}

export type StyleChange = 'outline' | 'gray' | 'blur';

/** Luma of pixel p (values in [0, 1]). */
const luma = (v: Float32Array, n: number, p: number) => 0.299 * v[p]! + 0.587 * v[n + p]! + 0.114 * v[2 * n + p]!;

/**
 * One style change on a [3, S, S] image at `offset`. outline: pixels where the luma gradient (Sobel) is
 * strong turn near-black, tracing the shapes' borders the way outlined emoji sets draw them.
 */
export function restyle(buf: Float32Array, offset: number, size: number, change: StyleChange, norm: Normalization, scratch: Float32Array): void {
  const n = size * size;
  const v = toUnit(buf, offset, n, norm, scratch);
  const out = (c: number, p: number, x: number) => { buf[offset + c * n + p] = (x - norm.mean[c]!) / norm.std[c]!; };
  if (change === 'gray') {
    for (let p = 0; p < n; p++) { const y = luma(v, n, p); for (let c = 0; c < 3; c++) out(c, p, y); }
    return;
  }
  const at = (x: number, y: number) => luma(v, n, Math.min(size - 1, Math.max(0, y)) * size + Math.min(size - 1, Math.max(0, x)));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      if (change === 'blur') {
        // 3x3 box blur per channel, edges clamped.
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += v[c * n + Math.min(size - 1, Math.max(0, y + dy)) * size + Math.min(size - 1, Math.max(0, x + dx))]!;
          out(c, p, s / 9);
        }
      } else {
        const gx = at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1) - at(x - 1, y - 1) - 2 * at(x - 1, y) - at(x - 1, y + 1);
        const gy = at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1) - at(x - 1, y - 1) - 2 * at(x, y - 1) - at(x + 1, y - 1);
        if (Math.hypot(gx, gy) > 0.5) for (let c = 0; c < 3; c++) out(c, p, 0.1);
      }
    }
  }
}

const CHANGES: StyleChange[] = ['outline', 'gray', 'blur'];

/**
 * Augment a [k, 3, S, S] batch in place; the draws come from `rng` (a per-batch stream: resume stays
 * exact). `norm` gives the value of white (the margin when zooming out) and the [0, 1] space of restyle.
 */
export function augmentBatch(pixels: Float32Array, k: number, size: number, kind: Augment, rng: Rng, norm: Normalization, crop: CropRange = DEFAULT_CROP): void {
  if (kind === 'none') return;
  const per = 3 * size * size;
  const scratch = new Float32Array(per);
  const white = [0, 1, 2].map((c) => (1 - norm.mean[c]!) / norm.std[c]!);
  for (let i = 0; i < k; i++) {
    cropResize(pixels, i * per, size, drawWindow(size, rng, crop), scratch, white);
    if (kind === 'crop+style' && rng.float() < 0.5) restyle(pixels, i * per, size, CHANGES[rng.below(CHANGES.length)]!, norm, scratch);
    if (kind === 'crop+redraw') {
      const changes = drawChanges(rng);
      if (!changes.length) continue;
      const o = i * per;
      const n = size * size;
      toUnit(pixels, o, n, norm, scratch);
      for (const ch of changes) redraw(scratch, size, ch, rng);
      for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) pixels[o + c * n + p] = (scratch[c * n + p]! - norm.mean[c]!) / norm.std[c]!;
    }
  }
}
