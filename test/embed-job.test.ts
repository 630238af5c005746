// `clip embed --input ... --out FILE`: batch embedding at scale into EasyNLP TSV, .npy or JSONL; resumable.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose } from './helpers.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { runEmbedJob } from '../src/tasks/embed-job.js';
import { classifySpec, enumerateInputs, expandGlob, globToRegExp, readListFile, scanTsv } from '../src/tasks/inputs.js';
import { formatFloat32, npyHeader, NPY_HEADER_BYTES, parseNpyHeader } from '../src/tasks/writers.js';

const BIN = CLIP_BIN;
const MODEL = fixture('hf-clip-tiny');
const DIM = 16;
const N_IMAGES = 2000;
// Every 100th image (from #50) is corrupt: 20 in all, spread over the run.
const isCorrupt = (i: number) => i % 100 === 50;

let tmp = '';
let imgDir = '';
const allPaths: string[] = [];

/** Patterned RGB pixels, 16..40 px a side: cheap to make, all different. */
async function writeImage(path: string, i: number): Promise<void> {
  const w = 16 + (i % 25), h = 16 + ((i * 7) % 25);
  const raw = Buffer.alloc(w * h * 3);
  for (let k = 0; k < raw.length; k++) raw[k] = (k * (i % 13 + 1) + i * 17 + (k % 3) * 85) & 255;
  await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

/** Four ways to be a bad image: truncated PNG, random bytes, empty file, text named .png. */
function writeCorrupt(path: string, i: number, goodPng: Buffer): void {
  const kind = Math.floor(i / 100) % 4;
  if (kind === 0) writeFileSync(path, goodPng.subarray(0, 60));
  else if (kind === 1) writeFileSync(path, Buffer.from(Array.from({ length: 500 }, (_, k) => (k * 7919 + i) & 255)));
  else if (kind === 2) writeFileSync(path, Buffer.alloc(0));
  else writeFileSync(path, 'not an image\n');
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'clip-embed-job-'));
  imgDir = join(tmp, 'imgs');
  for (let s = 0; s < 4; s++) mkdirSync(join(imgDir, `s${s}`, s === 3 ? 'deep' : ''), { recursive: true });
  for (let i = 0; i < N_IMAGES; i++) allPaths.push(join(imgDir, `s${i % 4}`, i % 4 === 3 ? 'deep' : '', `img${i}.png`));
  const good = await sharp(Buffer.alloc(40 * 40 * 3, 128), { raw: { width: 40, height: 40, channels: 3 } }).png().toBuffer();
  for (let s = 0; s < N_IMAGES; s += 50) {
    await Promise.all(allPaths.slice(s, s + 50).map((p, k) => (isCorrupt(s + k) ? writeCorrupt(p, s + k, good) : writeImage(p, s + k))));
  }
  // Hidden files are junk (e.g. macOS `._x.png`) and must not be picked up by the folder walk.
  writeFileSync(join(imgDir, 's0', '._img0.png'), 'resource fork');
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---- helpers ----

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

function clip(args: string[], onSpawn?: (c: ChildProcess) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const c = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout!.on('data', (d) => (stdout += d));
    c.stderr!.on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }));
    onSpawn?.(c);
  });
}

let wired: boolean | undefined;
function assertWired(): void {
  wired ??= spawnSync(process.execPath, [BIN, 'embed', '--help'], { encoding: 'utf8' }).stdout.includes('--out <file>');
  assert.ok(wired, 'clip embed has no --out option: addEmbedBatchOptions / runEmbedBatch are not wired into src/cli/main.ts');
}

/** EasyNLP TSV rows: D values then the id; every id exactly once. */
function readTsv(path: string): Map<string, number[]> {
  const rows = new Map<string, number[]>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split('\t');
    assert.equal(f.length, DIM + 1, `row has ${f.length} fields: ${line.slice(0, 80)}`);
    const id = f[DIM]!;
    assert.ok(!rows.has(id), `${id} appears twice in ${path}`);
    const v = f.slice(0, DIM).map(Number);
    assert.ok(v.every(Number.isFinite), `non-numeric value in row ${id}`);
    rows.set(id, v);
  }
  return rows;
}

