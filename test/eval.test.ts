// End to end: zero-shot and retrieval evaluation on the fixture images with hf-clip-tiny, checked against
// an independent computation from the model's own embeddings; the `clip eval` commands; bad images.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, readJson } from './helpers.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { readLabeledFolder, readRetrievalJsonl, readRetrievalTsv } from '../src/tasks/datasets.js';
import { evalZeroShot } from '../src/tasks/eval-zeroshot.js';
import { evalRetrieval } from '../src/tasks/eval-retrieval.js';
import { heatMapLayout } from '../src/tasks/confusion-png.js';

const MODEL = fixture('hf-clip-tiny');
const img = (name: string) => fixture('common', 'images', name);
const CLASSES: Record<string, string[]> = {
  astronaut: ['astronaut.png'],
  cat: ['chelsea.png', 'chelsea-palette.png', 'chelsea-q90.jpg'],
  coffee: ['coffee.png'],
  flower: ['flower.jpg'],
  rocket: ['rocket.png'],
};
const TEMPLATES = ['a photo of a {}.', 'a blurry picture of the {}'];
const RETRIEVAL_IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.png', 'flower.jpg', 'camera.png'];

let tmp = '';
let model: ClipModel;
before(async () => {
  if (SKIP_FIXTURES) return;
  tmp = mkdtempSync(join(tmpdir(), 'clip-eval-'));
  for (const [c, files] of Object.entries(CLASSES)) {
    mkdirSync(join(tmp, 'folder', c), { recursive: true });
    for (const f of files) symlinkSync(img(f), join(tmp, 'folder', c, f));
  }
  writeFileSync(join(tmp, 'folder', 'cat', 'broken.jpg'), 'not a jpeg at all');
  // EasyNLP layout: one pair per line, the image repeated on each of its caption lines.
  const lines = RETRIEVAL_IMAGES.flatMap((f, i) => {
    const b64 = readFileSync(img(f)).toString('base64');
    return [`a photo number ${i}\t${b64}`, `${f.split('.')[0]} seen again\t${b64}`];
  });
  lines.splice(5, 0, `a corrupt picture\t${Buffer.from('garbage bytes here, no image').toString('base64')}`);
  writeFileSync(join(tmp, 'pairs.tsv'), lines.join('\n') + '\n');
  model = await ClipModel.load(MODEL);
});
after(async () => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await model?.release();
});

const dotp = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);
const unit = (v: number[]) => { const n = Math.hypot(...v); return v.map((x) => x / n); };
/** 0-based position of `i` when sorting by descending score, equal scores by index. */
const position = (scores: number[], i: number) =>
  scores.map((s, j) => ({ s, j })).sort((a, b) => b.s - a.s || a.j - b.j).findIndex((e) => e.j === i);

/** What the zero-shot report should say, computed from scratch from the model's embeddings. */
async function expectedZeroShot(templates: string[], k: number) {
  const ds = readLabeledFolder(join(tmp, 'folder'));
  const good = ds.samples.filter((s) => !s.input.endsWith('broken.jpg'));
  const emb = (await model.encodeImages(good.map((s) => s.input))).map((r) => Array.from(r.embedding!));
  const te = await model.encodeTexts(ds.classes.flatMap((c) => templates.map((t) => t.split('{}').join(c))));
  const classEmb = ds.classes.map((_, c) => {
    const sum = new Array(te[0]!.length).fill(0);
    for (let t = 0; t < templates.length; t++) unit(Array.from(te[c * templates.length + t]!)).forEach((x, d) => (sum[d] += x));
    return unit(sum);
  });
  const logits = emb.map((e) => classEmb.map((w) => model.logitScale * dotp(e, w)));
  const ranks = logits.map((row, i) => position(row, good[i]!.label));
  const confusion = ds.classes.map(() => ds.classes.map(() => 0));
  // indexOf finds the first maximum: ties go to the lower class index, as the library documents.
  logits.forEach((row, i) => confusion[good[i]!.label]![row.indexOf(Math.max(...row))]!++);
  return {
    classes: ds.classes, logits, confusion, n: good.length,
    top1: ranks.filter((r) => r < 1).length / ranks.length,
    topk: ranks.filter((r) => r < k).length / ranks.length,
  };
}

