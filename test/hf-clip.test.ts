// hf-clip-tiny end to end: our tokenizer + our preprocessing + our graphs vs transformers' outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipModel, fixedBatches, lengthBuckets, RUN_COST_TOKENS } from '../src/runtime/clip-model.js';
import { similarityLogits } from '../src/tasks/similarity.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, assertImagesMatchGolden, flat, golden, maxAbsDiff, readJson } from './helpers.js';

const TOL = 1e-4;
const DIR = fixture('hf-clip-tiny');

for (const fused of [true, false]) {
  test(`hf-clip-tiny reproduces transformers (${fused ? 'fused' : 'plain'} attention)`, { skip: SKIP_FIXTURES }, async () => {
    const meta = readJson(fixture('hf-clip-tiny', 'golden.json'));
    const g = golden(fixture('hf-clip-tiny', 'golden.safetensors'));
    const model = await ClipModel.load(DIR, { fused });
    const photos = meta.photos.map((p: string) => fixture('common', 'images', p));
    const n = photos.length;

    // Our decode/resize/crop gives transformers' pixel_values; then the image tower from the image files.
    await assertImagesMatchGolden(model, photos, g, TOL);
    const embeds = (await model.encodeImages(photos)).map((r) => r.embedding!);
    assert.equal(embeds.length, n);
    assertClose(flat(embeds), g.get('image_embeds'), TOL, 'image_embeds');

    // Text tower from the captions through our tokenizer; batch size 3 pads batches to different lengths.
    const tf = await model.encodeTexts(meta.captions, { normalize: false, batchSize: 3 });
    assertClose(flat(tf), g.get('text_features'), TOL, 'text_features');
    const te = await model.encodeTexts(meta.captions);
    assertClose(flat(te), g.get('text_embeds'), TOL, 'text_embeds');

    const logits = similarityLogits(embeds, te, model.logitScale);
    assertClose(flat(logits.map((r) => Float32Array.from(r))), g.get('logits_per_image'), TOL, 'logits_per_image');
    await model.release();
  });
}

test('encodeImages on files equals encodePixels on our preprocessing', { skip: SKIP_FIXTURES }, async () => {
  const model = await ClipModel.load(DIR);
  const files = ['astronaut.png', 'camera.png', 'chelsea-palette.png', 'clip-diagram-rgba.png'].map((p) => fixture('common', 'images', p));
  const viaFiles = (await model.encodeImages(files, { batchSize: 3 })).map((r) => r.embedding!);
  const pix = await Promise.all(files.map((f) => model.preprocessor(f, f)));
  const viaPixels = await model.encodePixels(flat(pix), files.length);
  assertClose(flat(viaFiles), flat(viaPixels), 1e-6, 'embeddings');
  await model.release();
});

test('a batch with a missing and a corrupt image still embeds the good ones', { skip: SKIP_FIXTURES }, async () => {
  const model = await ClipModel.load(DIR);
  const good = fixture('common', 'images', 'chelsea.png');
  const corrupt = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  const res = await model.encodeImages([good, '/nonexistent/missing.png', corrupt, good]);
  assert.ok(res[0]!.embedding && res[3]!.embedding);
  assert.match(res[1]!.error!, /missing\.png/);
  assert.ok(res[2]!.error, 'corrupt bytes must report an error');
  assert.deepEqual(Array.from(res[0]!.embedding!), Array.from(res[3]!.embedding!));
  await model.release();
});

test('a checkpoint directory missing a file names it', { skip: SKIP_FIXTURES }, async () => {
  const { mkdtempSync, copyFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const d = mkdtempSync(join(tmpdir(), 'clip-missing-'));
  try {
    copyFileSync(fixture('hf-clip-tiny', 'config.json'), join(d, 'config.json'));
    await assert.rejects(ClipModel.load(d), /model\.safetensors/);
    await assert.rejects(ClipModel.load(join(d, 'nope')), /nope: no such file or directory/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('length buckets: cover every row, respect the batch size, and cost no more than fixed batches', () => {
  const lengths = [2, 2, 3, ...Array(20).fill(5), ...Array(40).fill(10), 11, 12, 30, 32].sort((a, b) => a - b);
  const cost = (sizes: number[]) => {
    let start = 0;
    let total = 0;
    for (const s of sizes) {
      total += RUN_COST_TOKENS + s * lengths[start + s - 1]!;
      start += s;
    }
    return total;
  };
  const sizes = lengthBuckets(lengths, 32);
  assert.equal(sizes.reduce((a, b) => a + b, 0), lengths.length);
  assert.ok(sizes.every((s) => s >= 1 && s <= 32), JSON.stringify(sizes));
  const fixed = fixedBatches(lengths.length, 32);
  assert.deepEqual(fixed, [32, 32, 3]);
  // Fixed batches feed 768 padded tokens here; the two long captions get a batch of their own.
  assert.ok(cost(sizes) < 0.85 * cost(fixed), `bucketed ${cost(sizes)} vs fixed ${cost(fixed)}: ${JSON.stringify(sizes)}`);
  assert.deepEqual(sizes.slice(-1), [2]);
  // Equal lengths: just batches of the maximum size.
  assert.equal(lengthBuckets(Array(70).fill(7), 32).length, 3);
});

test('encodeTexts gives the same embeddings bucketed by length as one caption at a time', { skip: SKIP_FIXTURES }, async () => {
  const model = await ClipModel.load(fixture('hf-clip-tiny'));
  try {
    const texts = ['a', 'a photo of a cat', ...Array.from({ length: 40 }, (_, i) => `caption number ${i} ${'with more words '.repeat(i % 7)}`)];
    const together = await model.encodeTexts(texts, { batchSize: 64 });
    for (const [i, t] of texts.entries()) {
      const [alone] = await model.encodeTexts([t]);
      assert.ok(maxAbsDiff(alone!, together[i]!) < 1e-5, `text ${i} differs`);
    }
  } finally {
    await model.release();
  }
});
