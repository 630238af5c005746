// open_clip checkpoints whose text tower is a Hugging Face model (text_cfg.hf_model_name: LAION's
// xlm-roberta-base / -large multilingual releases). test/goldens/open-clip-xlmr-tiny is a tiny random one
// (XLM-R text tower: RoBERTa positions, mean_pooler, mlp projection; a SentencePiece Unigram vocabulary) with
// goldens from a plain-PyTorch port of open_clip's hf_model.py and transformers' XLM-RoBERTa
// (scripts/goldens/open_clip_xlmr_tiny.py, see the README there).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ClipModel } from '../src/runtime/clip-model.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { similarityLogits } from '../src/tasks/similarity.js';
import { CLIP_BIN, fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, assertImagesMatchGolden, flat, golden, maxAbsDiff, readJson } from './helpers.js';

const DIR = join(REPO_ROOT, 'test', 'goldens', 'open-clip-xlmr-tiny');
const tmp = mkdtempSync(join(tmpdir(), 'clip-xlmr-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const meta = readJson(join(DIR, 'golden.json'));
const photos = (): string[] => meta.photos.map((p: string) => fixture('common', 'images', p));
const TOL = 1e-4;
const CTX = 32;

/** The checkpoint alone (what the hub repo holds): no config.json / tokenizer.json of the HF text model. */
let n = 0;
function bare(edit?: (j: any) => void): string {
  const dir = join(tmp, `bare${n++}`);
  mkdirSync(dir);
  symlinkSync(join(DIR, 'open_clip_model.safetensors'), join(dir, 'open_clip_model.safetensors'));
  const cfg = readJson(join(DIR, 'open_clip_config.json'));
  edit?.(cfg);
  writeFileSync(join(dir, 'open_clip_config.json'), JSON.stringify(cfg));
  return dir;
}

/** The HF text model's files alone (what --tokenizer DIR points at). */
function textDir(): string {
  const dir = join(tmp, `text${n++}`);
  mkdirSync(dir);
  for (const f of ['config.json', 'tokenizer.json']) symlinkSync(join(DIR, f), join(dir, f));
  return dir;
}

async function checkParity(m: ClipModel): Promise<void> {
  const g = golden(join(DIR, 'golden.safetensors'));
  assert.equal(m.checkpoint.family, 'open-clip');
  assert.equal(m.dim, 24);
  const t = m.checkpoint.config!.text;
  assert.ok(t.kind === 'bert' && t.pooling === 'mean-projection' && t.projection === 'mlp' && t.positionOffset === 1, JSON.stringify(t));
  await assertImagesMatchGolden(m, photos(), g, TOL);
  // Token ids: SentencePiece + the fairseq offset, <s> ... </s> (English, French, German, Russian, Chinese, an emoji).
  const ids = g.get('input_ids');
  meta.captions.forEach((c: string, i: number) => {
    const want = Array.from(ids.subarray(i * CTX, (i + 1) * CTX));
    const got = m.tokenizer.encode(c);
    assert.deepEqual(got, want.slice(0, got.length), c);
    assert.ok(want.slice(got.length).every((x) => x === 1), `${c}: the golden has more tokens than ours`);
  });
  // open_clip's HFTokenizer cleans first: HTML entities unescaped (twice), whitespace runs collapsed, ends stripped.
  const messy = `  ${meta.captions[0]!.replace(/ /g, ' \t ')}\n`;
  assert.deepEqual(m.tokenizer.encode(messy), m.tokenizer.encode(meta.captions[0]), 'whitespace cleaned');
  assert.deepEqual(m.tokenizer.encode('salt &amp;amp; pepper'), m.tokenizer.encode('salt & pepper'), 'entities unescaped twice');
  assert.deepEqual(m.tokenizer.encodeBatch([messy]).inputIds, m.tokenizer.encodeBatch([meta.captions[0]]).inputIds, 'batches clean too');
  // Batches of mixed lengths: the mask keeps padding out of positions, attention and the mean.
  const txt = await m.encodeTexts(meta.captions, { normalize: false, batchSize: 4 });
  assertClose(flat(txt), g.get('text_features'), TOL, 'text_features');
  const one = await m.encodeTexts([meta.captions[6]], { normalize: false });
  assertClose(one[0]!, g.get('text_features').subarray(6 * 24, 7 * 24), TOL, 'text_features (alone)');
  const ie = (await m.encodeImages(photos())).map((r) => r.embedding!);
  const te = await m.encodeTexts(meta.captions);
  assertClose(flat(similarityLogits(ie, te, m.logitScale).map((r) => Float32Array.from(r))), g.get('logits_per_image'), TOL, 'logits_per_image');
}

test('open-clip-xlmr-tiny matches open_clip (HF XLM-R text tower) through image files and texts', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(DIR, { cache: false });
  await checkParity(m);
  await m.release();
});

test('the HF text files can come from --tokenizer DIR', { skip: SKIP_FIXTURES }, async () => {
  const m = await ClipModel.load(bare(), { cache: false, tokenizerDir: textDir() });
  await checkParity(m);
  await m.release();
});

test('without the HF text files: fetched from the hub repo hf_model_name into the cache; offline, an error naming them', { skip: SKIP_FIXTURES }, async () => {
  const repo = 'acme/xlmr-tiny';
  const sha = createHash('sha1').update(repo).digest('hex');
  const hits: string[] = [];
  const server = http.createServer((q, s) => {
    hits.push(q.url!);
    const m = /^\/acme\/xlmr-tiny\/resolve\/main\/(config\.json|tokenizer\.json)$/.exec(q.url!);
    if (!m) {
      s.writeHead(404, { 'x-error-code': 'EntryNotFound' });
      return void s.end('not found');
    }
    const body = readFileSync(join(DIR, m[1]!));
    const etag = createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
    s.writeHead(200, { 'x-repo-commit': sha, etag: `"${etag}"`, 'content-length': body.length });
    s.end(q.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const endpoint = `http://127.0.0.1:${(server.address() as any).port}`;
  try {
    const dir = bare((j) => { j.model_cfg.text_cfg.hf_model_name = repo; });
    const cacheDir = join(tmp, 'hub-cache');
    // Offline with an empty cache: the message names the model, both files and where to put them.
    await assert.rejects(ClipModel.load(dir, { cache: false, hub: { cacheDir, endpoint, offline: true } }), (e: Error) => {
      assert.match(e.message, /text tower is the Hugging Face model "acme\/xlmr-tiny"/);
      assert.match(e.message, /https:\/\/huggingface\.co\/acme\/xlmr-tiny\/resolve\/main\/config\.json and .*tokenizer\.json/);
      assert.ok(e.message.includes(`into ${dir}`), e.message);
      assert.match(e.message, /--tokenizer DIR/);
      assert.match(e.message, /offline mode \(HF_HUB_OFFLINE=1\)/);
      return true;
    });
    assert.equal(hits.length, 0, 'offline: no request');
    // openCheckpoint alone (no hub): the same advice.
    assert.throws(() => openCheckpoint(dir), /does not ship\. Fix: load it online once/);
    const m = await ClipModel.load(dir, { cache: false, hub: { cacheDir, endpoint, progress: false } });
    await checkParity(m);
    await m.release();
    const fetched = hits.length;
    assert.ok(fetched >= 2, `${fetched} requests`);
    // Then from the cache, offline.
    const m2 = await ClipModel.load(dir, { cache: false, hub: { cacheDir, endpoint, offline: true } });
    assert.equal(hits.length, fetched);
    await m2.release();
  } finally {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  }
});

test('hf text tower options clip-ts does not build are refused, naming the field', { skip: SKIP_FIXTURES }, () => {
  const tok = textDir();
  const refused = (edit: (j: any) => void, re: RegExp) => assert.throws(() => openCheckpoint(bare(edit), { tokenizerDir: tok }), re);
  refused((j) => { j.model_cfg.text_cfg.hf_pooler_type = 'cls_pooler'; }, /model_cfg\.text_cfg\.hf_pooler_type "cls_pooler" is not supported/);
  refused((j) => { j.model_cfg.text_cfg.hf_proj_type = 'none'; }, /model_cfg\.text_cfg\.hf_proj_type "none" is not supported/);
  refused((j) => { j.model_cfg.text_cfg.context_length = 40; }, /context_length 40 needs more positions than .*config\.json has \(max_position_embeddings allows 32\)/);
  // The weights say mlp: read as linear, text.proj is missing.
  refused((j) => { j.model_cfg.text_cfg.hf_proj_type = 'linear'; }, /text\.proj\.weight/);
  refused((j) => { j.model_cfg.text_cfg.hf_model_name = 'x'; j.model_cfg.vision_cfg.timm_model_name = 'vit_base'; }, /timm/);
  refused((j) => { j.model_cfg.text_cfg.hf_model_name = { repo: 'x' }; }, /model_cfg\.text_cfg\.hf_model_name must be a hub model id/);
  // The HF config is checked like any config: its model_type must be a tower we build, its values in range.
  const cfgDir = join(tmp, 'badcfg');
  mkdirSync(cfgDir);
  const hf = readJson(join(DIR, 'config.json'));
  writeFileSync(join(cfgDir, 'config.json'), JSON.stringify({ ...hf, model_type: 'gpt2' }));
  assert.throws(() => openCheckpoint(bare(), { tokenizerDir: cfgDir }), /badcfg\/config\.json: model_type "gpt2" is not a text model clip-ts builds/);
  writeFileSync(join(cfgDir, 'config.json'), JSON.stringify({ ...hf, hidden_size: 64 }));
  assert.throws(() => openCheckpoint(bare(), { tokenizerDir: cfgDir }), /word_embeddings\.weight" has shape \[115, 32\], expected \[115, 64\]/);
});

function clip(...args: string[]) {
  const r = spawnSync(process.execPath, [CLIP_BIN, ...args], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('clip classify and embed run on the XLM-R open_clip checkpoint (non-English labels)', { skip: SKIP_FIXTURES }, () => {
  const g = golden(join(DIR, 'golden.safetensors'));
  const img = photos()[1]!;
  const c = clip('classify', '--model', DIR, '--labels', 'chat,Katze,кошки', img, '--json');
  assert.equal(c.code, 0, c.stderr);
  const [res] = JSON.parse(c.stdout);
  assert.deepEqual(Object.keys(res.scores), ['chat', 'Katze', 'кошки']);
  assert.ok(Math.abs(Object.values<number>(res.scores).reduce((a, b) => a + b) - 1) < 1e-5);
  const e = clip('embed', '--model', DIR, '--image', img, '--text', meta.captions[7], '--raw', '--json');
  assert.equal(e.code, 0, e.stderr);
  const out = JSON.parse(e.stdout);
  assertClose(Float32Array.from(out.images[0].embedding), g.get('image_features').subarray(24, 48), TOL, 'embed --raw image');
  assertClose(Float32Array.from(out.texts[0].embedding), g.get('text_features').subarray(7 * 24, 8 * 24), TOL, 'embed --raw text');
});

test('clip train fine-tunes the XLM-R open_clip checkpoint and saves it in its own layout, HF text config included', { skip: SKIP_FIXTURES }, async () => {
  const csv = join(tmp, 'train.csv');
  const caps: Record<string, string> = { astronaut: 'un astronaute', chelsea: 'eine Katze', coffee: 'чашка кофе', rocket: '火箭发射' };
  writeFileSync(csv, ['image,caption', ...Object.entries(caps).map(([p, c]) => `${fixture('common', 'images', `${p}.png`)},${c}`)].join('\n') + '\n');
  const out = join(tmp, 'trained');
  const t = clip('train', csv, '--model', DIR, '-o', out, '--epochs', '1', '--batch-size', '2', '--threads', '2');
  assert.equal(t.code, 0, t.stderr);
  for (const f of ['open_clip_config.json', 'open_clip_model.safetensors', 'config.json', 'tokenizer.json']) assert.ok(existsSync(join(out, f)), f);
  assert.equal(readJson(join(out, 'open_clip_config.json')).model_cfg.text_cfg.hf_model_name, 'xlm-roberta-base');
  // The same tensor names (open_clip's), the text tower's weights moved.
  const before = golden(join(DIR, 'open_clip_model.safetensors'));
  const after = golden(join(out, 'open_clip_model.safetensors'));
  assert.deepEqual(after.keys().sort(), before.keys().sort());
  for (const k of ['text.proj.0.weight', 'text.transformer.encoder.layer.1.attention.self.query.weight']) {
    assert.ok(maxAbsDiff(after.get(k), before.get(k)) > 1e-7, `${k} did not change`);
  }
  const m = await ClipModel.load(out, { cache: false });
  assert.equal(m.checkpoint.config!.text.kind, 'bert');
  const [img] = await m.encodeImages([photos()[1]!]);
  assert.ok(img!.embedding, img!.error);
  await m.release();
});
