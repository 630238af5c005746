// Decoding + preprocessing on worker threads (LoadOptions.decodeWorkers) gives exactly what the main thread
// gives, images and per-image errors alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import sharp from 'sharp';
import { ClipModel } from '../src/runtime/clip-model.js';
import { PreprocessPool } from '../src/runtime/preprocess-pool.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

test('a pool of 2 decode workers gives the main thread\'s embeddings and errors', { skip: SKIP_FIXTURES }, async () => {
  const files: Array<string | Uint8Array> = readdirSync(fixture('common', 'images')).sort().map((f) => fixture('common', 'images', f));
  files.splice(3, 0, fixture('common', 'images', 'no-such-file.png'), Uint8Array.from([0xff, 0xd8, 0xff, 0x00, 1, 2, 3]));
  const main = await ClipModel.load(fixture('hf-clip-tiny'), { decodeWorkers: 0 });
  const pooled = await ClipModel.load(fixture('hf-clip-tiny'), { decodeWorkers: 2 });
  const a = await main.encodeImages(files, { batchSize: 5 });
  const b = await pooled.encodeImages(files, { batchSize: 5 });
  assert.equal((pooled as unknown as { pool?: { size: number } }).pool?.size, 2, 'the pool did the work');
  assert.equal((main as unknown as { pool?: unknown }).pool, undefined, 'decodeWorkers 0: no pool');
  assert.equal(b.length, files.length);
  a.forEach((r, i) => {
    assert.equal(b[i]!.error, r.error, `${r.input}: same error`);
    if (r.embedding) assert.deepEqual(Array.from(b[i]!.embedding!), Array.from(r.embedding), `${r.input}: same embedding`);
  });
  assert.match(b[3]!.error!, /no-such-file\.png: file not found/);
  assert.match(b[4]!.error!, /cannot decode image <buffer 4>/);
  assert.equal(b.filter((r) => r.embedding).length, files.length - 2);
  await main.release();
  await pooled.release();
});

test('truncated JPEGs failing together on several workers each get their own decoder message', { skip: SKIP_FIXTURES }, async () => {
  // libvips has one error buffer per process: failures on two workers at once mix their messages unless
  // each failure is re-run with the workers idle (this failed with "Unknown error" before that re-run).
  const full = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).jpeg().toBuffer();
  const cut = Array.from({ length: 12 }, (_, i) => new Uint8Array(full.subarray(0, Math.floor(full.length * (0.1 + i * 0.05)))));
  const m = await ClipModel.load(fixture('hf-clip-tiny'), { decodeWorkers: 2 });
  const res = await m.encodeImages([full, ...cut, full], { batchSize: 16 });
  assert.ok(res[0]!.embedding && res[13]!.embedding, 'the whole JPEGs embed');
  res.slice(1, 13).forEach((r, i) => assert.equal(r.error, `cannot decode image <buffer ${i + 1}>: VipsJpeg: premature end of JPEG image`));
  await m.release();
});

test('a pool whose workers cannot start hands its images to the main thread', async () => {
  // A config the worker's preprocessor refuses at start-up: every worker dies, nothing is lost.
  const bad = { kind: 'hf' as const, hfConfig: { size: 1e6 }, size: 224, mean: [0, 0, 0], std: [1, 1, 1] };
  const pool = new PreprocessPool(bad, {}, 2, async (_input, name) => Float32Array.of(name.length));
  const got = await Promise.all(['a', 'bb', 'ccc', 'dddd', 'eeeee'].map((n) => pool.run(n, n)));
  assert.deepEqual(got.map((g) => g[0]), [1, 2, 3, 4, 5]);
  await pool.close();
});
