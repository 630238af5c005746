// SigLIP end to end on siglip-tiny (test/goldens/siglip-tiny, made by scripts/goldens/siglip.py: a plain-PyTorch
// port of transformers' SiglipModel and SiglipTokenizer): our tokenizer, preprocessing and graphs vs its outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipModel } from '../src/runtime/clip-model.js';
import { buildServer } from '../src/server/app.js';
import { pickFiles } from '../src/hub/files.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { buildClassifier, predict } from '../src/tasks/zeroshot.js';
import { batchRow } from '../src/text/types.js';
import { parseSentencePieceModel } from '../src/text/sentencepiece.js';
import { loadTokenizer as loadTokenizerFiles } from '../src/text/index.js';
import { loadTokenizer } from '../src/models/tokenizer.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import { checkSiglipShapes, siglip, siglipConfig, siglipWeights } from '../src/models/families/siglip.js';
import { ClipTrainer, type TrainBatch } from '../src/train/trainer.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, assertImagesMatchGolden, assertGradClose, assertParamsAfterStep, flat, golden, readJson } from './helpers.js';
import { runClip } from './clip-process.js';

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
  assert.equal(ck.score.kind, 'sigmoid');
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
    await assertImagesMatchGolden(model, photos, g, TOL);
    const img = (await model.encodeImages(photos)).map((r) => r.embedding!);
    assertClose(flat(img), g.get('image_embeds'), TOL, 'image_embeds');

    // Batch size 3: every batch is padded to 64 all the same (the tower pools the last position).
    assertClose(flat(await model.encodeTexts(meta.texts, { normalize: false, batchSize: 3 })), g.get('text_features'), TOL, 'text_features');
    const txt = await model.encodeTexts(meta.texts);
    assertClose(flat(txt), g.get('text_embeds'), TOL, 'text_embeds');

    // Per-label sigmoid probabilities, not a softmax: rows do not sum to 1.
    const clf = await buildClassifier(model, meta.texts);
    assert.equal(clf.score?.kind, 'sigmoid');
    const probs = flat(img.map((e) => Float32Array.from(predict(clf, e).probs)));
    assertClose(probs, g.get('probs'), TOL, 'probs');
    await model.release();
  });
}

test('one AdamW step with the sigmoid loss matches the reference step', async (t) => {
  const spec = meta.train_step;
  const cfg = siglipConfig(readJson(join(DIR, 'config.json')));
  const ref = new SafetensorsFile(join(DIR, 'train-step.safetensors'));
  const get = (k: string) => toFloat32(ref.get(k));
  const [n, T] = ref.info('input_ids')!.shape as [number, number];
  const batch: TrainBatch = {
    pixelValues: get('pixel_values'), inputIds: new BigInt64Array(ref.get('input_ids').bytes.slice().buffer), n, seqLen: T,
    eot: new Array(n).fill(T - 1),
  };
  const o = spec.optimizer;
  const trainer = await ClipTrainer.create(cfg, siglipWeights(new SafetensorsFile(join(DIR, 'model.safetensors'))), {
    adamw: { betas: o.betas, eps: o.eps, weightDecay: o.weight_decay }, outputGrads: true,
    loss: siglip.train!.loss, towers: siglip.train!.towers,
  });
  try {
    const res = await trainer.step(batch, o.lr);
    const lossRef = get('loss')[0]!;
    assert.ok(Math.abs(res.loss - lossRef) <= 1e-5, `loss ${res.loss} vs ${lossRef}`);

    // Every gradient, in checkpoint layout (the trainer's parameters are the stored tensors: in_proj packed,
    // Linear weights [out, in]); the same tolerance as the CLIP step (1e-4 absolute or 1e-3 relative).
    const ours = res.grads!;
    const expected = ref.keys().filter((k) => k.startsWith('grad/')).map((k) => k.slice(5));
    assert.deepEqual([...ours.keys()].sort(), expected.sort(), 'a gradient for every parameter');
    let worstGrad = 0;
    for (const name of expected) {
      worstGrad = Math.max(worstGrad, assertGradClose(ours.get(name)!, get(`grad/${name}`), `grad/${name}`));
    }
    // Parameters after the step: 1e-5, plus what gradient noise explains through Adam's first step (see train-step.test.ts).
    let compared = 0;
    for (const h of trainer.checkpointTensors()) {
      if (!ref.has(`after/${h.name}`)) continue;
      compared++;
      assertParamsAfterStep(h.data, get(`after/${h.name}`), ours.get(h.name)!, get(`grad/${h.name}`), o.lr, o.eps, `after/${h.name}`);
    }
    assert.equal(compared, ref.keys().filter((k) => k.startsWith('after/')).length);
    const after = await trainer.evaluate(batch);
    assert.ok(Math.abs(after - get('loss_after_step')[0]!) <= 1e-5, `loss after step ${after} vs ${get('loss_after_step')[0]}`);
    t.diagnostic(`loss ${res.loss} (ref ${lossRef}); after ${after}; worst |grad diff| ${worstGrad.toExponential(2)}`);
  } finally {
    await trainer.release();
  }
});

