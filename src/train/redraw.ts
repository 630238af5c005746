// Drawing-style changes for `--augment crop+redraw`: each one changes how a thing is drawn while
// keeping what it is, so that a model trained on two emoji vendors recognises a concept drawn by an
// artist it never saw. Emoji sets differ in outlines (none, thin, thick), shading (gradients or flat
// fills), palette, stroke weight and detail; icon sets are line art or one-colour glyphs. The changes
// work on one [3, S, S] image in [0, 1] RGB (white = 1, the background every image is composited on).
import type { Rng } from '../tasks/rng.js';

export type RedrawChange =
  | 'outline' | 'outline-thick' | 'line-art' | 'flat' | 'silhouette' | 'thicken' | 'thin' | 'hue' | 'gray' | 'blur';
export const REDRAW_CHANGES: readonly RedrawChange[] = ['outline', 'outline-thick', 'line-art', 'flat', 'silhouette', 'thicken', 'thin', 'hue', 'gray', 'blur'];

const luma = (v: Float32Array, n: number, p: number) => 0.299 * v[p]! + 0.587 * v[n + p]! + 0.114 * v[2 * n + p]!;
const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Where the luma gradient (Sobel) is strong: the borders between colour regions. */
function edges(v: Float32Array, size: number, threshold: number): Uint8Array {
  const n = size * size;
  // Luma once per pixel, with a one-pixel border that repeats the edge (clamped reads without branches).
  const w = size + 2;
  const l = new Float64Array(w * w);
  for (let y = -1; y <= size; y++) {
    const sy = Math.min(size - 1, Math.max(0, y));
    for (let x = -1; x <= size; x++) l[(y + 1) * w + x + 1] = luma(v, n, sy * size + Math.min(size - 1, Math.max(0, x)));
  }
  const m = new Uint8Array(n);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const c = (y + 1) * w + x + 1;
      const gx = l[c - w + 1]! + 2 * l[c + 1]! + l[c + w + 1]! - l[c - w - 1]! - 2 * l[c - 1]! - l[c + w - 1]!;
      const gy = l[c + w - 1]! + 2 * l[c + w]! + l[c + w + 1]! - l[c - w - 1]! - 2 * l[c - w]! - l[c - w + 1]!;
      if (Math.hypot(gx, gy) > threshold) m[y * size + x] = 1;
    }
  }
  return m;
}

/** Mask grown by one pixel (3x3). */
function dilate(m: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let on = 0;
      for (let dy = -1; dy <= 1 && !on; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < size && xx >= 0 && xx < size && m[yy * size + xx]) { on = 1; break; }
        }
      }
      out[y * size + x] = on;
    }
  }
  return out;
}

/** Channel c of v with a one-pixel border repeating the edge, so 3x3 windows read without clamping. */
function padded(v: Float32Array, size: number, c: number, out: Float32Array): Float32Array {
  const n = size * size;
  const w = size + 2;
  for (let y = -1; y <= size; y++) {
    const row = c * n + Math.min(size - 1, Math.max(0, y)) * size;
    for (let x = -1; x <= size; x++) out[(y + 1) * w + x + 1] = v[row + Math.min(size - 1, Math.max(0, x))]!;
  }
  return out;
}

/** A 3x3 window over each channel, edges clamped: min (darker strokes grow), max (they shrink) or mean (blur). */
function filter3(v: Float32Array, size: number, kind: 'min' | 'max' | 'mean'): void {
  const n = size * size;
  const w = size + 2;
  const p = new Float32Array(w * w);
  for (let c = 0; c < 3; c++) {
    padded(v, size, c, p);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const at = (y + 1) * w + x + 1;
        let r = kind === 'mean' ? 0 : p[at]!;
        for (let dy = -w; dy <= w; dy += w) {
          for (let dx = -1; dx <= 1; dx++) {
            const q = p[at + dy + dx]!;
            r = kind === 'min' ? Math.min(r, q) : kind === 'max' ? Math.max(r, q) : r + q;
          }
        }
        v[c * n + y * size + x] = kind === 'mean' ? r / 9 : r;
      }
    }
  }
}