function readJsonl(path: string): any[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Parse a float32 [N, D] .npy with its metadata into input -> row. */
function readNpy(path: string): { shape: number[]; byInput: Map<string, Float32Array> } {
  const buf = readFileSync(path);
  const h = parseNpyHeader(buf);
  assert.equal(h.descr, '<f4');
  assert.equal(h.fortranOrder, false);
  assert.equal(h.dataOffset % 64, 0, 'npy header length must be a multiple of 64');
  const [n, d] = h.shape as [number, number];
  assert.equal(buf.length, h.dataOffset + n * d * 4, 'file size matches the header shape');
  const meta = readJsonl(`${path}.meta.jsonl`);
  assert.equal(meta.length, n);
  const byInput = new Map<string, Float32Array>();
  meta.forEach((m, i) => {
    assert.equal(m.row, i);
    assert.ok(!byInput.has(m.input), `${m.input} appears twice`);
    const row = new Float32Array(d);
    for (let j = 0; j < d; j++) row[j] = buf.readFloatLE(h.dataOffset + (i * d + j) * 4);
    byInput.set(m.input, row);
  });
  return { shape: h.shape, byInput };
}

function sameRows(actual: Map<string, ArrayLike<number>>, expected: Map<string, ArrayLike<number>>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: same inputs`);
  for (const [id, v] of expected) assertClose(actual.get(id)!, v, 1e-6, `${what}: ${id}`);
}

const progressMarks = (out: string): number =>
  existsSync(`${out}.progress`) ? readFileSync(`${out}.progress`, 'utf8').split('\n').filter(Boolean).length - 1 : 0;

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---- input enumeration (no model needed) ----

test('globs: *, ?, [..], {a,b}, ** and no leading dots', () => {
  const re = (g: string) => globToRegExp(g);
  assert.ok(re('**/*.png').test('a.png'));
  assert.ok(re('**/*.png').test('x/y/a.png'));
  assert.ok(!re('**/*.png').test('x/.hidden/a.png'));
  assert.ok(!re('**/*.png').test('a.jpg'));
  assert.ok(re('*.{png,jpg}').test('a.jpg'));
  assert.ok(!re('*.{png,jpg}').test('d/a.jpg'));
  assert.ok(!re('*.png').test('.a.png'));
  assert.ok(re('img[0-2].png').test('img1.png'));
  assert.ok(!re('img[!0-2].png').test('img1.png'));
  assert.ok(re('img?.png').test('img7.png'));
  assert.ok(!re('img?.png').test('img17.png'));
  assert.ok(re('a/**').test('a/b/c.png'));
  assert.ok(re('a+b(1).png').test('a+b(1).png'), 'regex characters are literal');
});

test('inputs: folders recurse, globs expand, lists resolve, overlaps count once, missing inputs fail by name', () => {
  const folder = enumerateInputs([imgDir]);
  assert.equal(folder.items.length, N_IMAGES, 'every .png under the folder, hidden files skipped');
  assert.ok(folder.items.some((it) => it.id.includes(`${join('s3', 'deep')}`)), 'subfolders are walked');
  assert.equal(expandGlob(join(imgDir, 's1', '*.png')).length, N_IMAGES / 4);
  assert.deepEqual(expandGlob(join(imgDir, '**', 'img1?.png')).map((p) => p.slice(p.lastIndexOf('/') + 1)).sort(),
    Array.from({ length: 10 }, (_, k) => `img1${k}.png`).sort());
  // A folder and a glob over the same files: each file once.
  const both = enumerateInputs([join(imgDir, 's1'), join(imgDir, '**', '*.png')]);
  assert.equal(both.items.length, N_IMAGES);

  const list = join(tmp, 'list-unit.txt');
  writeFileSync(list, `# comment\nimgs/s0/img0.png\r\n\n${allPaths[1]}\n`);
  assert.equal(classifySpec(list).kind, 'list');
  assert.deepEqual(readListFile(list), [join(tmp, 'imgs/s0/img0.png'), allPaths[1]]);
  assert.equal(classifySpec(imgDir).kind, 'folder');
  assert.equal(classifySpec(allPaths[0]!).kind, 'image');
  assert.equal(classifySpec(join(imgDir, '*.png')).kind, 'glob');
  assert.throws(() => enumerateInputs([join(tmp, 'nope.txt')]), /input not found: .*nope\.txt/);
  assert.throws(() => enumerateInputs([join(tmp, 'none', '*.png')]), /no files match .*none/);
});

