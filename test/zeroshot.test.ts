// Zero-shot classification with prompt ensembles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ClipModel } from '../src/runtime/clip-model.js';
import { buildClassifier, predict } from '../src/tasks/zeroshot.js';
import { loadTemplates, TEMPLATE_SETS } from '../src/tasks/templates.js';
import { similarityLogits, softmax } from '../src/tasks/similarity.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose } from './helpers.js';

const CLASSES = ['astronaut', 'cat', 'cup of coffee', 'rocket'];
const IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png'];

test('one template equals plain classification over the filled prompts', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(fixture('hf-clip-tiny'));
  const clf = await buildClassifier(m, CLASSES, ['a photo of a {}.']);
  const txt = await m.encodeTexts(CLASSES.map((c) => `a photo of a ${c}.`));
  const img = (await m.encodeImages(IMAGES.map((f) => fixture('common', 'images', f)))).map((r) => r.embedding!);
  const plain = similarityLogits(img, txt, m.logitScale).map(softmax);
  img.forEach((e, i) => assertClose(predict(clf, e).probs, plain[i]!, 1e-6, `image ${i}`));
  await m.release();
});

test('several templates equal the mean-of-normalized recipe computed independently', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(fixture('hf-clip-tiny'));
  const templates = TEMPLATE_SETS.ensemble!;
  const clf = await buildClassifier(m, CLASSES, templates);
  // Independent: embed each class's prompts separately (unnormalized features), normalize in float64, average, renormalize.
  const expected: number[][] = [];
  for (const c of CLASSES) {
    const feats = await m.encodeTexts(templates.map((t) => t.replaceAll('{}', c)), { normalize: false });
    const mean = new Array(m.dim).fill(0);
    for (const f of feats) {
      const n = Math.hypot(...f);
      f.forEach((x, k) => (mean[k] += x / n / feats.length));
    }
    const n = Math.hypot(...mean);
    expected.push(mean.map((x) => x / n));
  }
  clf.weights.forEach((w, i) => assertClose(w, expected[i]!, 1e-6, `class ${CLASSES[i]}`));
  // And the ensemble differs from a single template (the test would pass vacuously otherwise).
  const single = await buildClassifier(m, CLASSES, [templates[0]!]);
  assert.ok(Math.abs(single.weights[0]![0]! - clf.weights[0]![0]!) > 1e-4);
  await m.release();
});

test('predict ranks by probability with ties broken by class order', () => {
  const clf = { classes: ['a', 'b', 'c'], templates: ['{}'], logitScale: 1, weights: [Float32Array.of(1, 0), Float32Array.of(0, 1), Float32Array.of(1, 0)] };
  const p = predict(clf, Float32Array.of(1, 0));
  assert.deepEqual(p.ranking, [0, 2, 1]);
  assert.ok(Math.abs(p.probs.reduce((a, b) => a + b) - 1) < 1e-12);
});

test('template files: per-dataset JSON, plain text, and clear errors', { skip: SKIP_FIXTURES }, () => {
  const cifar = loadTemplates(fixture('common', 'zeroshot-prompts.json'), 'CIFAR10');
  assert.equal(cifar.classes!.length, 10);
  assert.ok(cifar.templates.length > 1 && cifar.templates.every((t) => t.includes('{}')));
  assert.throws(() => loadTemplates(fixture('common', 'zeroshot-prompts.json')), /--dataset/);
  const d = mkdtempSync(join(tmpdir(), 'clip-tpl-'));
  try {
    writeFileSync(join(d, 't.txt'), '# comment\na photo of a {}.\n\na sketch of a {}.\n');
    assert.deepEqual(loadTemplates(join(d, 't.txt')).templates, ['a photo of a {}.', 'a sketch of a {}.']);
    writeFileSync(join(d, 'bad.txt'), 'no placeholder here\n');
    assert.throws(() => loadTemplates(join(d, 'bad.txt')), /no \{\}/);
    assert.throws(() => loadTemplates(join(d, 'missing.txt')), /missing\.txt/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('clip classify with --templates, --top and a labels file', { skip: SKIP_FIXTURES }, async () => {
  const d = mkdtempSync(join(tmpdir(), 'clip-cls-'));
  try {
    writeFileSync(join(d, 'labels.txt'), CLASSES.join('\n') + '\n');
    const img = fixture('common', 'images', 'chelsea.png');
    const r = spawnSync(process.execPath, [CLIP_BIN, 'classify', '--model', fixture('hf-clip-tiny'),
      '--labels-file', join(d, 'labels.txt'), '--templates', 'ensemble', '--top', '2', img, '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const m = await ClipModel.load(fixture('hf-clip-tiny'));
    const clf = await buildClassifier(m, CLASSES, TEMPLATE_SETS.ensemble);
    const p = predict(clf, (await m.encodeImages([img]))[0]!.embedding!);
    assertClose(CLASSES.map((c) => out[0].scores[c]), p.probs, 1e-5, 'scores');
    assert.deepEqual(out[0].top.map((t: any) => t.label), p.ranking.slice(0, 2).map((i) => CLASSES[i]));
    await m.release();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
