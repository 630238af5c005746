// SigLIP end to end on siglip-tiny (test/goldens/siglip-tiny, made by scripts/goldens/siglip.py: a plain-PyTorch
// port of transformers' SiglipModel and SiglipTokenizer): our tokenizer, preprocessing and graphs vs its outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, cpSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipModel } from '../src/runtime/clip-model.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { buildClassifier, predict } from '../src/tasks/zeroshot.js';
import { batchRow } from '../src/text/types.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, flat, golden, readJson } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled tests run from dist/test; the goldens stay in the source tree.
const DIR = join(here, '..', '..', 'test', 'goldens', 'siglip-tiny');
const TOL = 1e-4;
const meta = readJson(join(DIR, 'golden.json'));
const g = golden(join(DIR, 'golden.safetensors'));
const photos = (meta.photos as string[]).map((p) => fixture('common', 'images', p));

test('siglip-tiny is recognized as a SigLIP checkpoint', () => {
  const ck = openCheckpoint(DIR);
  assert.equal(ck.family, 'siglip');
  assert.equal(ck.scoring, 'sigmoid');
  assert.equal(ck.projectionDim, 32);
  assert.equal(ck.contextLength, 64);
  assert.ok(Math.abs(ck.logitScale - Math.log(10)) < 1e-6);
  assert.ok(Math.abs(ck.logitBias! + 2) < 1e-6);
});

test('token ids equal SiglipTokenizer\'s (sentencepiece), padded to 64 with </s>', async () => {
  const model = await ClipModel.load(DIR);
  const b = model.tokenizer.encodeBatch(meta.texts, { pad: 'max' });
  const ref = g.get('input_ids');
  assert.equal(b.length, 64);
  for (let i = 0; i < meta.texts.length; i++) {
    assert.deepEqual(batchRow(b, i), Array.from(ref.subarray(i * 64, (i + 1) * 64)), `text ${JSON.stringify(meta.texts[i])}`);
  }
  await model.release();
});

for (const fused of [true, false]) {
  test(`siglip-tiny reproduces the reference from image files and texts (${fused ? 'fused' : 'plain'} attention)`, { skip: SKIP_FIXTURES }, async () => {
    const model = await ClipModel.load(DIR, { fused });
    const pixels = flat(await Promise.all(photos.map((f) => model.preprocessor(f, f))));
    assertClose(pixels, g.get('pixel_values'), 1e-5, 'pixel_values');
    const feats = await model.encodeImages(photos, { normalize: false });
    for (const r of feats) assert.ok(r.embedding, r.error);
    assertClose(flat(feats.map((r) => r.embedding!)), g.get('image_features'), TOL, 'image_features');
    const img = (await model.encodeImages(photos)).map((r) => r.embedding!);
    assertClose(flat(img), g.get('image_embeds'), TOL, 'image_embeds');

    // Batch size 3: every batch is padded to 64 all the same (the tower pools the last position).
    assertClose(flat(await model.encodeTexts(meta.texts, { normalize: false, batchSize: 3 })), g.get('text_features'), TOL, 'text_features');
    const txt = await model.encodeTexts(meta.texts);
    assertClose(flat(txt), g.get('text_embeds'), TOL, 'text_embeds');

    // Per-label sigmoid probabilities, not a softmax: rows do not sum to 1.
    const clf = await buildClassifier(model, meta.texts);
    assert.equal(clf.scoring, 'sigmoid');
    const probs = flat(img.map((e) => Float32Array.from(predict(clf, e).probs)));
    assertClose(probs, g.get('probs'), TOL, 'probs');
    await model.release();
  });
}