test('EasyNLP TSV layout is detected per file from its first line', async () => {
  const png = await sharp(Buffer.alloc(20 * 20 * 3, 9), { raw: { width: 20, height: 20, channels: 3 } }).png().toBuffer();
  const b64 = png.toString('base64');
  const f = (name: string, text: string) => { const p = join(tmp, name); writeFileSync(p, text); return p; };
  const pairs = scanTsv(f('u-pairs.tsv', `a cat\t${b64}\n\nbad\trow\tthree\n\t${b64}\r\n`));
  assert.deepEqual(pairs.items.map((i) => `${i.kind} ${i.id.slice(tmp.length + 1)}`), ['text u-pairs.tsv:1:text', 'image u-pairs.tsv:1:image', 'image u-pairs.tsv:4:image']);
  assert.equal(pairs.invalid.length, 1);
  assert.match(pairs.invalid[0]!.error, /u-pairs\.tsv:3: 3 columns/);
  const swapped = scanTsv(f('u-swapped.tsv', `${b64}\ta dog\n`));
  assert.deepEqual(swapped.items.map((i) => i.kind), ['text', 'image']);
  assert.deepEqual(scanTsv(f('u-images.tsv', `${b64}\n${b64}\n`)).items.map((i) => i.kind), ['image', 'image']);
  const texts = scanTsv(f('u-texts.tsv', 'hello\nworld\n'));
  assert.deepEqual(texts.items.map((i) => ('text' in i ? i.text : '')), ['hello', 'world']);
  assert.throws(() => scanTsv(f('u-three.tsv', 'a\tb\tc\n')), /u-three\.tsv:1: 3 tab-separated columns/);
});

test('float32 values are written as the shortest decimal that reads back exactly', () => {
  assert.equal(formatFloat32(Math.fround(0.1)), '0.1');
  assert.equal(formatFloat32(-0.25), '-0.25');
  let seed = 7;
  for (let k = 0; k < 2000; k++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const f = Math.fround((seed / 2147483648 - 0.5) * 10 ** ((k % 12) - 6));
    const s = formatFloat32(f);
    assert.equal(Math.fround(Number(s)), f, `${f} -> ${s}`);
    assert.ok(s.replace(/^-?0?\.?0*|e.*$|\./g, '').length <= 9, s);
  }
  const h = parseNpyHeader(npyHeader(123456789, 512));
  assert.deepEqual(h.shape, [123456789, 512]);
  assert.equal(h.dataOffset, NPY_HEADER_BYTES);
});

// ---- the CLI at scale ----

test('2,000 images with 20 corrupt: each good one embedded exactly once, the 20 listed, exit code 3', { skip: SKIP_FIXTURES, timeout: 300_000 }, async (t) => {
  assertWired();
  const out = join(tmp, 'big.tsv');
  const r = await clip(['embed', '--model', MODEL, '--input', imgDir, '--out', out, '--json']);
  const ownRate = /([\d.]+)\/s/.exec(r.stderr)?.[1];
  t.diagnostic(`${N_IMAGES} images: ${(N_IMAGES / (r.ms / 1000)).toFixed(1)} images/s end to end (${(r.ms / 1000).toFixed(1)} s incl. start-up and model load); ${ownRate} inputs/s as the job reports`);
  assert.equal(r.code, 3, r.stderr);

  const good = allPaths.filter((_, i) => !isCorrupt(i));
  const bad = allPaths.filter((_, i) => isCorrupt(i));
  const rows = readTsv(out);
  assert.deepEqual([...rows.keys()].sort(), [...good].sort(), 'every good image exactly once');
  const errors = readJsonl(`${out}.errors.jsonl`);
  assert.deepEqual(errors.map((e) => e.input).sort(), [...bad].sort(), 'the 20 corrupt files, and only those, are listed');
  for (const e of errors) assert.ok(e.error.includes(e.input), `error names its input: ${e.error}`);
  for (const p of bad) assert.ok(r.stderr.includes(p), `stderr lists ${p}`);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.rows, good.length);
  assert.equal(summary.errors.length, bad.length);

  // The vectors are the library's on the same files.
  const sample = good.filter((_, k) => k % 97 === 0);
  const model = await ClipModel.load(MODEL);
  const lib = await model.encodeImages(sample);
  sample.forEach((p, k) => assertClose(rows.get(p)!, lib[k]!.embedding!, 1e-6, p));
  await model.release();
});