test('--loss softmax on SigLIP: its towers with the softmax objective, logit_bias left as it is', async () => {
  const cfg = siglipConfig(readJson(join(DIR, 'config.json')));
  const ref = new SafetensorsFile(join(DIR, 'train-step.safetensors'));
  const [n, T] = ref.info('input_ids')!.shape as [number, number];
  const batch: TrainBatch = {
    pixelValues: toFloat32(ref.get('pixel_values')), inputIds: new BigInt64Array(ref.get('input_ids').bytes.slice().buffer), n, seqLen: T,
    eot: new Array(n).fill(T - 1),
  };
  const trainer = await ClipTrainer.create(cfg, siglipWeights(new SafetensorsFile(join(DIR, 'model.safetensors'))), {
    adamw: { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }, loss: 'softmax', towers: siglip.train!.towers,
  });
  try {
    assert.ok(!trainer.params.has('logit_bias'), 'a softmax ignores a shared shift: the bias is no parameter');
    const res = await trainer.step(batch, 1e-3);
    // Not the sigmoid loss of the same batch: a softmax over 4 pairs starts near ln 4.
    assert.ok(Number.isFinite(res.loss) && Math.abs(res.loss - toFloat32(ref.get('loss'))[0]!) > 1e-2, `loss ${res.loss}`);
    assert.ok(Math.abs(res.loss - Math.log(n)) < 1, `softmax loss ${res.loss} near ln ${n}`);
  } finally {
    await trainer.release();
  }
});

const clip = (...args: string[]) => spawnSync(process.execPath, [CLIP_BIN, ...args], { encoding: 'utf8', timeout: 240_000 });

