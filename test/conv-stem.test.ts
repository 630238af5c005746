// clip-ts's convolutional image stem (vision_config.conv_stem: 3x3 stride-2 conv + ReLU layers before the patch
// embedding) against a PyTorch port (test/goldens/conv-stem-tiny, made by scripts/goldens/conv_stem_tiny.py on
// the hf-clip-tiny fixture): image features, one contrastive AdamW step through the stem, a saved checkpoint
// that reloads to the same features, config.json written by the trainer, and the config/weights checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32, type RawTensor, type TensorSource } from '../src/io/tensor.js';
import { clipConfigFromHF } from '../src/models/config.js';
import { hfClipWeights } from '../src/models/families/hf-clip.js';
import { checkWeightShapes } from '../src/models/shapes.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { hfClipConfigJson } from '../src/train/hf-config.js';
import { randomClipWeights } from '../src/train/init.js';
import { saveHfCheckpoint } from '../src/train/save.js';
import { ClipTrainer, eotPositions, type TrainBatch } from '../src/train/trainer.js';
import { fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, assertGradClose, assertParamsAfterStep, readJson } from './helpers.js';

const DIR = fixture('hf-clip-tiny');
const GOLDEN = join(REPO_ROOT, 'test', 'goldens', 'conv-stem-tiny');
const STEM = [4, 8, 16];

/** hf-clip-tiny's tensors with the golden's stem and patch embedding in place of its own. */
function stemSource(extra: Record<string, RawTensor> = {}, drop: string[] = []): TensorSource {
  const base = new SafetensorsFile(join(DIR, 'model.safetensors'));
  const g = new SafetensorsFile(join(GOLDEN, 'golden.safetensors'));
  const map = new Map<string, RawTensor>(base.keys().map((k) => [k, base.get(k)]));
  for (const k of g.keys().filter((k) => k.startsWith('weights/'))) map.set(k.slice('weights/'.length), g.get(k));
  for (const [k, v] of Object.entries(extra)) map.set(k, v);
  for (const k of drop) map.delete(k);
  return { origin: 'conv-stem-tiny', keys: () => [...map.keys()], has: (k) => map.has(k), get: (k) => map.get(k)! };
}

const stemConfigJson = (stem: unknown = STEM) => {
  const cfg = readJson(join(DIR, 'config.json'));
  return { ...cfg, vision_config: { ...cfg.vision_config, conv_stem: stem } };
};

