// SigLIP 2 fixed-resolution checkpoints on siglip2-tiny (test/goldens/siglip2-tiny, made by
// scripts/goldens/siglip2_tiny.py): SiglipModel's layout with Gemma's sentencepiece BPE tokenizer.json (byte
// fallback), lower-cased texts, <eos> appended, <pad> to 64. Token ids, features and scores vs the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipModel } from '../src/runtime/clip-model.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { siglip2TokenizerJson } from '../src/models/families/siglip.js';
import { loadTokenizer } from '../src/models/tokenizer.js';
import { loadTokenizer as loadTokenizerFiles, tokenizerFromJson, type TokenizerJson } from '../src/text/index.js';
import { buildClassifier, predict } from '../src/tasks/zeroshot.js';
import { batchRow } from '../src/text/types.js';
import { pickFiles } from '../src/hub/files.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, assertImagesMatchGolden, flat, golden, readJson } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled tests run from dist/test; the goldens stay in the source tree.
const DIR = join(here, '..', '..', 'test', 'goldens', 'siglip2-tiny');
const TOL = 1e-4;
const meta = readJson(join(DIR, 'golden.json'));
const g = golden(join(DIR, 'golden.safetensors'));
const photos = (meta.photos as string[]).map((p) => fixture('common', 'images', p));
const texts = meta.texts as string[];
const refRow = (i: number) => Array.from(g.get('input_ids').subarray(i * 64, (i + 1) * 64));

test('siglip2-tiny (model_type "siglip", Gemma tokenizer.json) opens as SigLIP with a sentencepiece BPE tokenizer', async () => {
  const ck = openCheckpoint(DIR);
  assert.equal(ck.family, 'siglip');
  assert.equal(ck.score.kind, 'sigmoid');
  assert.equal(ck.contextLength, 64);
  const tok = loadTokenizer(DIR);
  assert.equal(tok.kind, 'sentencepiece-bpe');
  assert.equal(tok.padId, 0, '<pad>');
  assert.equal(tok.endId, 1, '<eos>');
  assert.equal(tok.startId, undefined, 'no <bos>');
});

test('token ids equal sentencepiece\'s with SigLIP 2\'s rules (lower-case, <eos>, <pad> to 64): English, punctuation, tabs, Cyrillic, CJK, byte fallback, empty, truncation', async () => {
  const model = await ClipModel.load(DIR);
  const b = model.tokenizer.encodeBatch(texts, { pad: 'max' });
  assert.equal(b.length, 64);
  for (let i = 0; i < texts.length; i++) assert.deepEqual(batchRow(b, i), refRow(i), `text ${JSON.stringify(texts[i])}`);
  // The emoji and accented letters are not in the tiny vocabulary: they are spelled as <0xNN> byte pieces.
  const bytes = meta.pieces[8].filter((p: string) => /^<0x[0-9A-F]{2}>$/.test(p)).length;
  assert.ok(bytes >= 8, `byte fallback exercised (${bytes} byte pieces)`);
  // Decoding fuses the byte pieces back into characters and "▁" into spaces (CLIP's byte-level decoder would not).
  assert.equal(model.tokenizer.decode(batchRow(b, 8)), texts[8]!.toLowerCase());
  // The long caption is cut to 63 pieces + <eos>.
  assert.equal(refRow(texts.length - 1).at(-1), 1);
  await model.release();
});

