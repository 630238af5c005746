// Training-time augmentation (random zoomed crops) and --captions sample.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { augmentBatch, checkCropScale, cropResize, drawWindow, restyle } from '../src/train/augment.js';
import { Rng, STREAM } from '../src/tasks/rng.js';
import { trainClip } from '../src/train/run.js';
import { shapeSet } from '../src/train/synthetic.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

test('crop windows cover 60-180% of the area, inside the image along a side that fits, covering it otherwise', () => {
  const rng = new Rng(3, 9);
  let zoomOut = 0;
  for (let i = 0; i < 2000; i++) {
    const w = drawWindow(64, rng);
    const area = (w.w * w.h) / 64 ** 2;
    assert.ok(area >= 0.6 - 1e-9 && area <= 1.8 + 1e-9, `area ${area}`);
    for (const [o, len] of [[w.x, w.w], [w.y, w.h]] as const) {
      if (len <= 64) assert.ok(o >= 0 && o + len <= 64 + 1e-9, JSON.stringify(w));
      else assert.ok(o <= 0 && o + len >= 64 - 1e-9, JSON.stringify(w));
    }
    if (area > 1) zoomOut++;
  }
  assert.ok(zoomOut > 600 && zoomOut < 1400, `${zoomOut} of 2000 zoom out`);
});

test('--crop-scale: windows follow the given range; ranges outside 0 < min <= max <= 4 are refused', () => {
  const rng = new Rng(4, 2);
  let over = 0;
  for (let i = 0; i < 1000; i++) {
    const w = drawWindow(40, rng, { scale: [1.5, 3], ratio: [3 / 4, 4 / 3] });
    const area = (w.w * w.h) / 40 ** 2;
    assert.ok(area >= 1.5 - 1e-9 && area <= 3 + 1e-9, `area ${area}`);
    if (area > 1.8) over++;
  }
  assert.ok(over > 600, `${over} of 1000 zoom out past the default's 1.8`);
  checkCropScale([0.5, 2.2]);
  for (const bad of [[0, 1], [2, 1], [1, 5], [1], [Number.NaN, 2]]) assert.throws(() => checkCropScale(bad), /crop scale must be/, JSON.stringify(bad));
});

test('zooming out puts the image in the middle of a white margin', () => {
  const size = 8;
  const img = new Float32Array(3 * size * size).fill(-1);
  // A window twice the side, centered: the image lands in the middle 4x4, the rest is the fill.
  cropResize(img, 0, size, { x: -4, y: -4, w: 16, h: 16 }, new Float32Array(img.length), [5, 6, 7]);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = x >= 2 && x < 6 && y >= 2 && y < 6;
        assert.equal(img[c * 64 + y * size + x], inside ? -1 : 5 + c, `channel ${c} (${x}, ${y})`);
      }
    }
  }
});

test('restyle: gray equalizes channels, outline darkens only edges, blur smooths', () => {
  const size = 16;
  const n = size * size;
  const norm = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
  // A red square on white, normalized.
  const raw = new Float32Array(3 * n);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const inSq = x >= 4 && x < 12 && y >= 4 && y < 12;
    const rgb = inSq ? [1, 0, 0] : [1, 1, 1];
    for (let c = 0; c < 3; c++) raw[c * n + y * size + x] = (rgb[c]! - norm.mean[c]!) / norm.std[c]!;
  }
  const unnorm = (b: Float32Array, c: number, p: number) => b[c * n + p]! * norm.std[c]! + norm.mean[c]!;
  const gray = raw.slice();
  restyle(gray, 0, size, 'gray', norm, new Float32Array(3 * n));
  for (let p = 0; p < n; p++) {
    assert.ok(Math.abs(unnorm(gray, 0, p) - unnorm(gray, 2, p)) < 1e-5);
  }
  const lined = raw.slice();
  restyle(lined, 0, size, 'outline', norm, new Float32Array(3 * n));
  const dark = (p: number) => unnorm(lined, 0, p) < 0.2;
  assert.ok(dark(4 * size + 8) && dark(3 * size + 8), 'border of the square is dark');
  assert.ok(!dark(8 * size + 8) && !dark(0), 'inside and far outside unchanged');
  assert.ok(Math.abs(unnorm(lined, 1, 0) - 1) < 1e-5);
  const blurred = raw.slice();
  restyle(blurred, 0, size, 'blur', norm, new Float32Array(3 * n));
  assert.ok(Math.abs(unnorm(blurred, 1, 4 * size + 8) - 1 / 3) < 1e-5, 'green at the top edge: 3 white of 9 neighbours');
});

