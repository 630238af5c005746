// The drawing-style changes of --augment crop+redraw: each keeps the white background and changes
// the drawing the way its name says.
import assert from 'node:assert/strict';
import test from 'node:test';
import { drawChanges, redraw, REDRAW_CHANGES, type RedrawChange } from '../src/train/redraw.js';
import { augmentBatch } from '../src/train/augment.js';
import { Rng, STREAM } from '../src/tasks/rng.js';

const size = 16;
const n = size * size;

/** A red-to-orange shaded disc with a blue dot, on white, in [0, 1]. */
function drawing(): Float32Array {
  const v = new Float32Array(3 * n).fill(1);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      const r = Math.hypot(x - 7.5, y - 7.5);
      if (r < 6) {
        v[p] = 0.9;
        v[n + p] = 0.1 + 0.04 * x;
        v[2 * n + p] = 0.1;
      }
      if (Math.hypot(x - 6, y - 6) < 1.5) {
        v[p] = 0.1;
        v[n + p] = 0.2;
        v[2 * n + p] = 0.9;
      }
    }
  }
  return v;
}

const isWhite = (v: Float32Array, p: number) => v[p]! > 0.999 && v[n + p]! > 0.999 && v[2 * n + p]! > 0.999;
const corner = 0; // (0, 0): background in every drawing here
const dark = (v: Float32Array) => { let k = 0; for (let p = 0; p < n; p++) if (v[p]! + v[n + p]! + v[2 * n + p]! < 0.9) k++; return k; };

test('every change keeps a blank canvas blank and the background white, and stays in [0, 1]', () => {
  for (const ch of REDRAW_CHANGES) {
    const blank = new Float32Array(3 * n).fill(1);
    redraw(blank, size, ch, new Rng(1, 2));
    assert.ok(blank.every((x) => x === 1), `${ch} changed a white canvas`);
    const v = drawing();
    redraw(v, size, ch, new Rng(1, 2));
    assert.ok(isWhite(v, corner), `${ch} changed the background`);
    assert.ok(v.every((x) => x >= 0 && x <= 1), `${ch} left [0, 1]`);
    assert.ok(v.some((x, i) => x !== drawing()[i]), `${ch} changed nothing`);
  }
});

test('outlines: thick covers more than thin; line art keeps only ink and white; silhouette is one colour', () => {
  const thin = drawing();
  redraw(thin, size, 'outline', new Rng(3, 1));
  const thick = drawing();
  redraw(thick, size, 'outline-thick', new Rng(3, 1));
  assert.ok(dark(thick) > dark(thin) && dark(thin) > 0, `thin ${dark(thin)}, thick ${dark(thick)}`);

  const line = drawing();
  redraw(line, size, 'line-art', new Rng(3, 1));
  const colours = new Set<string>();
  for (let p = 0; p < n; p++) colours.add(`${line[p]},${line[n + p]},${line[2 * n + p]}`);
  assert.equal(colours.size, 2, 'ink and white');
  assert.ok(isWhite(line, 10 * size + 10), 'the inside of the disc is no longer filled');

  const sil = drawing();
  redraw(sil, size, 'silhouette', new Rng(3, 1));
  const inside = new Set<string>();
  for (let p = 0; p < n; p++) if (!isWhite(sil, p)) inside.add(`${sil[p]},${sil[n + p]},${sil[2 * n + p]}`);
  assert.equal(inside.size, 1);
});

test('flat fills reduce the palette; thicken and thin move stroke weight; hue keeps gray and white', () => {
  const distinct = (v: Float32Array) => new Set(Array.from({ length: n }, (_, p) => `${v[p]},${v[n + p]},${v[2 * n + p]}`)).size;
  const flat = drawing();
  redraw(flat, size, 'flat', new Rng(5, 1));
  assert.ok(distinct(flat) < distinct(drawing()), `${distinct(flat)} colours vs ${distinct(drawing())}`);

  const thick = drawing();
  redraw(thick, size, 'thicken', new Rng(5, 1));
  const thin = drawing();
  redraw(thin, size, 'thin', new Rng(5, 1));
  const ink = (v: Float32Array) => v.reduce((s, x) => s + (1 - x), 0);
  assert.ok(ink(thick) > ink(drawing()) && ink(thin) < ink(drawing()));

  const g = new Float32Array(3 * n).fill(0.4);
  redraw(g, size, 'hue', new Rng(5, 1));
  for (const x of g) assert.ok(Math.abs(x - 0.4) < 1e-6);
});

test('drawChanges: a quarter none, half one, a quarter two distinct changes', () => {
  const rng = new Rng(9, 9);
  const counts = [0, 0, 0];
  for (let i = 0; i < 4000; i++) {
    const c = drawChanges(rng);
    counts[c.length]!++;
    assert.equal(new Set<RedrawChange>(c).size, c.length);
  }
  assert.ok(Math.abs(counts[0]! - 1000) < 120 && Math.abs(counts[1]! - 2000) < 150 && Math.abs(counts[2]! - 1000) < 120, counts.join(' '));
});

test('crop+redraw batches are reproducible from the batch stream and differ between batches', () => {
  const norm = { mean: [0.48, 0.46, 0.41], std: [0.27, 0.26, 0.28] };
  const batch = () => {
    const b = new Float32Array(4 * 3 * n);
    for (let i = 0; i < 4; i++) {
      const v = drawing();
      for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) b[i * 3 * n + c * n + p] = (v[c * n + p]! - norm.mean[c]!) / norm.std[c]!;
    }
    return b;
  };
  const a = batch();
  const b = batch();
  const c = batch();
  augmentBatch(a, 4, size, 'crop+redraw', new Rng(1, STREAM.augment(0, 3)), norm);
  augmentBatch(b, 4, size, 'crop+redraw', new Rng(1, STREAM.augment(0, 3)), norm);
  augmentBatch(c, 4, size, 'crop+redraw', new Rng(1, STREAM.augment(0, 4)), norm);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});
