// The package's entry points: `clip-ts` (load, embed, classify, evaluate), `clip-ts/train`, `clip-ts/search` and
// `clip-ts/hub`, resolved through package.json "exports" exactly as an app would import them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';

const INTERNALS = ['untieClassAndPosition', 'isTransposedLinear', 'hfKeys', 'appendAdamW', 'filterToSql', 'Rng', 'toCheckpointLayout', 'buildClipLossGraph', 'SafetensorsFile', 'openCheckpoint'];

test('clip-ts exports the library, not its internals or the other entry points', async () => {
  const api: Record<string, unknown> = await import('clip-ts');
  for (const name of ['ClipModel', 'classify', 'buildClassifier', 'predict', 'loadTokenizer', 'evalZeroShot', 'fitLinearProbe', 'runEmbedJob']) {
    assert.equal(typeof api[name], 'function', `clip-ts should export ${name}`);
  }
  for (const name of [...INTERNALS, 'ClipTrainer', 'openStore', 'resolveModel']) assert.ok(!(name in api), `clip-ts exports ${name}`);
});

test('clip-ts/train, clip-ts/search and clip-ts/hub resolve to their own entry points', async () => {
  const train: Record<string, unknown> = await import('clip-ts/train');
  const search: Record<string, unknown> = await import('clip-ts/search');
  const hub: Record<string, unknown> = await import('clip-ts/hub');
  assert.equal(typeof train.trainClip, 'function');
  assert.equal(typeof train.ClipTrainer, 'function');
  assert.equal(typeof search.openStore, 'function');
  assert.equal(typeof search.ExactStore, 'function');
  assert.equal(typeof hub.resolveModel, 'function');
  for (const mod of [train, search, hub]) for (const name of INTERNALS) assert.ok(!(name in mod), `an entry point exports ${name}`);
});

test('importing clip-ts loads neither LanceDB nor Arrow', () => {
  // A resolve hook in a child process records every module the import pulls in.
  const dir = mkdtempSync(join(tmpdir(), 'clip-loads-'));
  const log = join(dir, 'loads.txt');
  const hooks = `import { appendFileSync } from 'node:fs';
    export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`;
  const script = `import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));
    const t0 = performance.now();
    await import('clip-ts');
    process.stdout.write(JSON.stringify({ ms: performance.now() - t0, rssMb: process.memoryUsage().rss / 2 ** 20 }));`;
  try {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const loads = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    assert.ok(loads.some((u) => u.includes('onnxruntime-node')), 'the hook saw the runtime load (it works)');
    assert.deepEqual(loads.filter((u) => /@lancedb|apache-arrow|fastify/.test(u)), []);
    const { ms, rssMb } = JSON.parse(r.stdout);
    process.stdout.write(`# import('clip-ts'): ${ms.toFixed(0)} ms, RSS ${rssMb.toFixed(0)} MB, ${loads.length} modules resolved\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('classify: one call from images and labels to the same answer as buildClassifier + predict', { skip: SKIP_FIXTURES }, async () => {
  const { ClipModel, buildClassifier, classify, predict } = await import('clip-ts');
  const model = await ClipModel.load(fixture('hf-clip-tiny'));
  try {
    const images = ['astronaut.png', 'chelsea.png'].map((f) => fixture('common', 'images', f));
    const labels = ['an astronaut', 'a cat', 'a cup of coffee'];
    const out = await classify(model, [...images, '/nonexistent/x.png'], labels, { templates: ['a photo of {}.', 'a drawing of {}.'] });
    const clf = await buildClassifier(model, labels, ['a photo of {}.', 'a drawing of {}.']);
    const embs = await model.encodeImages(images);
    for (const [i, r] of out.slice(0, 2).entries()) {
      assert.ok('label' in r, JSON.stringify(r));
      const p = predict(clf, embs[i]!.embedding!);
      assert.deepEqual(labels.map((l) => r.scores[l]), p.probs);
      assert.equal(r.label, labels[p.ranking[0]!]);
      assert.deepEqual(r.ranking, p.ranking.map((k) => labels[k]));
    }
    assert.ok('error' in out[2]! && /x\.png/.test(out[2].error));
    // A built-in template set by name.
    const named = await classify(model, images.slice(0, 1), labels, { templates: 'ensemble' });
    assert.ok('label' in named[0]!);
  } finally {
    await model.release();
  }
});
