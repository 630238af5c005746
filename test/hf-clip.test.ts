// hf-clip-tiny end to end: our tokenizer + our preprocessing + our graphs vs transformers' outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipModel } from '../src/runtime/clip-model.js';
import { similarityLogits } from '../src/tasks/similarity.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, flat, golden, readJson } from './helpers.js';

const TOL = 1e-4;

for (const fused of [true, false]) {
  test(`hf-clip-tiny reproduces transformers (${fused ? 'fused' : 'plain'} attention)`, { skip: SKIP_FIXTURES }, async () => {
    const dir = fixture('hf-clip-tiny');
    const meta = readJson(fixture('hf-clip-tiny', 'golden.json'));
    const g = golden(fixture('hf-clip-tiny', 'golden.safetensors'));
    const model = await ClipModel.load(dir, { fused });
    const photos = meta.photos.map((p: string) => fixture('common', 'images', p));

    const feats = await model.encodeImages(photos, { normalize: false });
    for (const r of feats) assert.ok(r.embedding, `${r.input}: ${r.error}`);
    assertClose(flat(feats.map((r) => r.embedding!)), g.get('image_features'), TOL, 'image_features');
    const embeds = (await model.encodeImages(photos)).map((r) => r.embedding!);
    assertClose(flat(embeds), g.get('image_embeds'), TOL, 'image_embeds');

    // Batch size 3 forces several text batches padded to different lengths.
    const tf = await model.encodeTexts(meta.captions, { normalize: false, batchSize: 3 });
    assertClose(flat(tf), g.get('text_features'), TOL, 'text_features');
    const te = await model.encodeTexts(meta.captions);
    assertClose(flat(te), g.get('text_embeds'), TOL, 'text_embeds');

    const logits = similarityLogits(embeds, te, model.logitScale);
    assertClose(flat(logits.map((r) => Float32Array.from(r))), g.get('logits_per_image'), TOL * 10, 'logits_per_image');
    await model.release();
  });
}

test('hf-clip-tiny logits within 1e-4 (logit scale applied to golden-precision embeddings)', { skip: SKIP_FIXTURES }, async () => {
  // The logits are 100x-scaled cosines: check them at the 1e-4 using the model's own embeddings.
  const meta = readJson(fixture('hf-clip-tiny', 'golden.json'));
  const g = golden(fixture('hf-clip-tiny', 'golden.safetensors'));
  const model = await ClipModel.load(fixture('hf-clip-tiny'));
  const img = (await model.encodeImages(meta.photos.map((p: string) => fixture('common', 'images', p)))).map((r) => r.embedding!);
  const txt = await model.encodeTexts(meta.captions);
  const logits = flat(similarityLogits(img, txt, model.logitScale).map((r) => Float32Array.from(r)));
  assertClose(logits, g.get('logits_per_image'), 1e-4, 'logits_per_image');
  await model.release();
});

test('a batch with a missing and a corrupt image still embeds the good ones', { skip: SKIP_FIXTURES }, async () => {
  const model = await ClipModel.load(fixture('hf-clip-tiny'));
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
    await assert.rejects(ClipModel.load(join(d, 'nope')), /does not exist/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
