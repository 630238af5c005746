// The CLI contract: `clip embed ... --json` and `clip classify ... --json`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { similarityLogits, softmax } from '../src/tasks/similarity.js';
import { assertClose, golden, readJson } from './helpers.js';

const BIN = CLIP_BIN;

function clip(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('clip embed --json prints normalized embeddings matching transformers', { skip: SKIP_FIXTURES }, async () => {
  const meta = readJson(fixture('hf-clip-tiny', 'golden.json'));
  const g = golden(fixture('hf-clip-tiny', 'golden.safetensors'));
  const img = fixture('common', 'images', meta.photos[0]);
  const r = clip('embed', '--model', fixture('hf-clip-tiny'), '--image', img, '--text', meta.captions[0], '--text', meta.captions[1], '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.images.length, 1);
  assert.equal(out.images[0].input, img);
  assert.equal(out.texts.length, 2);
  assert.equal(out.texts[1].input, meta.captions[1]);
  const dim = g.shape('image_embeds')[1]!;
  assertClose(out.images[0].embedding, g.get('image_embeds').slice(0, dim), 1e-4, 'image embedding');
  assertClose([...out.texts[0].embedding, ...out.texts[1].embedding], g.get('text_embeds').slice(0, 2 * dim), 1e-4, 'text embeddings');
  const norm = Math.hypot(...out.texts[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-5, `embedding norm ${norm}`);
});

test('clip embed --raw prints the unnormalized projected features', { skip: SKIP_FIXTURES }, () => {
  const meta = readJson(fixture('hf-clip-tiny', 'golden.json'));
  const g = golden(fixture('hf-clip-tiny', 'golden.safetensors'));
  const r = clip('embed', '--model', fixture('hf-clip-tiny'), '--text', meta.captions[0], '--json', '--raw');
  assert.equal(r.code, 0, r.stderr);
  const dim = g.shape('text_features')[1]!;
  assertClose(JSON.parse(r.stdout).texts[0].embedding, g.get('text_features').slice(0, dim), 1e-4, 'text features');
});

test('clip classify --json gives softmax scores over the labels', { skip: SKIP_FIXTURES }, async () => {
  const imgs = ['astronaut.png', 'chelsea.png'].map((p) => fixture('common', 'images', p));
  const r = clip('classify', '--model', fixture('hf-clip-tiny'), '--labels', 'a photo of an astronaut,a photo of a cat,a cup of coffee', ...imgs, '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.length, 2);
  // Expected: softmax(exp(logit_scale) * cos) from the golden text embeddings (captions 0..2) and the library's image embeddings.
  const g = golden(fixture('hf-clip-tiny', 'golden.safetensors'));
  const dim = g.shape('text_embeds')[1]!;
  const te = [0, 1, 2].map((j) => g.get('text_embeds').slice(j * dim, (j + 1) * dim));
  const lib = await ClipModel.load(fixture('hf-clip-tiny'));
  const ie = (await lib.encodeImages(imgs)).map((r) => r.embedding!);
  const logits = similarityLogits(ie, te, lib.logitScale);
  out.forEach((o: any, i: number) => {
    assert.equal(o.image, imgs[i]);
    const labels = Object.keys(o.scores);
    assert.deepEqual(labels, ['a photo of an astronaut', 'a photo of a cat', 'a cup of coffee']);
    const p = softmax(logits[i]!);
    assertClose(labels.map((l) => o.scores[l]), p, 1e-4, `scores of ${o.image}`);
    assert.equal(o.label, labels[p.indexOf(Math.max(...p))]);
  });
});

test('clip embed reports a bad image by name, embeds the rest, and exits 3 (partial)', { skip: SKIP_FIXTURES }, () => {
  const good = fixture('common', 'images', 'chelsea.png');
  const r = clip('embed', '--model', fixture('hf-clip-tiny'), '--image', '/nonexistent/broken.jpg', '--image', good, '--json');
  assert.equal(r.code, 3);
  assert.match(r.stderr, /broken\.jpg/);
  const out = JSON.parse(r.stdout);
  assert.match(out.images[0].error, /broken\.jpg/);
  assert.equal(out.images[1].embedding.length, 16);
});

test('clip with a missing model directory fails with a clear message', () => {
  const r = clip('embed', '--model', '/nonexistent/model-dir', '--text', 'x', '--json');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/nonexistent\/model-dir/);
});