/**
 * Apply one change to `v` ([3, S, S] in [0, 1]) in place; parameters are drawn from `rng`.
 * Colour identity is kept where emoji depend on it (red vs blue heart): hue turns by at most 15 degrees.
 */
export function redraw(v: Float32Array, size: number, change: RedrawChange, rng: Rng): void {
  const n = size * size;
  const ink = 0.05 + 0.15 * rng.float();
  const paint = (m: Uint8Array, value: number) => { for (let p = 0; p < n; p++) if (m[p]) for (let c = 0; c < 3; c++) v[c * n + p] = value; };
  switch (change) {
    case 'outline': paint(edges(v, size, 0.5), ink); return;
    case 'outline-thick': paint(dilate(edges(v, size, 0.5), size), ink); return;
    case 'line-art': {
      // Outline-only rendering: the borders in ink on white, the fills gone (Tabler-like line icons).
      const m = edges(v, size, 0.35);
      for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) v[c * n + p] = m[p] ? ink : 1;
      return;
    }
    case 'flat': {
      // Palette reduction: shading and gradients become flat fills (Fluent Flat, Twemoji-like); white stays white.
      const levels = 3 + rng.below(3);
      for (let i = 0; i < 3 * n; i++) v[i] = Math.round(v[i]! * (levels - 1)) / (levels - 1);
      return;
    }
    case 'silhouette': {
      // One-colour glyph (MDI-like): everything that is not background in one dark colour.
      const tone = [0, 1, 2].map(() => 0.3 * rng.float());
      for (let p = 0; p < n; p++) if (luma(v, n, p) < 0.92) for (let c = 0; c < 3; c++) v[c * n + p] = tone[c]!;
      return;
    }
    case 'thicken': filter3(v, size, 'min'); return;
    case 'thin': filter3(v, size, 'max'); return;
    case 'hue': {
      // Rotate chroma in YIQ (white and grays stay put) and scale saturation.
      const a = ((rng.float() * 2 - 1) * 15 * Math.PI) / 180;
      const s = 0.5 + 0.8 * rng.float();
      const cos = Math.cos(a) * s;
      const sin = Math.sin(a) * s;
      for (let p = 0; p < n; p++) {
        const r = v[p]!;
        const g = v[n + p]!;
        const b = v[2 * n + p]!;
        const y = 0.299 * r + 0.587 * g + 0.114 * b;
        const i0 = 0.596 * r - 0.274 * g - 0.322 * b;
        const q0 = 0.211 * r - 0.523 * g + 0.312 * b;
        const i1 = i0 * cos - q0 * sin;
        const q1 = i0 * sin + q0 * cos;
        v[p] = clamp01(y + 0.956 * i1 + 0.621 * q1);
        v[n + p] = clamp01(y - 0.272 * i1 - 0.647 * q1);
        v[2 * n + p] = clamp01(y - 1.106 * i1 + 1.703 * q1);
      }
      return;
    }
    case 'gray':
      for (let p = 0; p < n; p++) { const y = luma(v, n, p); for (let c = 0; c < 3; c++) v[c * n + p] = y; }
      return;
    case 'blur': filter3(v, size, 'mean'); return;
  }
}

/** A quarter of the images stay as drawn, half get one change, a quarter two different ones. */
export function drawChanges(rng: Rng): RedrawChange[] {
  const u = rng.float();
  const k = u < 0.25 ? 0 : u < 0.75 ? 1 : 2;
  const out: RedrawChange[] = [];
  while (out.length < k) {
    const c = REDRAW_CHANGES[rng.below(REDRAW_CHANGES.length)]!;
    if (!out.includes(c)) out.push(c);
  }
  return out;
}
