// Hostile inputs that are cheap to make and used to cost gigabytes, minutes, or a raw error: huge or
// degenerate images, truncated JPEGs decoded together, tokenizer ids of 1e9, preprocessing sizes of 1e6,
// malformed dataset rows. Each must end fast, within bounded memory, with an error naming the input.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { fixture, HAVE_FIXTURES, REPO_ROOT } from './fixtures.js';
import { decodeImage } from '../src/image/decode.js';
import { openaiPipeline, pipelineFromPreprocessorConfig } from '../src/image/pipelines.js';
import { pipelineFor } from '../src/runtime/preprocess.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { loadTokenizer } from '../src/text/index.js';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { OpenAIClipTokenizer } from '../src/text/openai-bpe.js';
import { readLabeledCsv, readRetrievalCsv, readRetrievalJsonl, readRetrievalTsv } from '../src/tasks/datasets.js';
import { scanTsv } from '../src/tasks/inputs.js';
import { checkPromptSet, loadTemplates } from '../src/tasks/templates.js';
import { readCaptionFolder, readPairs } from '../src/train/data.js';

const tmp = mkdtempSync(join(tmpdir(), 'clip-hostile-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, data: string | Uint8Array) => { const p = join(tmp, name); writeFileSync(p, data); return p; };
const EMOJI = join(REPO_ROOT, 'models', 'emoji-clip');

/** Run `fn`, returning its wall time and its error, if any. */
async function bounded<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: Error; ms: number }> {
  const t0 = performance.now();
  try {
    return { value: await fn(), ms: performance.now() - t0 };
  } catch (e) {
    return { error: e as Error, ms: performance.now() - t0 };
  }
}

/**
 * Run `call` (an expression awaiting one of the library's functions, given as `lib`) in a fresh process and
 * report its time, its error and how far that process's peak RSS rose during the call: the test process
 * itself has made big images and may already have a high peak.
 */
function inChild(modulePath: string, call: string): { ms: number; error?: string; peakGrowthMB: number } {
  const url = pathToFileURL(join(REPO_ROOT, 'dist', modulePath)).href;
  const script = `
    const lib = await import(${JSON.stringify(url)});
    const peak0 = process.resourceUsage().maxRSS, t0 = performance.now();
    let error;
    try { await (${call}); } catch (e) { error = e.message; }
    const ms = performance.now() - t0;
    console.log(JSON.stringify({ ms, error, peakGrowthMB: (process.resourceUsage().maxRSS - peak0) / 1024 }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

function assertFast(r: { ms: number; peakGrowthMB?: number }, what: string): void {
  assert.ok(r.ms < 5000, `${what}: took ${r.ms.toFixed(0)} ms`);
  if (r.peakGrowthMB !== undefined) assert.ok(r.peakGrowthMB < 500, `${what}: peak RSS grew by ${r.peakGrowthMB.toFixed(0)} MB`);
}

// ---- images ----

test('a 16000x16000 PNG (a few hundred KB) is refused from its header: fast, small, naming the file and its size', async () => {
  const png = await sharp({ create: { width: 16000, height: 16000, channels: 3, background: '#fff' } }).png({ compressionLevel: 9 }).toBuffer();
  assert.ok(png.length < 2e6, `the PNG is ${png.length} bytes`);
  const file = write('huge.png', png);
  const r = inChild('src/image/decode.js', `lib.decodeImage(${JSON.stringify(file)})`);
  assert.match(r.error ?? 'decoded', /cannot decode image .*huge\.png: .*16000x16000 = 256000000 pixels, above the limit of 134217728 \(set CLIP_MAX_IMAGE_PIXELS/);
  assertFast(r, 'decode');

  // The same through a model, as `clip embed` runs it: the image's own error, nothing else fails.
  const model = await ClipModel.load(EMOJI, { cache: false });
  const [res] = await model.encodeImages([file]);
  assert.match(res!.error ?? 'embedded', /huge\.png: .*above the limit/);
});

test('a 1x200000 strip (tiny file) is refused before the resize it implies (224 x 44800000)', async () => {
  const strip = write('strip.png', await sharp({ create: { width: 1, height: 200_000, channels: 3, background: '#000' } }).png().toBuffer());
  const r = inChild('src/image/pipelines.js', `lib.preprocess(${JSON.stringify(strip)}, lib.openaiPipeline(224))`);
  assert.match(r.error ?? 'preprocessed', /1x200000 image, resized for the model, is 224x44800000 .*above the limit/);
  assertFast(r, 'strip');
});

test('image limits: pixels, file bytes and decode memory, as options and from the environment', async () => {
  const png = await sharp({ create: { width: 100, height: 80, channels: 3, background: '#f00' } }).png().toBuffer();
  const file = write('small.png', png);
  assert.equal((await decodeImage(file)).width, 100, 'within the defaults');
  await assert.rejects(decodeImage(file, undefined, { maxPixels: 7999 }), /small\.png: the image is 100x80 = 8000 pixels, above the limit of 7999/);
  await assert.rejects(decodeImage(png, 'upload', { maxFileBytes: 100 }), /upload: .* of data, above the limit .*CLIP_MAX_IMAGE_FILE_MB/);
  await assert.rejects(decodeImage(file, undefined, { maxFileBytes: 100 }), /small\.png: file is .* above the limit/);
  await assert.rejects(decodeImage(file, undefined, { decodeBudgetBytes: 1000 }), /small\.png: decoding 100x80x3 .* above the decode memory budget/);
  process.env.CLIP_MAX_IMAGE_PIXELS = '5000';
  try {
    await assert.rejects(decodeImage(file), /above the limit of 5000 \(set CLIP_MAX_IMAGE_PIXELS/);
    process.env.CLIP_MAX_IMAGE_PIXELS = 'lots';
    await assert.rejects(decodeImage(file), /CLIP_MAX_IMAGE_PIXELS must be a positive number, got "lots"/);
  } finally {
    delete process.env.CLIP_MAX_IMAGE_PIXELS;
  }
  // A device never ends: the read stops at the byte limit instead of filling memory.
  const r = inChild('src/image/decode.js', `lib.decodeImage('/dev/zero', undefined, { maxFileBytes: 8 * 2 ** 20 })`);
  assert.match(r.error ?? 'decoded', /\/dev\/zero: more than 8 MiB of data, above the limit/);
  assertFast(r, '/dev/zero');
  await assert.rejects(decodeImage(tmp), /is a directory/);
});

test('truncated JPEGs decoded together each keep their own decoder message and file name (no "Unknown error")', async () => {
  const full = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).jpeg().toBuffer();
  const files = Array.from({ length: 24 }, (_, i) => write(`cut-${i}.jpg`, full.subarray(0, Math.floor(full.length * (0.1 + i * 0.03)))));
  const errors = await Promise.all(files.map((f) => decodeImage(f).then(() => 'decoded', (e: Error) => e.message)));
  errors.forEach((msg, i) => assert.equal(msg, `cannot decode image ${files[i]}: VipsJpeg: premature end of JPEG image`));

  // The batched model path (decodes overlap inside encodeImages) reports the same per image.
  const good = write('good.jpg', full);
  const model = await ClipModel.load(EMOJI, { cache: false });
  const res = await model.encodeImages([good, ...files.slice(0, 12), good], { batchSize: 16 });
  assert.ok(res[0]!.embedding && res[13]!.embedding, 'the good images embed');
  res.slice(1, 13).forEach((r, i) => assert.equal(r.error, `cannot decode image ${files[i]}: VipsJpeg: premature end of JPEG image`));
});

// ---- preprocessing config ----

test('preprocessor_config.json values are range-checked, naming the file and the field', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ size: 1e6 }, /preprocessor_config\.json: size must be an integer from 1 to 4096, got 1000000/],
    [{ size: { shortest_edge: 0 } }, /size\.shortest_edge must be an integer from 1 to 4096, got 0/],
    [{ size: { height: 224, width: 2.5 } }, /size\.width must be an integer/],
    [{ crop_size: 1e6 }, /crop_size must be an integer from 1 to 4096/],
    [{ crop_size: { height: -1, width: 224 } }, /crop_size\.height must be an integer/],
    [{ image_std: [0.2, 0, 0.2] }, /image_std\[1\] must be greater than 0, got 0/],
    [{ image_mean: [0.5, 'x', 0.5] }, /image_mean\[1\] must be a finite number/],
    [{ resample: 7 }, /unknown PIL resample code 7/],
    [{ resample: 'bicubic' }, /resample must be a finite number/],
    [{ rescale_factor: 0 }, /rescale_factor must be greater than 0/],
    [{ background_color: [300, 0, 0] }, /background_color\[0\] must be from 0 to 255/],
  ];
  for (const [json, re] of bad) assert.throws(() => pipelineFromPreprocessorConfig(json), re, JSON.stringify(json));
  assert.throws(() => pipelineFromPreprocessorConfig({ size: 0 }, undefined, '/m/preprocessor_config.json'), /^Error: \/m\/preprocessor_config\.json: size/);
  assert.throws(() => openaiPipeline(1e6), /image size must be an integer from 1 to 4096/);
  // A crop the tower cannot take is refused when the pipeline is made, not after decoding every image.
  assert.throws(() => pipelineFor({ kind: 'hf', hfConfig: { crop_size: 100 }, size: 64, mean: [0, 0, 0], std: [1, 1, 1] }),
    /crop_size 100x100 does not match the image tower's input, 64x64/);
});

test('a model whose preprocessor_config.json asks for size 1e6 fails at once, naming the file', async () => {
  const dir = join(tmp, 'pp-model');
  cpSync(EMOJI, dir, { recursive: true });
  const pp = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...pp, size: { shortest_edge: 1e6 } }));
  const img = write('pp.png', await sharp({ create: { width: 32, height: 32, channels: 3, background: '#0f0' } }).png().toBuffer());
  // Refused when the model loads, before any image is decoded.
  const r = await bounded(async () => (await ClipModel.load(dir, { cache: false })).encodeImages([img]));
  assert.match(r.error?.message ?? 'embedded', /pp-model\/preprocessor_config\.json: size\.shortest_edge must be an integer from 1 to 4096, got 1000000/);
  assertFast(r, 'size 1e6');
});

// ---- tokenizers ----

function tokenizerDir(name: string, edit: (j: any) => void, config?: object): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const j = JSON.parse(readFileSync(join(EMOJI, 'tokenizer.json'), 'utf8'));
  edit(j);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(j));
  cpSync(join(EMOJI, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  if (config) writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}
const firstToken = (j: any) => Object.keys(j.model.vocab)[100]!;

test('tokenizer.json: an id of 1e9 is refused at once (it cost 56 s), naming the file and the field', async () => {
  const dir = tokenizerDir('tok-1e9', (j) => { j.model.vocab[firstToken(j)] = 1e9; });
  for (const mode of ['hf', 'openai'] as const) {
    const r = await bounded(async () => loadTokenizer(dir, { mode }));
    assert.match(r.error?.message ?? 'loaded', /tok-1e9\/tokenizer\.json: (model\.)?vocab\[".*"\]: token id 1000000000 is not below the vocabulary limit \(1048576\)/, mode);
    assertFast(r, `id 1e9, ${mode}`);
  }
});

test('tokenizer.json: ids must be non-negative integers below vocab_size; merges, added tokens, specials checked', () => {
  const cases: Array<[string, (j: any) => void, RegExp, object?]> = [
    ['tok-neg', (j) => { j.model.vocab[firstToken(j)] = -1; }, /model\.vocab\[".*"\]: token id must be a non-negative integer, got -1/],
    ['tok-frac', (j) => { j.model.vocab[firstToken(j)] = 1.5; }, /must be a non-negative integer, got 1\.5/],
    ['tok-cfg', (j) => { j.model.vocab[firstToken(j)] = 6000; }, /token id 6000 is not below the model's vocab_size \(6000\)/, { text_config: { vocab_size: 6000 } }],
    ['tok-added', (j) => { j.added_tokens[0].id = 2 ** 40; }, /added_tokens\[0\]\.id: token id 1099511627776 is not below/],
    ['tok-pp', (j) => { j.post_processor = { type: 'RobertaProcessing', cls: ['<s>', 1e9], sep: ['</s>', 2] }; }, /post_processor\.cls\[1\]: token id 1000000000/],
    ['tok-merges', (j) => { j.model.merges = [...j.model.merges.slice(0, 3), 42]; }, /model\.merges\[3\] must be "a b" or \["a", "b"\], got 42/],
    ['tok-vocab', (j) => { j.model.vocab = [1, 2]; }, /model\.vocab must be an object of token -> id/],
  ];
  for (const [name, edit, re, config] of cases) {
    const dir = tokenizerDir(name, edit, config);
    assert.throws(() => loadTokenizer(dir), (e: Error) => re.test(e.message) && e.message.includes(join(dir, 'tokenizer.json')), name);
  }
  // The same checks when the caller knows the tower's vocab_size (ClipModel passes the checkpoint's).
  assert.throws(() => loadTokenizer(EMOJI, { vocabSize: 5000 }), /token id 5\d\d\d is not below the model's vocab_size \(5000\)/);
  const json = JSON.parse(readFileSync(join(EMOJI, 'tokenizer.json'), 'utf8'));
  assert.throws(() => new ClipTokenizer(json, {}, { contextLength: 1e9 }), /context length must be an integer from 1 to 100000/);
});

test('OpenAI BPE: a 200k-letter word takes well under 5 s (it was quadratic), with the reference loop\'s exact ids', () => {
  // CLIP's full vocabulary when the fixtures are there (more merges, longer chains), else the bundled model's.
  const dir = HAVE_FIXTURES ? fixture('common', 'tokenizer-clip') : EMOJI;
  const bpe = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model;
  const fast = new OpenAIClipTokenizer(bpe, { longWord: 1, contextLength: 100_000 });
  const slow = new OpenAIClipTokenizer(bpe, { longWord: Infinity, contextLength: 100_000 });
  let seed = 7;
  const rand = (k: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % k; };
  const alphabet = 'etaoinshrdlucmfwypvbgkqjxz'.split('').concat(['é', 'ß', '中', '文', '😀', "'", '-', '.']);
  const words: string[] = ['aaaaaaaaaaaaaaaaaaaaaaaaa', 'abababababababababab', 'lollollollollollollol', 'mississippimississippi', 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'];
  for (let i = 0; i < 300; i++) words.push(Array.from({ length: 1 + rand(120) }, () => alphabet[rand(i % 2 ? 8 : alphabet.length)]).join(''));
  for (const w of words) assert.deepEqual(fast.tokenize(w), slow.tokenize(w), w);

  const long = Array.from({ length: 200_000 }, () => alphabet[rand(26)]).join('');
  const t0 = performance.now();
  const ids = new OpenAIClipTokenizer(bpe).encode(long);
  assert.equal(ids.length, 77);
  assert.ok(performance.now() - t0 < 5000, `${(performance.now() - t0).toFixed(0)} ms`);
});

test('vocab.txt and OpenAI merges files are bounded (line count, capped inflate)', () => {
  const zh = join(tmp, 'vocab-big');
  mkdirSync(zh);
  writeFileSync(join(zh, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\n' + 'x\n'.repeat(1 << 20));
  assert.throws(() => loadTokenizer(zh), /vocab-big\/vocab\.txt: more than 1048576 lines/);
  const gz = join(tmp, 'gz-bomb');
  mkdirSync(gz);
  // 65 MiB of zeros in ~65 KB: refused while inflating, not after.
  writeFileSync(join(gz, 'bpe_simple_vocab_16e6.txt.gz'), gzipSync(Buffer.alloc(65 * 2 ** 20), { level: 9 }));
  assert.throws(() => loadTokenizer(gz), /gz-bomb\/bpe_simple_vocab_16e6\.txt\.gz: cannot inflate .*limit is 64 MiB/);
});

// ---- datasets ----

test('a .tsv without tabs says so, naming the file and line (it read as an empty captions CSV)', async () => {
  const noTab = write('notab.tsv', 'a photo of a cat\na photo of a dog\n');
  await assert.rejects(readPairs(noTab), /notab\.tsv:1: no tab; a \.tsv file needs text<TAB>base64-image \(EasyNLP\) or image<TAB>caption lines/);
  const blank = write('blank.tsv', '\r\n\r\n');
  await assert.rejects(readPairs(blank), /blank\.tsv: no rows \(the file is empty or blank\)/);
  await assert.rejects(readPairs(write('empty.tsv', '')), /empty\.tsv: empty file; expected text<TAB>base64-image/);
  await assert.rejects(readRetrievalTsv(noTab), /notab\.tsv:1: expected 2 tab-separated fields \(text, base64 image\), found no tab/);
  assert.throws(() => readRetrievalCsv(write('short.csv', 'image,caption\na.jpg,one\nb.jpg\n')),
    /short\.csv:3: expected an image path and a caption \(comma-separated\), found no comma/);
  assert.throws(() => readLabeledCsv(write('nolabel.csv', 'a.jpg,\n')), /nolabel\.csv:1: expected an image path and a label .*the label empty/);
});

test('one endless line is refused at 64 MiB, by every line reader', async () => {
  const big = join(tmp, 'oneline.tsv');
  writeFileSync(big, Buffer.alloc(65 * 2 ** 20, 0x41));
  for (const [what, run] of [
    ['eval TSV', () => readRetrievalTsv(big)],
    ['embed TSV', async () => scanTsv(big)],
    ['JSONL', () => readRetrievalJsonl(big)],
  ] as const) {
    const r = await bounded(run as () => Promise<unknown>);
    assert.match(r.error?.message ?? 'read', /oneline\.tsv:1: line longer than 64 MiB/, what);
    assert.ok(r.ms < 5000, `${what}: ${r.ms} ms`);
  }
});

test('captions, classes and templates are bounded; a symlink cycle in a caption folder is walked once', async () => {
  const long = 'x'.repeat(70_000);
  assert.throws(() => readRetrievalCsv(write('longcap.csv', `a.jpg,${long}\n`)), /longcap\.csv:1: caption of 70000 characters, above the limit of 65536/);
  const embedTsv = scanTsv(write('longcap.tsv', `short\n${long}\n`));
  assert.equal(embedTsv.items.length, 1);
  assert.match(embedTsv.invalid[0]!.error, /longcap\.tsv:2: text of 70000 bytes, above the limit of 65536/);
  await assert.rejects(readRetrievalJsonl(write('longcap.jsonl', JSON.stringify({ image: 'a.jpg', caption: long }) + '\n')), /longcap\.jsonl:1: caption of 70000/);
  assert.throws(() => loadTemplates(write('slots.txt', 'a {}{}{}{}{} photo\n')), /slots\.txt: template 1 has 5 \{\} slots, above the limit of 4/);
  assert.throws(() => checkPromptSet(Array.from({ length: 100_001 }, (_, i) => `c${i}`), ['{}']), /100001 classes, above the limit of 100000/);
  assert.throws(() => checkPromptSet(['a'.repeat(1001)], ['{}']), /class 1 has 1001 characters/);

  const dir = join(tmp, 'caps');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'sub', 'a.png'), 'x');
  writeFileSync(join(dir, 'sub', 'a.txt'), 'a caption\n');
  symlinkSync('..', join(dir, 'sub', 'loop'));
  const ds = readCaptionFolder(dir);
  assert.deepEqual(ds.images.map((im) => im.name), [join(dir, 'sub', 'a.png')]);
});