test('the full window is the identity; a half window zooms in on its quadrant', () => {
  const size = 8;
  const img = Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i));
  const same = img.slice();
  cropResize(same, 0, size, { x: 0, y: 0, w: size, h: size }, new Float32Array(img.length));
  assert.deepEqual(same, img);
  // Top-left quadrant blown up 2x: output pixel (2y+1, 2x+1) samples the source at (y+0.25, x+0.25).
  const plane = Float32Array.from({ length: 3 * size * size }, (_, i) => (i % (size * size)) % size); // value = column
  cropResize(plane, 0, size, { x: 0, y: 0, w: size / 2, h: size / 2 }, new Float32Array(plane.length));
  for (let x = 1; x < size - 1; x++) assert.ok(Math.abs(plane[3 * size + x]! - ((x + 0.5) / 2 - 0.5)) < 1e-6, `column ${x}: ${plane[3 * size + x]}`);
});

const NORM = { mean: [0.48, 0.46, 0.41], std: [0.27, 0.26, 0.28] };

test('augmentBatch is a pure function of its stream, and none leaves pixels alone', () => {
  const size = 16;
  const batch = Float32Array.from({ length: 4 * 3 * size * size }, (_, i) => Math.cos(i * 0.37));
  const a = batch.slice();
  const b = batch.slice();
  augmentBatch(a, 4, size, 'crop+style', new Rng(1, STREAM.augment(2, 5)), NORM);
  augmentBatch(b, 4, size, 'crop+style', new Rng(1, STREAM.augment(2, 5)), NORM);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, batch);
  const c = batch.slice();
  augmentBatch(c, 4, size, 'crop+style', new Rng(1, STREAM.augment(2, 6)), NORM);
  assert.notDeepEqual(c, a);
  const d = batch.slice();
  augmentBatch(d, 4, size, 'none', new Rng(1, 1), NORM);
  assert.deepEqual(d, batch);
});

test('--captions sample: every image once per epoch with one of its captions', { skip: SKIP_FIXTURES }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-aug-'));
  try {
    // 12 images with 3 captions each: 'all' would make 36 pairs per epoch, 'sample' makes 12.
    const shapes = await shapeSet(1, 32, 4, ['red', 'green', 'blue']);
    const rows = shapes.map((s, i) => {
      writeFileSync(join(dir, `${i}.png`), s.png);
      return JSON.stringify({ image: `${i}.png`, captions: [s.caption, `${s.caption} drawing`, `picture: ${s.caption}`] });
    });
    writeFileSync(join(dir, 'train.jsonl'), rows.join('\n') + '\n');
    const config = {
      projection_dim: 8,
      text_config: { hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_hidden_layers: 1, max_position_embeddings: 16 },
      vision_config: { hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_hidden_layers: 1, image_size: 32, patch_size: 16 },
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const run = (captions: 'all' | 'sample', out: string) => trainClip(
      { data: join(dir, 'train.jsonl'), config: join(dir, 'config.json'), tokenizer: fixture('common', 'tokenizer-clip'), epochs: 2, batchSize: 4, lr: 1e-3, captions, augment: 'crop+style' },
      { out: join(dir, out), threads: 1 },
    );
    const sampled = await run('sample', 'sample');
    assert.equal(sampled.steps, 2 * 3);
    const all = await run('all', 'all');
    assert.equal(all.steps, 2 * 9);
    const log = readFileSync(join(dir, 'sample', 'train_steps.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(log.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
    assert.ok(log.every((r) => Number.isFinite(r.loss) && r.lr > 0));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
