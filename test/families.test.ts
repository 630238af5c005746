// Every checkpoint family, loaded as it is and run through our tokenizer + preprocessing + graphs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ClipModel, type LoadOptions } from '../src/runtime/clip-model.js';
import { similarityLogits, softmax } from '../src/tasks/similarity.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, flat, golden, readJson } from './helpers.js';

const photos = (meta: any): string[] => meta.photos.map((p: string) => fixture('common', 'images', p));
const CLIP_TOKENIZER = fixture('common', 'tokenizer-clip');

/** Features relative to their largest magnitude (the random ResNet's features are ~1e10). */
function scaled(a: Float32Array): Float32Array {
  let m = 0;
  for (const x of a) m = Math.max(m, Math.abs(x));
  return a.map((x) => x / m);
}

async function checkAgainstGolden(model: ClipModel, dir: string, opts: { scaleImage?: boolean } = {}): Promise<void> {
  const meta = readJson(join(dir, 'golden.json'));
  const g = golden(join(dir, 'golden.safetensors'));
  const img = await model.encodeImages(photos(meta), { normalize: false });
  for (const r of img) assert.ok(r.embedding, r.error);
  const imgF = flat(img.map((r) => r.embedding!));
  if (opts.scaleImage) assertClose(scaled(imgF), scaled(g.get('image_features')), 1e-4, 'image_features (relative)');
  else assertClose(imgF, g.get('image_features'), 1e-4, 'image_features');
  const txt = await model.encodeTexts(meta.captions, { normalize: false, batchSize: 4 });
  assertClose(flat(txt), g.get('text_features'), 1e-4, 'text_features');
  const ie = (await model.encodeImages(photos(meta))).map((r) => r.embedding!);
  const te = await model.encodeTexts(meta.captions);
  const logits = flat(similarityLogits(ie, te, model.logitScale).map((r) => Float32Array.from(r)));
  assertClose(logits, g.get('logits_per_image'), 1e-4, 'logits_per_image');
}

test('openai-vit-tiny (open_clip layout, OpenAI tokenizer and preprocessing)', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(fixture('openai-vit-tiny'), { tokenizerDir: CLIP_TOKENIZER });
  assert.equal(m.checkpoint.family, 'open-clip');
  await checkAgainstGolden(m, fixture('openai-vit-tiny'));
  await m.release();
});

test('openai-rn-tiny (ModifiedResNet with attention pooling)', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(fixture('openai-rn-tiny'), { tokenizerDir: CLIP_TOKENIZER });
  await checkAgainstGolden(m, fixture('openai-rn-tiny'), { scaleImage: true });
  await m.release();
});

test('zh-clip-tiny (Chinese-CLIP: BERT text tower, 52-token WordPiece)', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(fixture('zh-clip-tiny'));
  assert.equal(m.checkpoint.family, 'chinese-clip');
  assert.equal(m.tokenizer.contextLength, 52);
  await checkAgainstGolden(m, fixture('zh-clip-tiny'));
  await m.release();
});

function pairFile(dir: string, masked: boolean): string {
  const p = join(dir, `pair-${masked}.json`);
  writeFileSync(p, JSON.stringify({ text: fixture('taiyi-text-tiny'), image: fixture('hf-clip-tiny'), attention_mask: masked }));
  return p;
}