test('an older tokenizers file (no pre-tokenizer, merges as "a b" strings) tokenizes the same', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-siglip2-old-'));
  try {
    for (const f of ['config.json', 'tokenizer_config.json']) cpSync(join(DIR, f), join(dir, f));
    const tj = readJson(join(DIR, 'tokenizer.json'));
    tj.pre_tokenizer = null;
    tj.model.merges = (tj.model.merges as [string, string][]).map(([a, b]) => `${a} ${b}`);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
    const b = loadTokenizer(dir).encodeBatch(texts, { pad: 'max' });
    for (let i = 0; i < texts.length; i++) assert.deepEqual(batchRow(b, i), refRow(i), `text ${JSON.stringify(texts[i])}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the shipped tokenizer.json alone does not lower-case: the family\'s rule does', () => {
  const bare = loadTokenizerFiles(DIR);
  const i = texts.indexOf('A Cup of COFFEE');
  assert.notDeepEqual(batchRow(bare.encodeBatch([texts[i]!], { pad: 'max' }), 0), refRow(i), 'upper-case letters tokenize differently');
  assert.deepEqual(batchRow(bare.encodeBatch([texts[i]!.toLowerCase()], { pad: 'max' }), 0), refRow(i));
});

test('SigLIP 2\'s rule: Gemma\'s default template (<bos> first, no <eos>) becomes the one SigLIP 2 was saved with; a Gemma file without <eos> is refused', () => {
  const shipped = readJson(join(DIR, 'tokenizer.json')) as TokenizerJson;
  const gemmaDefault = {
    ...shipped, post_processor: {
      type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      special_tokens: { '<bos>': { id: '<bos>', ids: [2], tokens: ['<bos>'] } },
    },
  } as unknown as TokenizerJson;
  const tok = tokenizerFromJson(siglip2TokenizerJson(gemmaDefault), { pad_token: '<pad>' }, { contextLength: 64 });
  assert.deepEqual(batchRow(tok.encodeBatch(texts, { pad: 'max' }), 1), refRow(1));
  const vocab = { ...(shipped.model.vocab as Record<string, number>) };
  delete vocab['<eos>'];
  const noEos = { ...gemmaDefault, added_tokens: shipped.added_tokens!.filter((t) => t.content !== '<eos>'), model: { ...shipped.model, vocab } } as TokenizerJson;
  assert.throws(() => siglip2TokenizerJson(noEos, 'x/tokenizer.json'), /x\/tokenizer\.json: a SigLIP 2 \(Gemma\) tokenizer needs an <eos> token/);
  // SigLIP's own Unigram tokenizer.json passes through untouched.
  const unigram = readJson(join(here, '..', '..', 'test', 'goldens', 'siglip-tiny', 'tokenizer.json')) as TokenizerJson;
  assert.equal(siglip2TokenizerJson(unigram), unigram);
});

for (const fused of [true, false]) {
  test(`siglip2-tiny reproduces the reference from image files and texts (${fused ? 'fused' : 'plain'} attention)`, { skip: SKIP_FIXTURES }, async () => {
    const model = await ClipModel.load(DIR, { fused });
    await assertImagesMatchGolden(model, photos, g, TOL);
    assertClose(flat(await model.encodeTexts(texts, { normalize: false, batchSize: 4 })), g.get('text_features'), TOL, 'text_features');
    const img = (await model.encodeImages(photos)).map((r) => r.embedding!);
    const clf = await buildClassifier(model, texts);
    assert.equal(clf.score?.kind, 'sigmoid');
    assertClose(flat(img.map((e) => Float32Array.from(predict(clf, e).probs))), g.get('probs'), TOL, 'probs');
    await model.release();
  });
}

test('clip classify on siglip2-tiny: per-label sigmoids of the reference', { skip: SKIP_FIXTURES }, () => {
  const labels = texts.slice(0, 3);
  const c = spawnSync(process.execPath, [CLIP_BIN, 'classify', photos[0]!, '--model', DIR, ...labels.flatMap((l) => ['--label', l]), '--json'],
    { encoding: 'utf8', timeout: 240_000 });
  assert.equal(c.status, 0, c.stderr);
  const [res] = JSON.parse(c.stdout);
  assert.equal(res.scoring, 'sigmoid');
  labels.forEach((l, j) => assert.ok(Math.abs(res.scores[l] - g.get('probs')[j]!) < TOL, `${l}: ${res.scores[l]} vs ${g.get('probs')[j]}`));
});

test('clip train on siglip2-tiny: the first step\'s loss is the reference sigmoid loss; the saved model tokenizes the same', { skip: SKIP_FIXTURES }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-siglip2-train-'));
  try {
    writeFileSync(join(dir, 'train.jsonl'), photos.map((p, k) => JSON.stringify({ image: p, caption: texts[k] })).join('\n') + '\n');
    const out = join(dir, 'out');
    const t = spawnSync(process.execPath, [CLIP_BIN, 'train', join(dir, 'train.jsonl'), '--model', DIR, '-o', out, '--epochs', '1', '--batch-size', String(photos.length), '--json'],
      { encoding: 'utf8', timeout: 240_000 });
    assert.equal(t.status, 0, t.stderr);
    const done = t.stdout.trim().split('\n').map((l) => JSON.parse(l)).at(-1);
    assert.equal(done.type, 'done');
    assert.ok(Math.abs(done.finalLoss - meta.sigmoid_loss_first_texts) < 1e-4, `loss ${done.finalLoss} vs ${meta.sigmoid_loss_first_texts}`);
    assert.equal(openCheckpoint(out).family, 'siglip');
    assert.deepEqual(readJson(join(out, 'tokenizer.json')), readJson(join(DIR, 'tokenizer.json')), 'the tokenizer is saved as shipped');
    assert.deepEqual(Array.from(loadTokenizer(out).encodeBatch(texts, { pad: 'max' }).inputIds, Number), Array.from(g.get('input_ids'), Number));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SigLIP 2 NaFlex (model_type "siglip2", Siglip2Model) is still refused by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-siglip2-naflex-'));
  try {
    for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) cpSync(join(DIR, f), join(dir, f));
    const cfg = readJson(join(DIR, 'config.json'));
    const { image_size: _size, ...vision } = cfg.vision_config;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      ...cfg, model_type: 'siglip2', architectures: ['Siglip2Model'],
      vision_config: { ...vision, model_type: 'siglip2_vision_model', num_patches: 256 },
      text_config: { ...cfg.text_config, model_type: 'siglip2_text_model' },
    }));
    assert.throws(() => openCheckpoint(dir), /model_type "siglip2" is SigLIP 2's NaFlex variant/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hub downloads of a google/siglip2-* repo take its tokenizer.json, not the 4 MB sentencepiece file', () => {
  const files = ['.gitattributes', 'README.md', 'config.json', 'model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json',
    'tokenizer.json', 'tokenizer.model', 'tokenizer_config.json'];
  const picked = pickFiles('google/siglip2-base-patch16-224', files);
  assert.ok(picked.includes('tokenizer.json') && picked.includes('tokenizer_config.json') && picked.includes('model.safetensors'), picked.join(', '));
  assert.ok(!picked.includes('tokenizer.model'), picked.join(', '));
  assert.ok(readFileSync(join(DIR, 'tokenizer.json')).length < 2 ** 20);
});
