// open_clip hub checkpoints (open_clip_config.json + open_clip_model.safetensors), as the LAION releases ship
// them: test/goldens/open-clip-tiny is a tiny random one with quick_gelu = false (plain GELU), head_width 16,
// mlp_ratio 2, a 64 px input and preprocess_cfg mean/std 0.5; its goldens come from a plain-PyTorch port of
// open_clip's model.py / transformer.py (scripts/goldens/open_clip_tiny.py, see the README there).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ClipModel } from '../src/runtime/clip-model.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { parseModelId } from '../src/hub/resolve.js';
import { similarityLogits } from '../src/tasks/similarity.js';
import { CLIP_BIN, fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, assertImagesMatchGolden, flat, golden, maxAbsDiff, readJson } from './helpers.js';

const DIR = join(REPO_ROOT, 'test', 'goldens', 'open-clip-tiny');
const CLIP_TOKENIZER = fixture('common', 'tokenizer-clip');
const tmp = mkdtempSync(join(tmpdir(), 'clip-open-clip-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const meta = readJson(join(DIR, 'golden.json'));
const photos = (): string[] => meta.photos.map((p: string) => fixture('common', 'images', p));
const TOL = 1e-4;

/** The golden checkpoint with its open_clip_config.json edited (weights linked, not copied). */
let n = 0;
function variant(edit: (j: any) => void): string {
  const dir = join(tmp, `v${n++}`);
  mkdirSync(dir);
  symlinkSync(join(DIR, 'open_clip_model.safetensors'), join(dir, 'open_clip_model.safetensors'));
  const cfg = readJson(join(DIR, 'open_clip_config.json'));
  edit(cfg);
  writeFileSync(join(dir, 'open_clip_config.json'), JSON.stringify(cfg));
  return dir;
}

test('open-clip-tiny (plain GELU) matches open_clip through image files and texts', { skip: SKIP_FIXTURES }, async () => {
  const g = golden(join(DIR, 'golden.safetensors'));
  const m = await ClipModel.load(DIR, { tokenizerDir: CLIP_TOKENIZER });
  assert.equal(m.checkpoint.family, 'open-clip');
  assert.equal(m.dim, 24);
  const cfg = m.checkpoint.config!;
  assert.equal(cfg.vision.kind === 'vit' && cfg.vision.act, 'gelu');
  assert.equal(cfg.text.act, 'gelu');
  assert.deepEqual(m.checkpoint.preprocess, { kind: 'openai', size: 64, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  // Our preprocessing of the files at 64 px with preprocess_cfg's mean/std gives the golden's pixels.
  await assertImagesMatchGolden(m, photos(), g, TOL);
  // The tokens the golden used are OpenAI's SimpleTokenizer's: ours must give them.
  const ids = g.get('tokens');
  meta.captions.forEach((c: string, i: number) => {
    const want = Array.from(ids.subarray(i * 77, (i + 1) * 77)).filter((t) => t !== 0);
    assert.deepEqual(m.tokenizer.encode(c), want, c);
  });
  const txt = await m.encodeTexts(meta.captions, { normalize: false, batchSize: 4 });
  assertClose(flat(txt), g.get('text_features'), TOL, 'text_features');
  const ie = (await m.encodeImages(photos())).map((r) => r.embedding!);
  const te = await m.encodeTexts(meta.captions);
  assertClose(flat(similarityLogits(ie, te, m.logitScale).map((r) => Float32Array.from(r))), g.get('logits_per_image'), TOL, 'logits_per_image');
  await m.release();
});

test('the activation comes from quick_gelu: the same weights with QuickGELU give other features', { skip: SKIP_FIXTURES }, async () => {
  const g = golden(join(DIR, 'golden.safetensors'));
  const m = await ClipModel.load(variant((j) => { j.model_cfg.quick_gelu = true; }), { tokenizerDir: CLIP_TOKENIZER, cache: false });
  const txt = await m.encodeTexts(meta.captions, { normalize: false });
  const d = maxAbsDiff(flat(txt), g.get('text_features'));
  assert.ok(d > 1e-3, `QuickGELU changed the text features by only ${d}`);
  await m.release();
});

test('model_cfg and preprocess_cfg options clip-ts does not build are refused, naming the field', { skip: SKIP_FIXTURES }, () => {
  const refused = (edit: (j: any) => void, re: RegExp) => assert.throws(() => openCheckpoint(variant(edit)), re);
  // An HF text tower is built (test/open-clip-xlmr.test.ts) from the named model's files, which this checkpoint lacks.
  refused((j) => { j.model_cfg.text_cfg.hf_model_name = 'xlm-roberta-base'; },
    /its text tower is the Hugging Face model "xlm-roberta-base" \(.*open_clip_config\.json: model_cfg\.text_cfg\.hf_model_name\)/);
  refused((j) => { j.model_cfg.vision_cfg.hf_model_name = 'x'; }, /model_cfg\.vision_cfg\.hf_model_name "x" is not supported: it makes a Hugging Face image tower/);
  refused((j) => { j.model_cfg.custom_text = true; }, /model_cfg\.custom_text true is not supported: it makes a CustomTextCLIP/);
  refused((j) => { j.model_cfg.vision_cfg.timm_model_name = 'convnext_base'; }, /model_cfg\.vision_cfg\.timm_model_name "convnext_base" is not supported/);
  refused((j) => { j.model_cfg.vision_cfg.no_ln_pre = true; }, /model_cfg\.vision_cfg\.no_ln_pre true is not supported/);
  refused((j) => { j.model_cfg.vision_cfg.pos_embed_type = 'sin_cos_2d'; }, /model_cfg\.vision_cfg\.pos_embed_type "sin_cos_2d" is not supported/);
  refused((j) => { j.model_cfg.text_cfg.no_causal_mask = true; }, /model_cfg\.text_cfg\.no_causal_mask true is not supported/);
  refused((j) => { j.model_cfg.vision_cfg.norm_kwargs = { eps: 1e-6 }; }, /model_cfg\.vision_cfg\.norm_kwargs \{"eps":0\.000001\} is not supported/);
  refused((j) => { j.model_cfg.init_logit_bias = -10; }, /model_cfg\.init_logit_bias -10 is not supported: it makes a sigmoid-loss/);
  refused((j) => { j.model_cfg.text_cfg.pool_type = 'last'; }, /model_cfg\.text_cfg\.pool_type "last" is not supported/);
  refused((j) => { j.model_cfg.vision_cfg.attentional_pool = true; }, /model_cfg\.vision_cfg\.attentional_pool true is not supported/);
  refused((j) => { j.preprocess_cfg.interpolation = 'bilinear'; }, /open_clip_config\.json: preprocess_cfg\.interpolation "bilinear" is not supported \(supported: bicubic\)/);
  refused((j) => { j.preprocess_cfg.resize_mode = 'squash'; }, /preprocess_cfg\.resize_mode "squash" is not supported \(supported: shortest\)/);
  // The values open_clip writes for the defaults are accepted (and a plain-layout config without them too).
  assert.equal(openCheckpoint(variant((j) => { j.model_cfg.vision_cfg.pos_embed_type = 'learnable'; j.model_cfg.text_cfg.pool_type = 'argmax'; })).family, 'open-clip');
  assert.equal(openCheckpoint(variant((j) => { delete j.preprocess_cfg; })).preprocess.mean[0], 0.48145466);
});

test('open_clip names and hf-hub: ids resolve to the LAION repos', () => {
  assert.deepEqual(parseModelId('ViT-B-32/laion2b_s34b_b79k'), { repo: 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K', revision: 'main', alias: 'ViT-B-32/laion2b_s34b_b79k' });
  assert.equal(parseModelId('vit-h-14/LAION2B_S32B_B79K').repo, 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K');
  assert.equal(parseModelId('ViT-bigG-14/laion2b_s39b_b160k@v1').revision, 'v1');
  assert.equal(parseModelId('hf-hub:laion/CLIP-ViT-L-14-laion2B-s32B-b82K').repo, 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K');
});

function clip(...args: string[]) {
  const r = spawnSync(process.execPath, [CLIP_BIN, ...args], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('clip classify and embed run on the open_clip checkpoint', { skip: SKIP_FIXTURES }, () => {
  const g = golden(join(DIR, 'golden.safetensors'));
  const img = photos()[1]!;
  const c = clip('classify', '--model', DIR, '--tokenizer', CLIP_TOKENIZER, '--labels', 'cat,dog,coffee', img, '--json');
  assert.equal(c.code, 0, c.stderr);
  const [res] = JSON.parse(c.stdout);
  assert.deepEqual(Object.keys(res.scores), ['cat', 'dog', 'coffee']);
  assert.ok(Math.abs(Object.values<number>(res.scores).reduce((a, b) => a + b) - 1) < 1e-5);
  const e = clip('embed', '--model', DIR, '--tokenizer', CLIP_TOKENIZER, '--image', img, '--text', meta.captions[0], '--raw', '--json');
  assert.equal(e.code, 0, e.stderr);
  const out = JSON.parse(e.stdout);
  assertClose(Float32Array.from(out.images[0].embedding), g.get('image_features').subarray(24, 48), TOL, 'embed --raw image');
  assertClose(Float32Array.from(out.texts[0].embedding), g.get('text_features').subarray(0, 24), TOL, 'embed --raw text');
});

test('clip index / search and clip train work on the open_clip checkpoint', { skip: SKIP_FIXTURES }, () => {
  const imgs = join(tmp, 'imgs');
  mkdirSync(imgs);
  for (const p of ['astronaut.png', 'chelsea.png', 'coffee.png']) symlinkSync(fixture('common', 'images', p), join(imgs, p));
  const model = ['--model', DIR, '--tokenizer', CLIP_TOKENIZER];
  const db = join(tmp, 'index.clipvec');
  const ix = clip('index', imgs, ...model, '--db', db);
  assert.equal(ix.code, 0, ix.stderr);
  assert.match(ix.stdout + ix.stderr, /3 images indexed/);
  const s = clip('search', 'a photo of a cat', ...model, '--db', db, '--json');
  assert.equal(s.code, 0, s.stderr);
  assert.equal(JSON.parse(s.stdout).length, 3);
  // Fine-tuning keeps the plain GELU: the checkpoint is saved in its own (open_clip) layout, says so and loads.
  const csv = join(tmp, 'train.csv');
  writeFileSync(csv, ['image,caption', ...['astronaut', 'chelsea', 'coffee', 'rocket'].map((p) => `${fixture('common', 'images', `${p}.png`)},a photo of ${p}`)].join('\n') + '\n');
  const out = join(tmp, 'trained');
  const t = clip('train', csv, ...model, '-o', out, '--epochs', '1', '--batch-size', '2', '--threads', '2');
  assert.equal(t.code, 0, t.stderr);
  assert.ok(!existsSync(join(out, 'config.json')), 'no HF config: the fine-tune keeps the open_clip layout');
  const cfg = readJson(join(out, 'open_clip_config.json'));
  assert.equal(cfg.model_cfg.quick_gelu ?? false, false);
  assert.ok(existsSync(join(out, 'open_clip_model.safetensors')));
  const c = clip('classify', '--model', out, '--labels', 'cat,dog', fixture('common', 'images', 'chelsea.png'), '--json');
  assert.equal(c.code, 0, c.stderr);
});