test('killed midway with SIGINT, the same command resumes: same rows as an uninterrupted run, nothing twice', { skip: SKIP_FIXTURES, timeout: 180_000 }, async () => {
  assertWired();
  // 240 images (2 corrupt) from a list file with relative paths; small chunks so output shows up early.
  const list = join(tmp, 'subset.txt');
  writeFileSync(list, allPaths.slice(0, 240).map((p) => p.slice(tmp.length + 1)).join('\n') + '\n');
  const args = (out: string) => ['embed', '--model', MODEL, '--input', list, '--out', out, '--batch-size', '8', '--chunk-size', '16'];

  const refOut = join(tmp, 'ref.tsv');
  const ref = await clip(args(refOut));
  assert.equal(ref.code, 3, ref.stderr);
  const expected = readTsv(refOut);
  assert.equal(expected.size, 238);

  const out = join(tmp, 'resumed.tsv');
  let child: ChildProcess | undefined;
  const first = clip(args(out), (c) => (child = c));
  await waitFor(() => progressMarks(out) >= 2, 120_000, 'the first chunks to be saved');
  child!.kill('SIGINT');
  const killed = await first;
  assert.ok(killed.code === 130 || killed.signal === 'SIGINT', `killed run exited with ${killed.code ?? killed.signal}`);
  const partial = readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
  assert.ok(partial > 0 && partial < expected.size, `the kill came midway (${partial} of ${expected.size} rows written)`);

  const again = await clip(args(out));
  assert.equal(again.code, 3, again.stderr);
  const before = Number(/(\d+) done before/.exec(again.stderr)?.[1]);
  assert.ok(before >= 16, `the rerun skipped the saved inputs (${again.stderr.trim().split('\n').pop()})`);
  sameRows(readTsv(out), expected, 'resumed run');
  assert.equal(readJsonl(`${out}.errors.jsonl`).length, 2, 'failed inputs are retried and listed again');

  // A rerun of a finished job has nothing to do and changes nothing.
  const bytes = readFileSync(out);
  const noop = await clip(args(out));
  assert.equal(noop.code, 3);
  assert.deepEqual(readFileSync(out), bytes);
});

test('a kill between writing rows and their marker (or mid-line) leaves a state that resumes exactly', { skip: SKIP_FIXTURES }, async () => {
  const model = await ClipModel.load(MODEL);
  const items = enumerateInputs(allPaths.slice(0, 45).filter((_, i) => !isCorrupt(i))).items;
  for (const ext of ['npy', 'jsonl']) {
    const full = join(tmp, `full.${ext}`);
    await runEmbedJob(model, { items, out: full, chunkSize: 8 });
    const torn = join(tmp, `torn.${ext}`);
    const part = await runEmbedJob(model, { items: items.slice(0, 20), out: torn, chunkSize: 8 });
    assert.equal(part.rows, 20);
    // What a kill leaves after a chunk's rows reached the disk but its marker did not: extra rows (for .npy
    // also a header that counts them, and metadata lines), a half-written row, and a torn marker line.
    if (ext === 'npy') {
      appendFileSync(torn, Buffer.alloc(3 * DIM * 4, 0x7f));
      const fd = openSync(torn, 'r+');
      writeSync(fd, npyHeader(23, DIM), 0, NPY_HEADER_BYTES, 0);
      closeSync(fd);
      appendFileSync(`${torn}.meta.jsonl`, '{"row":20,"input":"x","kind":"image"}\n{"row":21,"inp');
    } else {
      appendFileSync(torn, readFileSync(torn, 'utf8').split('\n')[0] + '\n{"input":"half');
    }
    appendFileSync(`${torn}.progress`, '{"sizes":[99');
    const res = await runEmbedJob(model, { items, out: torn, chunkSize: 8 });
    assert.equal(res.skipped, 20);
    assert.equal(res.rows, items.length);
    if (ext === 'npy') {
      const a = readNpy(torn), b = readNpy(full);
      assert.deepEqual(a.shape, [items.length, DIM]);
      sameRows(a.byInput, b.byInput, 'resumed .npy');
    } else {
      const rows = (p: string) => new Map(readJsonl(p).map((r) => [r.input as string, r.embedding as number[]]));
      const a = readJsonl(torn);
      assert.equal(new Set(a.map((r) => r.input)).size, a.length, 'no input twice');
      sameRows(rows(torn), rows(full), 'resumed .jsonl');
    }
  }
  await model.release();
});

test('resuming refuses an output it cannot account for, or one made with other settings', { skip: SKIP_FIXTURES }, async () => {
  const model = await ClipModel.load(MODEL);
  const items = enumerateInputs(allPaths.slice(0, 3)).items;
  const stray = join(tmp, 'stray.jsonl');
  writeFileSync(stray, '{"input":"somebody else"}\n');
  await assert.rejects(runEmbedJob(model, { items, out: stray }), /stray\.jsonl exists but .*progress does not.*--no-resume/);
  const r = await runEmbedJob(model, { items, out: stray, resume: false });
  assert.equal(r.rows, 3);
  await assert.rejects(runEmbedJob(model, { items, out: stray, normalize: false }), /normalized embeddings, not raw.*--no-resume/);
  await model.release();
});