test('conv stem: image features and one AdamW step match the PyTorch port; the saved model reloads', { skip: SKIP_FIXTURES }, async (t) => {
  const cfg = clipConfigFromHF(stemConfigJson());
  assert.deepEqual(cfg.vision.kind === 'vit' && cfg.vision.convStem, STEM);
  const g = new SafetensorsFile(join(GOLDEN, 'golden.safetensors'));
  const spec = readJson(join(GOLDEN, 'golden.json')).train_step;
  const get = (k: string) => toFloat32(g.get(k));
  const pub = new SafetensorsFile(join(DIR, 'golden.safetensors'));
  const pixels = toFloat32(pub.get('pixel_values'));
  const n = pub.info('pixel_values')!.shape[0]!;
  const T = pub.info('input_ids')!.shape[1]!;
  const ids = new BigInt64Array(pub.get('input_ids').bytes.slice().buffer).slice(0, n * T);
  const batch: TrainBatch = { pixelValues: pixels, inputIds: ids, n, seqLen: T, eot: eotPositions(ids, n, T, cfg.text.kind === 'clip-text' ? cfg.text.eosTokenId : 0, false) };

  const o = spec.optimizer;
  const trainer = await ClipTrainer.create(cfg, hfClipWeights(stemSource()), { adamw: { betas: o.betas, eps: o.eps, weightDecay: o.weight_decay }, outputGrads: true });
  const res = await trainer.step(batch, o.lr);
  assert.ok(Math.abs(res.loss - get('loss')[0]!) <= 1e-5, `loss ${res.loss} vs ${get('loss')[0]}`);
  let worst = 0;
  for (const name of spec.kept as string[]) {
    const grad = res.grads!.get(name);
    assert.ok(grad, `no gradient for ${name}`);
    worst = Math.max(worst, assertGradClose(grad, get(`grad/${name}`), `grad/${name}`));
    assertParamsAfterStep(trainer.params.get(name)!.data, get(`after/${name}`), grad, get(`grad/${name}`), o.lr, o.eps, `after/${name}`);
  }
  // The stem trains: every stem tensor moved.
  for (let i = 0; i < STEM.length; i++) {
    const before = get(`weights/vision_model.embeddings.conv_stem.${i}.weight`);
    const now = trainer.params.get(`vision_model.embeddings.conv_stem.${i}.weight`)!.data;
    assert.ok(now.some((x, j) => x !== before[j]), `stem ${i} did not change`);
  }
  const after = await trainer.evaluate(batch);
  assert.ok(Math.abs(after - get('loss_after_step')[0]!) <= 1e-4, `loss after ${after} vs ${get('loss_after_step')[0]}`);

  // A model directory from the original tensors: its features are the golden's; the trained one saves
  // conv_stem in config.json and the stem's tensors under their names, and reloads to its own features.
  const dir = mkdtempSync(join(tmpdir(), 'clip-stem-'));
  try {
    const files = ['tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json'].map((f) => join(DIR, f));
    const src = stemSource();
    saveHfCheckpoint(join(dir, 'orig'), src.keys().map((k) => ({ name: k, data: toFloat32(src.get(k)), shape: src.get(k).shape })), stemConfigJson(), files);
    const m = await ClipModel.load(join(dir, 'orig'));
    const feats = await m.encodePixels(pixels, n, false);
    const d = assertClose(feats.flatMap((f) => [...f]), get('image_features'), 5e-6, 'image_features');
    await m.release();

    const saved = hfClipConfigJson(cfg, stemConfigJson());
    assert.deepEqual(saved.vision_config.conv_stem, STEM);
    saveHfCheckpoint(join(dir, 'trained'), trainer.checkpointTensors(), saved, files);
    const file = new SafetensorsFile(join(dir, 'trained', 'model.safetensors'));
    assert.deepEqual(file.info('vision_model.embeddings.conv_stem.2.weight')!.shape, [16, 8, 3, 3]);
    assert.deepEqual(file.info('vision_model.embeddings.patch_embedding.weight')!.shape, [64, 16, 4, 4]);
    const reloaded = await ClipModel.load(join(dir, 'trained'));
    const again = await reloaded.encodePixels(pixels, n, false);
    assert.ok(again.flatMap((f) => [...f]).some((x, i) => Math.abs(x - get('image_features')[i]!) > 1e-4), 'the trained model computes other features');
    // The reloaded model's contrastive loss on the batch is the trainer's after its step.
    const img = await reloaded.encodePixels(pixels, n);
    const mask = new BigInt64Array(pub.get('attention_mask').bytes.slice().buffer).slice(0, n * T);
    const txt = await reloaded.encodeBatch({ inputIds: ids, attentionMask: mask, tokenTypeIds: new BigInt64Array(n * T), batch: n, length: T, dims: [n, T], lengths: [], eotIndex: batch.eot });
    const logits = img.map((a) => txt.map((b) => reloaded.logitScale * a.reduce((s, x, k) => s + x * b[k]!, 0)));
    const ce = (rows: number[][]) => rows.reduce((s, r, i) => s + Math.log(r.reduce((z, x) => z + Math.exp(x), 0)) - r[i]!, 0) / rows.length;
    const reloadedLoss = (ce(logits) + ce(logits[0]!.map((_, j) => logits.map((r) => r[j]!)))) / 2;
    assert.ok(Math.abs(reloadedLoss - after) < 1e-4, `reloaded loss ${reloadedLoss} vs trainer ${after}`);
    await reloaded.release();
    t.diagnostic(`image features max diff ${d.toExponential(2)}, worst gradient diff ${worst.toExponential(2)}, loss ${res.loss.toFixed(6)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('conv stem: the config and the weights are checked against each other', { skip: SKIP_FIXTURES }, () => {
  assert.throws(() => clipConfigFromHF(stemConfigJson([4, 8, 16, 32, 64, 128])), /conv_stem has 6 stride-2 layers, so patch_size 32 must be a multiple of 64/);
  assert.throws(() => clipConfigFromHF(stemConfigJson(16)), /vision_config\.conv_stem must be a list of 1 to 6 integers, got 16/);
  assert.throws(() => clipConfigFromHF(stemConfigJson([4, 0])), /vision_config\.conv_stem\[1\] must be an integer >= 1, got 0/);
  assert.throws(() => clipConfigFromHF(stemConfigJson([])), /must be a list of 1 to 6 integers/);
  const cfg = clipConfigFromHF(stemConfigJson());
  checkWeightShapes(hfClipWeights(stemSource()), cfg);
  // A missing stem layer, a stem the config does not have, and the plain patch embedding under a stem config.
  assert.throws(() => checkWeightShapes(hfClipWeights(stemSource({}, ['vision_model.embeddings.conv_stem.1.bias'])), cfg), /conv_stem\.1\.bias/);
  assert.throws(() => checkWeightShapes(hfClipWeights(stemSource()), clipConfigFromHF(readJson(join(DIR, 'config.json')))), /conv_stem\.0\.weight.*no conv_stem|no conv_stem/);
  const plain = new SafetensorsFile(join(DIR, 'model.safetensors')).get('vision_model.embeddings.patch_embedding.weight');
  assert.throws(() => checkWeightShapes(hfClipWeights(stemSource({ 'vision_model.embeddings.patch_embedding.weight': plain })), cfg), /patch_embedding\.weight.*\[64, 3, 32, 32\].*\[64, 16, 4, 4\]|\[64, 16, 4, 4\].*\[64, 3, 32, 32\]/);
});

test('conv stem: a scratch model gets He-initialized stem weights of the right shapes', () => {
  const json = {
    projection_dim: 8, text_config: { hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_hidden_layers: 1, vocab_size: 50, max_position_embeddings: 8 },
    vision_config: { hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_hidden_layers: 1, image_size: 16, patch_size: 8, conv_stem: [6, 12] },
  };
  const cfg = clipConfigFromHF(json);
  const full = hfClipConfigJson(cfg, json);
  const src = randomClipWeights(full, 0);
  checkWeightShapes(hfClipWeights(src), cfg);
  assert.deepEqual(src.get('vision_model.embeddings.patch_embedding.weight').shape, [8, 12, 2, 2]);
  const w = toFloat32(src.get('vision_model.embeddings.conv_stem.1.weight'));
  const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / (6 * 9))) < 0.03, `stem std ${std}`);
  assert.ok(toFloat32(src.get('vision_model.embeddings.conv_stem.1.bias')).every((x) => x === 0));
});