test('Taiyi: BERT classifier logits as text features, paired with a CLIP image tower', { skip: SKIP_FIXTURES }, async () => {
  const d = mkdtempSync(join(tmpdir(), 'clip-taiyi-'));
  try {
    const meta = readJson(fixture('taiyi-text-tiny', 'golden.json'));
    const g = golden(fixture('taiyi-text-tiny', 'golden.safetensors'));
    for (const masked of [false, true]) {
      const m = await ClipModel.load(pairFile(d, masked));
      assert.equal(m.checkpoint.family, 'taiyi');
      // The seed pads the labels to the longest one in a single batch.
      const tf = await m.encodeTexts(meta.labels, { normalize: false, batchSize: 64 });
      assertClose(flat(tf), g.get(masked ? 'text_features_masked' : 'text_features_no_mask'), 1e-4, `text features (masked=${masked})`);
      if (!masked) {
        // Image features from the image files through our decode/resize/crop and hf-clip-tiny's image tower.
        const img = await m.encodeImages(photos(meta), { normalize: false });
        for (const r of img) assert.ok(r.embedding, r.error);
        assertClose(flat(img.map((r) => r.embedding!)), g.get('image_features'), 1e-4, 'image_features');
        const ie = (await m.encodeImages(photos(meta))).map((r) => r.embedding!);
        const te = await m.encodeTexts(meta.labels, { batchSize: 64 });
        const logits = similarityLogits(ie, te, m.logitScale);
        assertClose(flat(logits.map((r) => Float32Array.from(r))), g.get('logits_per_image'), 1e-4, 'logits_per_image');
        if (g.keys().includes('probs')) assertClose(flat(logits.map((r) => Float32Array.from(softmax(r)))), g.get('probs'), 1e-4, 'probs');
      }
      await m.release();
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('hf-clip-tiny/onnx (transformers.js layout) gives the same goldens', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(fixture('hf-clip-tiny'), { format: 'onnx' });
  assert.equal(m.checkpoint.family, 'onnx');
  const dir = fixture('hf-clip-tiny');
  const meta = readJson(join(dir, 'golden.json'));
  const g = golden(join(dir, 'golden.safetensors'));
  const img = await m.encodeImages(photos(meta), { normalize: false });
  for (const r of img) assert.ok(r.embedding, r.error);
  assertClose(flat(img.map((r) => r.embedding!)), g.get('image_features'), 1e-4, 'image_features');
  const txt = await m.encodeTexts(meta.captions, { normalize: false, batchSize: 4 });
  assertClose(flat(txt), g.get('text_features'), 1e-4, 'text_features');
  const ie = (await m.encodeImages(photos(meta))).map((r) => r.embedding!);
  const te = await m.encodeTexts(meta.captions);
  assertClose(flat(similarityLogits(ie, te, m.logitScale).map((r) => Float32Array.from(r))), g.get('logits_per_image'), 1e-4, 'logits_per_image');
  await m.release();
});

async function textFeatures(path: string, opts: LoadOptions, texts: string[]): Promise<Float32Array> {
  const m = await ClipModel.load(path, opts);
  const t = flat(await m.encodeTexts(texts, { normalize: false }));
  const i = flat((await m.encodeImages([fixture('common', 'images', 'chelsea.png')], { normalize: false })).map((r) => r.embedding!));
  await m.release();
  return Float32Array.from([...t, ...i]);
}

test('PyTorch pickles load and match their safetensors twins', { skip: SKIP_FIXTURES }, async () => {
  const texts = ['a photo of a cat', 'a diagram'];
  // HF .bin inside an HF directory (config, tokenizer and preprocessor beside it).
  const d = mkdtempSync(join(tmpdir(), 'clip-bin-'));
  try {
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) symlinkSync(fixture('hf-clip-tiny', f), join(d, f));
    symlinkSync(fixture('pickles', 'hf-clip-tiny-pytorch_model.bin'), join(d, 'pytorch_model.bin'));
    const ref = await textFeatures(fixture('hf-clip-tiny'), {}, texts);
    assertClose(await textFeatures(d, {}, texts), ref, 0, 'hf .bin');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
  const openaiRef = await textFeatures(fixture('openai-vit-tiny'), { tokenizerDir: CLIP_TOKENIZER }, texts);
  // Bare OpenAI files. The tiny text tower has 2 heads at width 16, which OpenAI's width/64 rule can't
  // infer, so its config is given; the image tower's shapes alone are enough (checked below).
  const bare = { tokenizerDir: CLIP_TOKENIZER, configPath: fixture('openai-vit-tiny', 'open_clip_config.json') };
  assertClose(await textFeatures(fixture('pickles', 'openai-vit-tiny-torchscript.pt'), bare, texts), openaiRef, 1e-6, 'torchscript');
  const fp16 = await textFeatures(fixture('pickles', 'openai-vit-tiny-fp16.bin'), bare, texts);
  const scale = Math.max(...openaiRef.map(Math.abs));
  assertClose(fp16.map((x) => x / scale), openaiRef.map((x) => x / scale), 5e-3, 'fp16 (relative to the largest feature)');
  // No config at all: the image tower (width 64 -> 1 head) is fully determined by the shapes.
  const m = await ClipModel.load(fixture('pickles', 'openai-vit-tiny-torchscript.pt'), { tokenizerDir: CLIP_TOKENIZER });
  const img = flat((await m.encodeImages([fixture('common', 'images', 'chelsea.png')], { normalize: false })).map((r) => r.embedding!));
  assertClose(img, openaiRef.slice(texts.length * 16), 1e-6, 'torchscript image tower from shapes alone');
  await m.release();
});

test('a malicious pickle is refused and runs nothing', { skip: SKIP_FIXTURES }, async () => {
  rmSync('/tmp/pwned', { force: true });
  await assert.rejects(ClipModel.load(fixture('pickles', 'malicious-pytorch_model.bin')), /refusing to load .*system/);
  assert.equal(existsSync('/tmp/pwned'), false);
});

function clip(...args: string[]) {
  const r = spawnSync(process.execPath, [CLIP_BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('clip classify / embed accept every family with --model', { skip: SKIP_FIXTURES }, () => {
  const d = mkdtempSync(join(tmpdir(), 'clip-cli-'));
  try {
    const img = fixture('common', 'images', 'chelsea.png');
    const cases: Array<[string, string[], string]> = [
      [fixture('openai-vit-tiny'), ['--tokenizer', CLIP_TOKENIZER], 'cat,dog'],
      [fixture('openai-rn-tiny'), ['--tokenizer', CLIP_TOKENIZER], 'cat,dog'],
      [fixture('zh-clip-tiny'), [], '猫,狗,猪,虎'],
      [pairFile(d, false), [], '猫,狗,猪,虎'],
      [fixture('pickles', 'openai-vit-tiny-torchscript.pt'), ['--tokenizer', CLIP_TOKENIZER, '--config', fixture('openai-vit-tiny', 'open_clip_config.json')], 'cat,dog'],
      [fixture('pickles', 'openai-vit-tiny-fp16.bin'), ['--tokenizer', CLIP_TOKENIZER], 'cat,dog'],
      [fixture('hf-clip-tiny', 'onnx'), [], 'cat,dog'],
    ];
    for (const [model, extra, labels] of cases) {
      const r = clip('classify', '--model', model, ...extra, '--labels', labels, img, '--json');
      assert.equal(r.code, 0, `${model}: ${r.stderr}`);
      const out = JSON.parse(r.stdout);
      assert.deepEqual(Object.keys(out[0].scores), labels.split(','));
      const total = Object.values(out[0].scores as Record<string, number>).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-5, `${model}: scores sum to ${total}`);
      const e = clip('embed', '--model', model, ...extra, '--text', labels.split(',')[0]!, '--json');
      assert.equal(e.code, 0, `${model}: ${e.stderr}`);
    }
    const bad = clip('embed', '--model', fixture('pickles', 'malicious-pytorch_model.bin'), '--text', 'x', '--json');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /refusing/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