test('zero-shot report equals an independent computation; a corrupt image is listed, not fatal', { skip: SKIP_FIXTURES }, async () => {
  const ds = readLabeledFolder(join(tmp, 'folder'));
  assert.deepEqual(ds.classes, ['astronaut', 'cat', 'coffee', 'flower', 'rocket']);
  assert.equal(ds.samples.length, 8);
  const r = await evalZeroShot(model, ds, { templates: TEMPLATES, k: 2, batchSize: 3 });
  const x = await expectedZeroShot(TEMPLATES, 2);

  assert.deepEqual(Object.keys(r).sort(), ['accuracy', 'classes', 'confusion', 'counts', 'failed', 'k', 'perClass', 'predictions', 'templates', 'topConfusions']);
  assert.deepEqual(r.counts, { images: 8, evaluated: 7, failed: 1 });
  assert.equal(r.failed.length, 1);
  assert.match(r.failed[0]!.input, /broken\.jpg$/);
  assert.match(r.failed[0]!.error, /broken\.jpg/);
  assert.equal(r.k, 2);
  assert.deepEqual(Object.keys(r.accuracy), ['top1', 'top2', 'meanPerClass']);
  assert.equal(r.accuracy.top1, x.top1);
  assert.equal(r.accuracy.top2, x.topk);
  assert.deepEqual(r.confusion, x.confusion);
  const perClass = x.confusion.map((row, c) => row[c]! / row.reduce((a, b) => a + b, 0));
  assert.deepEqual(r.perClass.map((c) => c.accuracy), perClass);
  assert.equal(r.accuracy.meanPerClass, perClass.reduce((a, b) => a + b, 0) / perClass.length);
  assert.equal(r.predictions.length, x.n);
  r.predictions.forEach((p, i) => {
    const row = x.logits[i]!;
    assert.equal(p.predicted, x.classes[row.indexOf(Math.max(...row))]);
    assert.equal(p.top.length, 2);
    assertClose([p.top[0]!.logit], [Math.max(...row)], 1e-4, `top logit of ${p.input}`);
  });
  // Ensembling matters: one template gives other class embeddings, hence other logits.
  const single = await evalZeroShot(model, ds, { templates: TEMPLATES.slice(0, 1), k: 2 });
  assert.notDeepEqual(single.predictions.map((p) => p.top[0]!.logit), r.predictions.map((p) => p.top[0]!.logit));
});

/** What the retrieval report should say, from scratch: sorted lists and the first positive's position. */
async function expectedRetrieval(texts: { text: string; image: number }[], images: Uint8Array[], ks: number[]) {
  const ie = (await model.encodeImages(images)).map((r) => Array.from(r.embedding!));
  const te = (await model.encodeTexts(texts.map((t) => t.text))).map((e) => Array.from(e));
  const sim = ie.map((a) => te.map((b) => dotp(a, b)));
  const i2t = ie.map((_, i) => Math.min(...texts.flatMap((t, j) => (t.image === i ? [position(sim[i]!, j)] : []))));
  const t2i = texts.map((t, j) => position(sim.map((row) => row[j]!), t.image));
  const rec = (ranks: number[]) => Object.fromEntries(ks.map((k) => [`R@${k}`, ranks.filter((r) => r < k).length / ranks.length]));
  return { imageToText: rec(i2t), textToImage: rec(t2i), i2t, t2i };
}

test('retrieval on an EasyNLP TSV equals an independent computation; identical images merge', { skip: SKIP_FIXTURES }, async () => {
  const ds = await readRetrievalTsv(join(tmp, 'pairs.tsv'));
  assert.equal(ds.images.length, RETRIEVAL_IMAGES.length + 1, 'repeated images merged by content; the corrupt one kept for reporting');
  assert.equal(ds.texts.length, 2 * RETRIEVAL_IMAGES.length + 1);
  const ks = [1, 5, 10];
  const r = await evalRetrieval(model, ds, { ks, batchSize: 4 });
  assert.deepEqual(r.counts, { images: 7, texts: 13, failedImages: 1, droppedTexts: 1, imageQueries: 6, textQueries: 12 });
  assert.deepEqual(r.failed.map((f) => f.input), ['pairs.tsv:6']);
  assert.match(r.failed[0]!.error, /pairs\.tsv:6/);

  const goodTexts = ds.texts.filter((t) => t.image !== 3).map((t) => ({ text: t.text, image: t.image > 3 ? t.image - 1 : t.image }));
  assert.equal(goodTexts.length, 12);
  const x = await expectedRetrieval(goodTexts, RETRIEVAL_IMAGES.map((f) => new Uint8Array(readFileSync(img(f)))), ks);
  assert.deepEqual(r.imageToText, x.imageToText);
  assert.deepEqual(r.textToImage, x.textToImage);
  assert.equal(r.textToImage['R@10'], 1, 'k = 10 over 6 images is clamped to the whole pool');
  assert.deepEqual(r.ranks.imageToText.map((q) => q.rank - 1), x.i2t);
  assert.deepEqual(r.ranks.textToImage.map((q) => q.rank - 1), x.t2i);
  const six = [...Object.values(x.imageToText), ...Object.values(x.textToImage)];
  assertClose([r.mean!], [six.reduce((a, b) => a + b, 0) / 6], 1e-12, 'mean of the six recalls');

  const pairwise = await readRetrievalTsv(join(tmp, 'pairs.tsv'), { dedupe: false });
  assert.equal(pairwise.images.length, 13);
  const rp = await evalRetrieval(model, pairwise, { ks: [1] });
  assert.equal(rp.counts.imageQueries, 12, 'without merging every line is its own image with one caption');
});

