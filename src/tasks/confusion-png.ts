// A confusion matrix as a PNG heat map: rows = true class, columns = predicted class, top-left = class 0.
// Each row is normalized by its sample count (so rare classes are as visible as common ones) and drawn
// white (0) → dark blue (1); rows with no samples are mid grey. No text: the JSON report has the names.
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';

export interface HeatMapOptions {
  /** Pixels per cell (default: fits about 800 px, between 1 and 40). */
  cell?: number;
}

export const NO_DATA_RGB: readonly [number, number, number] = [160, 160, 160];
const GRID_RGB: readonly [number, number, number] = [210, 210, 210];
// sklearn's "Blues"-like ramp: white, mid blue, dark blue.
const STOPS: readonly [number, readonly [number, number, number]][] = [[0, [255, 255, 255]], [0.5, [107, 174, 214]], [1, [8, 48, 107]]];

/** Colour of a fraction in [0, 1] on the white → dark-blue ramp. */
export function heatColor(x: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, x));
  for (let s = 1; s < STOPS.length; s++) {
    const [x1, c1] = STOPS[s]!;
    const [x0, c0] = STOPS[s - 1]!;
    if (v <= x1) {
      const t = (v - x0) / (x1 - x0);
      return [0, 1, 2].map((ch) => Math.round(c0[ch]! + t * (c1[ch]! - c0[ch]!))) as [number, number, number];
    }
  }
  return [...STOPS[STOPS.length - 1]![1]] as [number, number, number];
}

/** Layout of the picture: cell size, 1-px grid lines once cells are big enough to need them. */
export function heatMapLayout(n: number, cell?: number): { cell: number; gap: number; size: number } {
  const c = cell ?? Math.min(40, Math.max(1, Math.floor(800 / Math.max(n, 1))));
  if (!Number.isInteger(c) || c < 1) throw new RangeError(`cell size must be a positive integer, got ${cell}`);
  const gap = c >= 6 ? 1 : 0;
  return { cell: c, gap, size: n * c + (n + 1) * gap };
}

/** Raw RGB pixels (row-major, 3 bytes per pixel) of the heat map. */
export function confusionPixels(confusion: readonly (readonly number[])[], opts: HeatMapOptions = {}): { data: Uint8Array; width: number; height: number } {
  const n = confusion.length;
  if (!n) throw new Error('confusion matrix is empty');
  confusion.forEach((row, i) => { if (row.length !== n) throw new Error(`confusion matrix row ${i} has ${row.length} cells, expected ${n}`); });
  const { cell, gap, size } = heatMapLayout(n, opts.cell);
  const data = new Uint8Array(size * size * 3);
  for (let p = 0; p < size * size; p++) data.set(GRID_RGB, p * 3);
  confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      const rgb = total ? heatColor(count / total) : NO_DATA_RGB;
      const y0 = gap + t * (cell + gap);
      const x0 = gap + p * (cell + gap);
      for (let y = y0; y < y0 + cell; y++) for (let x = x0; x < x0 + cell; x++) data.set(rgb, (y * size + x) * 3);
    });
  });
  return { data, width: size, height: size };
}

export async function confusionPng(confusion: readonly (readonly number[])[], opts: HeatMapOptions = {}): Promise<Buffer> {
  const { data, width, height } = confusionPixels(confusion, opts);
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export async function writeConfusionPng(path: string, confusion: readonly (readonly number[])[], opts: HeatMapOptions = {}): Promise<void> {
  await writeFile(path, await confusionPng(confusion, opts));
}
