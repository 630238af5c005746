// Opt-in fast decode (--fast-decode / LoadOptions.fastDecode): large JPEGs are reduced in the decoder, other
// images and small JPEGs decode exactly as before, and the default stays the exact pipeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeImage } from '../src/image/decode.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { loadOptionsFrom } from '../src/cli/model-options.js';
import { dot } from '../src/tasks/similarity.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

const photo = () => fixture('common', 'images', 'chelsea-q90.jpg');
const bigJpeg = () => sharp(photo()).resize(1600, 1200, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer();

test('reduceTo shrinks a large JPEG at decode to that short edge, keeping the aspect', { skip: SKIP_FIXTURES }, async () => {
  const buf = await bigJpeg();
  const full = await decodeImage(buf, 'big.jpg');
  assert.deepEqual([full.width, full.height], [1600, 1200]);
  const small = await decodeImage(buf, 'big.jpg', {}, { reduceTo: 300 });
  assert.deepEqual([small.width, small.height, small.mode], [400, 300, 'RGB']);
});

test('reduceTo leaves PNGs and JPEGs already at or below the size untouched', { skip: SKIP_FIXTURES }, async () => {
  for (const f of [fixture('common', 'images', 'astronaut.png'), photo()]) {
    const exact = await decodeImage(f);
    const fast = await decodeImage(f, undefined, {}, { reduceTo: Math.min(exact.width, exact.height) });
    assert.deepEqual([fast.width, fast.height, fast.mode], [exact.width, exact.height, exact.mode], f);
    assert.ok(Buffer.from(fast.data).equals(Buffer.from(exact.data)), `${f}: same pixels`);
  }
});

test('reduceTo must be a positive integer', { skip: SKIP_FIXTURES }, async () => {
  await assert.rejects(decodeImage(await bigJpeg(), 'big.jpg', {}, { reduceTo: 0.5 }), /cannot decode image big\.jpg: decode option reduceTo must be a positive integer/);
});

test('fastDecode is opt-in and its embedding stays within 0.999 cosine of the exact one', { skip: SKIP_FIXTURES }, async () => {
  const buf = await bigJpeg();
  const exact = await ClipModel.load(fixture('hf-clip-tiny'));
  const fast = await ClipModel.load(fixture('hf-clip-tiny'), { fastDecode: true });
  const [a] = await exact.encodeImages([buf]);
  const [b] = await fast.encodeImages([buf]);
  const [again] = await exact.encodeImages([buf]);
  assert.deepEqual(Array.from(again!.embedding!), Array.from(a!.embedding!), 'the default is deterministic');
  assert.notDeepEqual(Array.from(b!.embedding!), Array.from(a!.embedding!), 'fast decode took another path');
  const c = dot(a!.embedding!, b!.embedding!);
  assert.ok(c >= 0.999, `cosine ${c}`);
  await exact.release();
  await fast.release();
});

test('--fast-decode reaches the load options only when given', () => {
  assert.equal(loadOptionsFrom({ fastDecode: true }).fastDecode, true);
  assert.equal(loadOptionsFrom({}).fastDecode, undefined);
});