function clipEval(...args: string[]): { code: number; stdout: string; stderr: string } {
  // main.ts wires registerEval in; this runs the command on its own so the test does not depend on that.
  const entry = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'cli', 'commands', 'eval.js')).href;
  const script = `import { Command } from 'commander'; import { registerEval } from ${JSON.stringify(entry)};
    const p = new Command('clip'); registerEval(p);
    try { await p.parseAsync(${JSON.stringify(args)}, { from: 'user' }); }
    catch (e) { process.stderr.write('clip: ' + e.message + '\\n'); process.exitCode = 1; }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('clip eval zeroshot: JSON report, report file, confusion PNG, exit 3 on a bad image', { skip: SKIP_FIXTURES }, async () => {
  writeFileSync(join(tmp, 'templates.txt'), `# two templates\n${TEMPLATES.join('\n')}\n`);
  const report = join(tmp, 'zs.json');
  const png = join(tmp, 'zs.png');
  const r = clipEval('eval', 'zeroshot', '-m', MODEL, join(tmp, 'folder'), '--templates', join(tmp, 'templates.txt'), '--top', '2',
    '--json', '--report', report, '--confusion-png', png);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /broken\.jpg/);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(readJson(report), out);
  assert.deepEqual(out.templates, TEMPLATES);
  const x = await expectedZeroShot(TEMPLATES, 2);
  assert.equal(out.accuracy.top1, x.top1);
  assert.equal(out.accuracy.top2, x.topk);
  assert.deepEqual(out.confusion, x.confusion);
  const meta = await sharp(png).metadata();
  // The heat map framed by axis titles and class names: wider and taller than the bare map.
  assert.ok(meta.width! > heatMapLayout(5).size + 40 && meta.height! > heatMapLayout(5).size + 40, `${meta.width}x${meta.height}`);
  assert.equal(meta.format, 'png');

  const text = clipEval('eval', 'zeroshot', '-m', MODEL, join(tmp, 'folder'));
  assert.equal(text.code, 3, text.stderr);
  assert.match(text.stdout, /top-1 accuracy/);
  assert.match(text.stdout, /failed images \(1, skipped\):\n.*broken\.jpg/);
  assert.match(text.stdout, /confusion matrix/);

  const both = clipEval('eval', 'zeroshot', '-m', MODEL, join(tmp, 'folder'), '--csv', join(tmp, 'x.csv'));
  assert.equal(both.code, 1);
  assert.match(both.stderr, /either a dataset folder or --csv/);
});

test('clip eval retrieval on JSONL with several captions per image', { skip: SKIP_FIXTURES }, async () => {
  const jsonl = join(tmp, 'captions.jsonl');
  writeFileSync(jsonl, [
    { image: img('astronaut.png'), captions: ['an astronaut', 'a person in a suit'] },
    { image: img('coffee.png'), caption: 'a cup of coffee' },
    { image: img('rocket.png'), sentences: [{ raw: 'a rocket' }, { raw: 'launch' }] },
    { image: img('coffee.png'), text: 'coffee again' },
  ].map((o) => JSON.stringify(o)).join('\n'));
  const r = clipEval('eval', 'retrieval', '-m', MODEL, '--jsonl', jsonl, '--k', '1,2', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const lib = await evalRetrieval(model, await readRetrievalJsonl(jsonl), { ks: [1, 2] });
  assert.deepEqual(out.counts, { images: 3, texts: 6, failedImages: 0, droppedTexts: 0, imageQueries: 3, textQueries: 6 });
  assert.deepEqual(out.imageToText, lib.imageToText);
  assert.deepEqual(out.textToImage, lib.textToImage);
  assert.equal(out.textToImage['R@2'] >= out.textToImage['R@1'], true);

  const text = clipEval('eval', 'retrieval', '-m', MODEL, '--tsv', join(tmp, 'pairs.tsv'));
  assert.equal(text.code, 3, text.stderr);
  assert.match(text.stdout, /image→text/);
  assert.match(text.stdout, /mean recall: \d+\.\d\d%/);
  assert.match(text.stdout, /pairs\.tsv:6/);
});