test('clip embed / classify / index / search / train on siglip-tiny through the CLI', { skip: SKIP_FIXTURES }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-siglip-'));
  try {
    // embed: the golden's unnormalized features.
    const e = clip('embed', '--model', DIR, '--image', photos[0]!, '--text', meta.texts[1], '--json', '--raw');
    assert.equal(e.status, 0, e.stderr);
    const emb = JSON.parse(e.stdout);
    assertClose(Float32Array.from(emb.images[0].embedding), g.get('image_features').subarray(0, 32), TOL, 'embed image');
    assertClose(Float32Array.from(emb.texts[0].embedding), g.get('text_features').subarray(32, 64), TOL, 'embed text');

    // classify --json: per-label sigmoids (they need not sum to 1), and says so.
    const labels = meta.texts.slice(0, 3) as string[];
    const c = clip('classify', photos[0]!, '--model', DIR, ...labels.flatMap((l) => ['--label', l]), '--json');
    assert.equal(c.status, 0, c.stderr);
    const [res] = JSON.parse(c.stdout);
    assert.equal(res.scoring, 'sigmoid');
    labels.forEach((l, j) => assert.ok(Math.abs(res.scores[l] - g.get('probs')[j]!) < TOL, `${l}: ${res.scores[l]} vs ${g.get('probs')[j]}`));

    // index + search.
    const imgs = join(dir, 'images');
    mkdirSync(imgs);
    for (const p of meta.photos as string[]) cpSync(fixture('common', 'images', p), join(imgs, p));
    const db = join(dir, 'db');
    const i = clip('index', imgs, '--model', DIR, '--db', db, '--json');
    assert.equal(i.status, 0, i.stderr);
    assert.equal(JSON.parse(i.stdout).count, photos.length);
    const s = clip('search', '--model', DIR, '--db', db, '--image', join(imgs, meta.photos[2]), '--k', '2', '--json');
    assert.equal(s.status, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout)[0].path, join(imgs, meta.photos[2]));

    // train: one epoch with the family's sigmoid loss; the saved model is a SigLIP checkpoint again. The model
    // is given as google/siglip-* ship it: spiece.model and no tokenizer.json.
    const start = join(dir, 'start');
    mkdirSync(start);
    for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer_config.json', 'spiece.model']) cpSync(join(DIR, f), join(start, f));
    writeFileSync(join(dir, 'train.jsonl'), photos.map((p, k) => JSON.stringify({ image: p, caption: meta.texts[k] })).join('\n') + '\n');
    const out = join(dir, 'out');
    const t = clip('train', join(dir, 'train.jsonl'), '--model', start, '-o', out, '--epochs', '1', '--batch-size', '4', '--lr', '1e-3', '--json');
    assert.equal(t.status, 0, t.stderr);
    const done = t.stdout.trim().split('\n').map((l) => JSON.parse(l)).at(-1);
    assert.equal(done.type, 'done');
    // The first step's loss is the reference loss of the same batch (same photos, same 4 texts, same model).
    assert.ok(Math.abs(done.finalLoss - meta.train_step.loss_value) < 1e-4, `loss ${done.finalLoss} vs ${meta.train_step.loss_value}`);
    assert.deepEqual(readJson(join(out, 'config.json')), readJson(join(DIR, 'config.json')));
    const saved = new SafetensorsFile(join(out, 'model.safetensors'));
    const orig = new SafetensorsFile(join(DIR, 'model.safetensors'));
    assert.deepEqual(saved.keys().sort(), orig.keys().sort());
    const ck = openCheckpoint(out);
    assert.equal(ck.family, 'siglip');
    assert.ok(existsSync(join(out, 'spiece.model')), 'the tokenizer ships with the trained model');
    const k = 'vision_model.head.attention.in_proj_weight';
    assert.notDeepEqual(toFloat32(saved.get(k)), toFloat32(orig.get(k)));
    const afterRef = toFloat32(new SafetensorsFile(join(DIR, 'train-step.safetensors')).get(`after/${k}`));
    assertClose(toFloat32(saved.get(k)), afterRef, 1e-4, 'trained in_proj_weight');

    // The sigmoid loss needs a logit_bias: a CLIPModel is refused with the reason.
    const bad = clip('train', join(dir, 'train.jsonl'), '--model', fixture('hf-clip-tiny'), '-o', join(dir, 'bad'), '--loss', 'sigmoid', '--epochs', '1');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /logit_bias/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a checkpoint with only spiece.model (as google/siglip-* ship) tokenizes the same', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-siglip-spm-'));
  try {
    for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer_config.json', 'spiece.model']) cpSync(join(DIR, f), join(dir, f));
    const converted = siglip.tokenizer.sentencepiece!(parseSentencePieceModel(readFileSync(join(DIR, 'spiece.model'))), '</s>', 'spiece.model');
    const shipped = readJson(join(DIR, 'tokenizer.json'));
    assert.deepEqual(converted.model, shipped.model, 'pieces, scores and unk id read off the protobuf');
    const model = await ClipModel.load(dir);
    assert.equal(model.tokenizer.kind, 'unigram');
    const b = model.tokenizer.encodeBatch(meta.texts, { pad: 'max' });
    assert.deepEqual(Array.from(b.inputIds, Number), Array.from(g.get('input_ids')));
    await model.release();
    // The rules come from the family: clip-ts's loadTokenizer finds them through the detected checkpoint; the
    // file reader alone, given no rules, does not guess them and says why.
    assert.deepEqual(Array.from(loadTokenizer(dir).encodeBatch(meta.texts, { pad: 'max' }).inputIds, Number), Array.from(g.get('input_ids')));
    const bare = join(dir, 'bare');
    mkdirSync(bare);
    for (const f of ['tokenizer_config.json', 'spiece.model']) cpSync(join(DIR, f), join(bare, f));
    assert.throws(() => loadTokenizerFiles(bare), /tokenizer\.json not found: .*spiece\.model is read only as part of a checkpoint whose family says its tokenizer rules/);
    assert.throws(() => loadTokenizer(bare), /tokenizer\.json not found/, 'a bare spiece.model is no checkpoint: no family, no rules');
    // A damaged file is refused with its path, not half-read.
    const bytes = readFileSync(join(DIR, 'spiece.model'));
    writeFileSync(join(dir, 'spiece.model'), bytes.subarray(0, 1000));
    assert.throws(() => parseSentencePieceModel(readFileSync(join(dir, 'spiece.model')), join(dir, 'spiece.model')), /spiece\.model: not a sentencepiece model/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the server\'s /classify gives SigLIP\'s per-label sigmoids and says so', { skip: SKIP_FIXTURES }, async () => {
  const model = await ClipModel.load(DIR);
  const s = await buildServer({ model });
  try {
    const labels = (meta.texts as string[]).slice(0, 3);
    const res = await s.app.inject({ method: 'POST', url: '/classify', payload: { image: readFileSync(photos[1]!).toString('base64'), labels } });
    assert.equal(res.statusCode, 200, res.body);
    const got = res.json();
    assert.equal(got.scoring, 'sigmoid');
    const n = meta.texts.length;
    assertClose(labels.map((l) => got.scores[l]), g.get('probs').subarray(n, n + 3), TOL, 'server probs');
  } finally {
    await s.app.close();
    await model.release();
  }
});

test('SigLIP configs are checked where they are read', () => {
  const cfg = readJson(join(DIR, 'config.json'));
  assert.throws(() => openCheckpointWith({ ...cfg, model_type: 'siglip2' }), /siglip2.*NaFlex/);
  assert.throws(() => siglipConfig({ ...cfg, text_config: { ...cfg.text_config, projection_size: 16 } }, 'c.json'),
    /c\.json: text_config\.projection_size 16 differs from vision_config\.hidden_size 32/);
  assert.throws(() => siglipConfig({ ...cfg, vision_config: { ...cfg.vision_config, hidden_act: 'swish' } }, 'c.json'), /vision_config\.hidden_act "swish" is not a supported activation/);
  // A checkpoint without logit_bias was not saved by SiglipModel: refused by name.
  assert.throws(() => siglipWeightsChecked(cfg, (k) => k !== 'logit_bias'), /missing tensor "logit_bias"/);
});

function openCheckpointWith(cfg: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'clip-siglip-cfg-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    cpSync(join(DIR, 'model.safetensors'), join(dir, 'model.safetensors'));
    return openCheckpoint(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function siglipWeightsChecked(cfg: Record<string, unknown>, keep: (key: string) => boolean): void {
  const src = new SafetensorsFile(join(DIR, 'model.safetensors'));
  const filtered = { origin: src.origin, has: (k: string) => keep(k) && src.has(k), get: (k: string) => src.get(k), info: (k: string) => (keep(k) ? src.info(k) : undefined), keys: () => src.keys().filter(keep) };
  checkSiglipShapes(siglipWeights(filtered as unknown as typeof src), siglipConfig(cfg));
}

test('hub downloads of a google/siglip-* repo include its spiece.model', () => {
  const files = ['.gitattributes', 'README.md', 'config.json', 'model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json', 'spiece.model', 'tokenizer_config.json'];
  assert.deepEqual(pickFiles('google/siglip-base-patch16-224', files).sort(),
    ['config.json', 'model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json', 'spiece.model', 'tokenizer_config.json']);
});

test('a SigLIP run killed after a checkpoint resumes to the same weights', { skip: SKIP_FIXTURES }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-siglip-resume-'));
  try {
    writeFileSync(join(dir, 'train.jsonl'), photos.map((p, k) => JSON.stringify({ image: p, caption: meta.texts[k] })).join('\n') + '\n');
    const args = (out: string) => ['train', join(dir, 'train.jsonl'), '--model', DIR, '-o', out, '--epochs', '8', '--batch-size', '2',
      '--lr', '1e-3', '--seed', '3', '--save-every', '2', '--threads', '1', '--json'];
    const full = await runClip(args(join(dir, 'full')));
    assert.equal(full.code, 0, full.stderr);
    const cut = join(dir, 'cut');
    const killed = await runClip(args(cut), /saved \S*checkpoint-2\b/);
    assert.equal(killed.signal, 'SIGKILL', `not killed: ${killed.stderr}`);
    assert.ok(!existsSync(join(cut, 'model.safetensors')), 'the run finished before the kill');
    const resumed = await runClip(['train', '--resume', '-o', cut, '--threads', '1', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.ok(readFileSync(join(dir, 'full', 'model.safetensors')).equals(readFileSync(join(cut, 'model.safetensors'))), 'final weights differ');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