// ---- EasyNLP TSV, .npy and JSONL ----

test('EasyNLP TSV round trip: base64 images and texts in, one row per input out, equal to the library', { skip: SKIP_FIXTURES }, async () => {
  assertWired();
  const names = ['astronaut.png', 'chelsea.png', 'coffee.png', 'chelsea-q90.jpg', 'camera.png', 'clip-diagram-rgba.png'];
  const bytes = names.map((n) => readFileSync(fixture('common', 'images', n)));
  const captions = ['an astronaut', 'a cat', 'a cup of coffee', 'a cat again', 'a camera man', 'a diagram'];
  // EasyNLP decodes with urlsafe_b64decode; both alphabets are accepted.
  const b64 = (b: Buffer, k: number) => b.toString(k % 2 ? 'base64url' : 'base64');
  const pairs = join(tmp, 'pairs.tsv');
  writeFileSync(pairs, captions.map((c, k) => `${c}\t${b64(bytes[k]!, k)}`).join('\n') + '\nstray\tthree\tcolumns\n');
  const images = join(tmp, 'images.tsv');
  writeFileSync(images, `${b64(bytes[0]!, 0)}\n${Buffer.from('definitely not an image, but base64 of text').toString('base64')}\nnot base64 at all!\n${b64(bytes[2]!, 2)}\n`);
  const texts = join(tmp, 'texts.tsv');
  writeFileSync(texts, 'a photo of a rocket\n\n一只猫\n');

  const out = join(tmp, 'feats.tsv');
  const r = await clip(['embed', '--model', MODEL, '--input', pairs, '--input', images, '--input', texts, '--out', out]);
  assert.equal(r.code, 3, r.stderr);

  // Layout: no header; each line = DIM tab-separated values, then the id; in input order.
  const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
  const ids = lines.map((l) => l.split('\t').at(-1));
  assert.deepEqual(ids, [
    ...captions.flatMap((_, k) => [`${pairs}:${k + 1}:text`, `${pairs}:${k + 1}:image`]),
    `${images}:1`, `${images}:4`, `${texts}:1`, `${texts}:3`,
  ]);
  const rows = readTsv(out);

  const model = await ClipModel.load(MODEL);
  const imgEmb = (await model.encodeImages(bytes)).map((x) => x.embedding!);
  const txtEmb = await model.encodeTexts([...captions, 'a photo of a rocket', '一只猫']);
  captions.forEach((_, k) => {
    assertClose(rows.get(`${pairs}:${k + 1}:image`)!, imgEmb[k]!, 1e-6, `image ${names[k]}`);
    assertClose(rows.get(`${pairs}:${k + 1}:text`)!, txtEmb[k]!, 1e-6, `text ${captions[k]}`);
  });
  assertClose(rows.get(`${images}:4`)!, imgEmb[2]!, 1e-6, 'single-column image');
  assertClose(rows.get(`${texts}:3`)!, txtEmb[7]!, 1e-6, 'single-column text');
  await model.release();

  const errors = readJsonl(`${out}.errors.jsonl`);
  assert.deepEqual(errors.map((e) => e.input), [`${pairs}:7`, `${images}:2`, `${images}:3`]);
  assert.match(errors[2].error, /images\.tsv:3: image column is not base64/);
  assert.ok(errors[1].error.includes(`${images}:2`), `decode errors name the row: ${errors[1].error}`);
});

test('.npy header parses (shape, dtype) and its rows equal the JSONL output', { skip: SKIP_FIXTURES }, async () => {
  assertWired();
  const dir = fixture('common', 'images');
  const npy = join(tmp, 'fixtures.npy');
  const jsonl = join(tmp, 'fixtures.jsonl');
  const a = await clip(['embed', '--model', MODEL, '--input', dir, '--out', npy]);
  assert.equal(a.code, 0, a.stderr);
  const b = await clip(['embed', '--model', MODEL, '--input', dir, '--out', jsonl, '--batch-size', '5']);
  assert.equal(b.code, 0, b.stderr);
  const { shape, byInput } = readNpy(npy);
  assert.deepEqual(shape, [13, DIM]);
  const lines = readJsonl(jsonl);
  assert.equal(lines.length, 13);
  const expected = new Map(lines.map((l) => [l.input as string, l.embedding as number[]]));
  assert.ok(lines.every((l) => l.kind === 'image'));
  sameRows(byInput, expected, '.npy vs .jsonl');
  assert.equal(existsSync(`${npy}.errors.jsonl`), false, 'no errors file when nothing failed');
});
