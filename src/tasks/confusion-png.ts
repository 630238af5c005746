// A confusion matrix as a PNG heat map: rows = true class, columns = predicted class, top-left = class 0.
// Each row is normalized by its sample count (so rare classes are as visible as common ones) and drawn
// white (0) → dark blue (1); rows with no samples are mid grey. confusionChartPng frames it with axis titles
// and class names (drawn as SVG text, rasterized by sharp like the training curve).
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

const esc = (t: string) => t.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
/** Names longer than this are cut (with an ellipsis) so one long class name cannot widen the margins. */
const NAME_MAX = 24;
const cut = (t: string) => (t.length > NAME_MAX ? `${t.slice(0, NAME_MAX - 1)}…` : t);

/** Where the heat map sits in the labelled chart, and the chart's SVG (text only; the map is composited on). */
export function confusionChartLayout(classes: readonly string[], opts: HeatMapOptions = {}): { svg: string; left: number; top: number; width: number; height: number; names: boolean } {
  const n = classes.length;
  const { cell, gap, size } = heatMapLayout(n, opts.cell);
  // Names only when a row is tall enough to read them; otherwise the first and last class index mark the axes.
  const names = cell >= 8;
  const font = names ? Math.min(12, cell - 1) : 11;
  const nameW = names ? Math.ceil(Math.max(...classes.map((c) => cut(c).length)) * font * 0.62) + 6 : 24;
  const left = 28 + nameW;
  const top = 28 + nameW;
  const width = left + size + 12;
  const height = top + size + 12;
  const mid = (i: number) => gap + i * (cell + gap) + cell / 2;
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left + size / 2}" y="16" text-anchor="middle" font-size="13" fill="#222">predicted class</text>`,
    `<text transform="translate(16,${top + size / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#222">true class</text>`,
  ];
  const ticks = names ? classes.map((c, i) => [i, cut(c)] as const) : [[0, '0'], [n - 1, String(n - 1)]] as const;
  for (const [i, label] of ticks) {
    parts.push(`<text x="${left - 4}" y="${(top + mid(i) + font * 0.35).toFixed(1)}" text-anchor="end" font-size="${font}" fill="#333">${esc(label)}</text>`);
    parts.push(`<text transform="translate(${(left + mid(i) + font * 0.35).toFixed(1)},${top - 4}) rotate(-90)" text-anchor="start" font-size="${font}" fill="#333">${esc(label)}</text>`);
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">${parts.join('')}</svg>`;
  return { svg, left, top, width, height, names };
}

/** The heat map with axis titles ("true class" rows, "predicted class" columns) and the class names. */
export async function confusionChartPng(confusion: readonly (readonly number[])[], classes: readonly string[], opts: HeatMapOptions = {}): Promise<Buffer> {
  if (classes.length !== confusion.length) throw new Error(`confusion matrix has ${confusion.length} rows but ${classes.length} class names`);
  const { data, width, height } = confusionPixels(confusion, opts);
  const frame = confusionChartLayout(classes, opts);
  return sharp(Buffer.from(frame.svg))
    .composite([{ input: Buffer.from(data), raw: { width, height, channels: 3 }, left: frame.left, top: frame.top }])
    .png().toBuffer();
}

/** With class names: the labelled chart; without: the bare heat map (one pixel block per cell). */
export async function writeConfusionPng(path: string, confusion: readonly (readonly number[])[], opts: HeatMapOptions & { classes?: readonly string[] } = {}): Promise<void> {
  await writeFile(path, opts.classes ? await confusionChartPng(confusion, opts.classes, opts) : await confusionPng(confusion, opts));
}
