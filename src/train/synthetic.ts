// A synthetic image–caption set that a small CLIP can learn in seconds: flat colored shapes on a
// noisy background, captioned "a <color> <shape>". Used to check that training learns (tests, demos).
import sharp from 'sharp';
import { Rng } from '../tasks/rng.js';

export const SHAPE_COLORS: Record<string, [number, number, number]> = {
  red: [220, 30, 30], green: [30, 170, 50], blue: [30, 60, 220], yellow: [235, 215, 30], purple: [140, 40, 170], orange: [245, 130, 20],
};
export const SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;
export type Shape = (typeof SHAPES)[number];

function inside(shape: Shape, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 'circle': return dx * dx + dy * dy <= r * r;
    case 'square': return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
    case 'triangle': return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= (dy + r) * 0.6;
    case 'cross': return (Math.abs(dx) <= r * 0.3 || Math.abs(dy) <= r * 0.3) && Math.abs(dx) <= r && Math.abs(dy) <= r;
  }
}

/** RGB bytes of one render: random position, size and background noise. */
export function renderShapePixels(color: string, shape: Shape, size: number, rng: Rng): Uint8Array {
  const rgb = SHAPE_COLORS[color];
  if (!rgb) throw new Error(`unknown color ${color}`);
  const r = size * (0.22 + 0.1 * rng.float());
  const cx = r + rng.float() * (size - 2 * r);
  const cy = r + rng.float() * (size - 2 * r);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      const hit = inside(shape, x + 0.5 - cx, y + 0.5 - cy, r);
      for (let c = 0; c < 3; c++) out[o + c] = hit ? rgb[c]! : 200 + Math.floor(rng.float() * 40);
    }
  }
  return out;
}

/** PNG bytes of one render. */
export async function renderShape(color: string, shape: Shape, size: number, rng: Rng): Promise<Uint8Array> {
  const raw = renderShapePixels(color, shape, size, rng);
  return new Uint8Array(await sharp(Buffer.from(raw), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
}

export interface ShapeSample {
  caption: string;
  png: Uint8Array;
}

/** `perClass` renders of every color × shape, in class order. */
export async function shapeSet(perClass: number, size: number, seed: number, colors = Object.keys(SHAPE_COLORS)): Promise<ShapeSample[]> {
  const rng = new Rng(seed, 7);
  const out: ShapeSample[] = [];
  for (const color of colors) {
    for (const shape of SHAPES) {
      for (let k = 0; k < perClass; k++) out.push({ caption: `a ${color} ${shape}`, png: await renderShape(color, shape, size, rng) });
    }
  }
  return out;
}

/** EasyNLP TSV text: `caption<TAB>base64 png` per line. */
export const toEasyNlpTsv = (samples: ShapeSample[]): string =>
  samples.map((s) => `${s.caption}\t${Buffer.from(s.png).toString('base64')}`).join('\n') + '\n';
