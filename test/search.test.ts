// Index and search: query algebra, both stores (agreement, persistence, concurrent readers), the incremental
// indexer, the CLI contract, and LanceStore's ANN recall.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { CLIP_BIN, fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { ExactStore } from '../src/search/exact-store.js';
import { indexFolders, type IndexStats } from '../src/search/indexer.js';
import { filterToSql, LanceStore } from '../src/search/lance-store.js';
import { detectPreview, previewSequence } from '../src/search/preview.js';
import { embedQuery, parseQuery } from '../src/search/query.js';
import { parseCondition, type Filter, type SearchHit, type VectorRecord, type VectorStore } from '../src/search/store.js';
import { ClusteredVectors, writePatternPngs } from '../src/search/synthetic.js';
import { dotRow, TopK } from '../src/search/topk.js';

const run = promisify(execFile);
const TMP = mkdtempSync(join(tmpdir(), 'clip-search-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const ids = (hits: SearchHit[]) => hits.map((h) => h.id);
const record = (id: string, vector: Float32Array): VectorRecord => ({ id, vector, meta: { path: id, size: 1, mtime: 2, width: 3, height: 4, hash: id } });

/** Unit vector from a seed, for store tests that need no model. */
function unit(dim: number, seed: number): Float32Array {
  const v = Float32Array.from({ length: dim }, (_, j) => Math.sin(seed * 12.9898 + j * 78.233) * 43758.5453 % 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

test('parseQuery: quoted terms, bare words, + and -, signs', () => {
  const t = (args: string[]) => parseQuery(args).map((q) => `${q.sign > 0 ? '+' : '-'}${q.value}`);
  assert.deepEqual(t(['"beach" + "sunset" - "people"']), ['+beach', '+sunset', '-people']);
  assert.deepEqual(t(['beach', '+', 'sunset', '-', 'black and white']), ['+beach', '+sunset', '-black and white']);
  assert.deepEqual(t(['a red car - night']), ['+a red car', '-night']);
  assert.deepEqual(t(['well-lit room']), ['+well-lit room']);
  assert.deepEqual(t(['- "rain"']), ['-rain']);
  assert.deepEqual(t(["'cat' 'dog'"]), ['+cat', '+dog']);
  assert.throws(() => parseQuery(['cat + - dog']), /two operators/);
  assert.throws(() => parseQuery(['cat +']), /ends with an operator/);
  assert.throws(() => parseQuery(['"cat']), /unclosed/);
});

test('filters: parsed from the command line, translated to SQL with quoting', () => {
  assert.deepEqual(parseCondition('width>=512'), { field: 'width', op: '>=', value: 512 });
  assert.deepEqual(parseCondition("path^=/a b/it's"), { field: 'path', op: 'prefix', value: "/a b/it's" });
  assert.throws(() => parseCondition('colour=red'), /unknown field/);
  assert.throws(() => parseCondition('width^=5'), /prefix applies/);
  assert.equal(filterToSql([parseCondition('width>=512'), parseCondition("path^=/x/it's"), parseCondition('hash!=ab')]),
    "width >= 512 AND starts_with(path, '/x/it''s') AND hash <> 'ab'");
});

test('--preview: protocol from the environment; kitty payload chunked, iTerm2 inline file', async () => {
  assert.equal(detectPreview({ TERM_PROGRAM: 'iTerm.app' }), 'iterm');
  assert.equal(detectPreview({ TERM: 'xterm-kitty' }), 'kitty');
  assert.equal(detectPreview({ TERM: 'xterm-256color', TERM_PROGRAM: 'Apple_Terminal' }), undefined);
  const [png] = await writePatternPngs(join(TMP, 'preview'), 4, { seed: 8, size: 300 }).then((p) => p.slice(3)); // noise: large payload
  const kitty = await previewSequence(png!, 'kitty');
  const chunks = kitty.trimEnd().split('\x1b\\').filter(Boolean);
  assert.ok(chunks.length > 1, 'a 256px noise thumbnail needs several chunks');
  assert.match(chunks[0]!, /^\x1b_Ga=T,f=100,r=8,m=1;/);
  assert.match(chunks.at(-1)!, /^\x1b_Gm=0;/);
  assert.ok(chunks.every((c) => c.slice(c.indexOf(';') + 1).length <= 4096));
  const iterm = await previewSequence(png!, 'iterm');
  const b64 = /^\x1b\]1337;File=inline=1;size=(\d+);height=8;preserveAspectRatio=1:([A-Za-z0-9+/=]+)\x07\n$/.exec(iterm);
  assert.ok(b64);
  assert.equal(Buffer.from(b64[2]!, 'base64').length, Number(b64[1]));
});

test('ExactStore: a torn last frame is invisible to readers and cut off by the next writer', async () => {
  const path = join(TMP, 'torn.clipvec');
  const w = await ExactStore.open(path, { dim: 8 });
  await w.upsert([record('a', unit(8, 1)), record('b', unit(8, 2))]);
  await w.delete(['a']);
  await w.close();
  const intact = statSync(path).size;
  // What a writer killed mid-append leaves: a frame header promising more bytes than follow.
  appendFileSync(path, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]));
  const r = await ExactStore.open(path);
  assert.equal(await r.count(), 1);
  await r.upsert([record('c', unit(8, 3))]);
  await r.close();
  const again = await ExactStore.open(path);
  assert.deepEqual((await again.get(['a', 'b', 'c'])).map((x) => x.id), ['b', 'c']);
  assert.ok(statSync(path).size > intact);
  assert.equal((await again.search(unit(8, 3), 1))[0]!.id, 'c');
});

test('ExactStore: a reader picks up appended batches and survives compaction', async () => {
  const path = join(TMP, 'compact.clipvec');
  const w = await ExactStore.open(path, { dim: 8 });
  const r = await ExactStore.open(path);
  for (let round = 0; round < 8; round++) await w.upsert(Array.from({ length: 400 }, (_, i) => record(`x${i}`, unit(8, i + round))));
  assert.equal(await r.count(), 400);
  const before = statSync(path).size;
  await w.optimize(); // 3200 logged entries for 400 live ones: rewritten
  await w.upsert([record('new', unit(8, 999))]);
  await w.close();
  assert.equal(await r.count(), 401);
  assert.equal((await r.search(unit(8, 999), 1))[0]!.id, 'new');
  assert.deepEqual(Array.from((await r.get(['x7']))[0]!.vector), Array.from(unit(8, 7 + 7)));
  assert.ok(statSync(path).size < before / 4, `compacted ${before} -> ${statSync(path).size} bytes`);
});

/** Run a reader in another process that loops count()+search() until the writer is done; returns what it saw. */
async function concurrentReaders(kind: 'lance' | 'exact'): Promise<void> {
  const dim = 16;
  const batch = 25;
  const batches = 30;
  const dir = join(TMP, `rw-${kind}${kind === 'exact' ? '.clipvec' : ''}`);
  const writer: VectorStore = kind === 'lance' ? await LanceStore.open(dir, { dim }) : await ExactStore.open(dir, { dim });
  const done = join(TMP, `rw-${kind}.done`);
  const mod = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'search', kind === 'lance' ? 'lance-store.js' : 'exact-store.js')).href;
  const script = join(TMP, `reader-${kind}.mjs`);
  writeFileSync(script, `import { existsSync } from 'node:fs';
import { ${kind === 'lance' ? 'LanceStore' : 'ExactStore'} as S } from '${mod}';
const s = await S.open(${JSON.stringify(dir)});
const q = new Float32Array(${dim}).fill(0.25);
const seen = [];
let last = false;
while (!last) {
  last = existsSync(${JSON.stringify(done)});
  const c = await s.count();
  const hits = await s.search(q, 5);
  seen.push([c, hits.length]);
}
console.log(JSON.stringify(seen));
`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number>((res) => child.on('exit', (c) => res(c ?? -1)));
  await new Promise((res) => setTimeout(res, 700)); // let the reader get going
  for (let b = 0; b < batches; b++) {
    await writer.upsert(Array.from({ length: batch }, (_, i) => record(`r${b}-${i}`, unit(dim, b * batch + i))));
    await new Promise((res) => setTimeout(res, 15));
  }
  writeFileSync(done, '');
  assert.equal(await exited, 0, err);
  await writer.close();
  const seen: [number, number][] = JSON.parse(out);
  const counts = seen.map((s) => s[0]);
  assert.ok(counts.every((c) => c % batch === 0), `a reader saw a partial batch: ${counts.filter((c) => c % batch)}`);
  assert.ok(counts.every((c, i) => i === 0 || c >= counts[i - 1]!), 'counts never go back');
  assert.ok(new Set(counts).size >= 3, `reader saw only ${[...new Set(counts)]}`);
  assert.equal(counts.at(-1), batch * batches);
  // search runs after count, so it sees at least the rows count saw (maybe a later batch too).
  assert.ok(seen.every(([c, h]) => h >= Math.min(5, c) && h <= 5), "search returns min(k, rows) hits");
}

test('LanceStore: another process searches while this one inserts, and never sees half a batch', () => concurrentReaders('lance'));
test('ExactStore: another process searches while this one inserts, and never sees half a batch', () => concurrentReaders('exact'));

// ---- with the model ----

let model: ClipModel;
let imagesDir: string;
let images: string[];
let lance: LanceStore;
let exact: ExactStore;
let firstStats: IndexStats;

before(async () => {
  if (SKIP_FIXTURES) return;
  model = await ClipModel.load(fixture('hf-clip-tiny'));
  imagesDir = join(TMP, 'images');
  const generated = await writePatternPngs(join(imagesDir, 'generated'), 200, { seed: 11 });
  const common = fixture('common', 'images');
  const copies = ['astronaut.png', 'chelsea.png', 'chelsea-q90.jpg', 'coffee.png', 'rocket.png', 'flower.jpg', 'china.jpg', 'camera.png',
    'horse.png', 'chelsea-palette.png', 'clip-diagram-rgba.png', 'tiny-33x20.png', 'tall-90x700.png'].map((f) => {
    const to = join(imagesDir, f);
    copyFileSync(join(common, f), to);
    return to;
  });
  images = [...copies, ...generated];
  lance = await LanceStore.open(join(TMP, 'lance-db'), { dim: model.dim, model: 'hf-clip-tiny' });
  firstStats = await indexFolders(model, lance, [imagesDir], { batchSize: 32 });
  // The exact store gets the very same vectors, so the two searches must agree.
  exact = ExactStore.memory(lance.info);
  await exact.upsert(await lance.get(images));
});

after(async () => {
  await lance?.close();
  await model?.release();
});

test('index: every image embedded once and stored with its metadata', { skip: SKIP_FIXTURES }, async () => {
  assert.equal(images.length, 213);
  assert.equal(firstStats.embedded, 213);
  assert.deepEqual(firstStats.failed, []);
  assert.equal(await lance.count(), 213);
  const [astro] = await lance.get([join(imagesDir, 'astronaut.png')]);
  assert.deepEqual({ ...astro!.meta, mtime: 0 }, { path: join(imagesDir, 'astronaut.png'), size: statSync(join(imagesDir, 'astronaut.png')).size, mtime: 0, width: 512, height: 512, hash: sha256(join(imagesDir, 'astronaut.png')) });
  assert.ok(Math.abs(Math.hypot(...astro!.vector) - 1) < 1e-5);
});

test('search: an indexed image as the query comes back first with score ~1; Lance equals exact', { skip: SKIP_FIXTURES }, async () => {
  const sample = [0, 1, 2, 5, 12, 13, 14, 15, 16, 100, 150, 212].map((i) => images[i]!);
  for (const p of sample) {
    const q = await embedQuery(model, [{ sign: 1, kind: 'image', value: p }]);
    const hits = await lance.search(q, 10);
    assert.equal(hits[0]!.id, p);
    assert.ok(hits[0]!.score > 0.9999, `self score ${hits[0]!.score}`);
    assert.ok(hits[0]!.score > hits[1]!.score);
    const ex = await exact.search(q, 10);
    assert.deepEqual(ids(hits), ids(ex));
    hits.forEach((h, i) => assert.ok(Math.abs(h.score - ex[i]!.score) < 1e-5, `${h.id}: ${h.score} vs ${ex[i]!.score}`));
  }
});

test('search: query algebra and metadata filters agree between Lance and exact', { skip: SKIP_FIXTURES }, async () => {
  const q = await embedQuery(model, parseQuery(['"a striped pattern" + "red" - "a cat"', '+', images[3]!]));
  const filters: (Filter | undefined)[] = [
    undefined,
    [{ field: 'width', op: '>', value: 100 }],
    [{ field: 'path', op: 'prefix', value: join(imagesDir, 'generated', 'g01') }],
    [{ field: 'height', op: '<=', value: 300 }, { field: 'path', op: 'prefix', value: join(imagesDir, 'c') }],
  ];
  for (const f of filters) {
    const a = await lance.search(q, 10, f);
    const b = await exact.search(q, 10, f);
    assert.deepEqual(ids(a), ids(b), JSON.stringify(f));
    assert.ok(a.length > 0);
    if (f?.[0]?.field === 'width') assert.ok(a.every((h) => h.meta.width > 100));
  }
  // Terms are normalized before summing: for unit r, b, (r + b) . (r - b) = |r|^2 - |b|^2 = 0.
  const plus = await embedQuery(model, parseQuery(['"red" + "blue"']));
  const minus = await embedQuery(model, parseQuery(['"red" - "blue"']));
  assert.ok(Math.abs(dotRow(plus, minus, 0)) < 1e-4, `cos(r+b, r-b) = ${dotRow(plus, minus, 0)}`);
});

test('clip search --image --json and clip index --json through the CLI', { skip: SKIP_FIXTURES }, async () => {
  const cli = CLIP_BIN;
  const db = join(TMP, 'lance-db');
  await lance.close(); // the CLI takes its own handles (and the writer lock)
  const target = images[20]!;
  const s = await run(process.execPath, [cli, 'search', '--model', fixture('hf-clip-tiny'), '--db', db, '--image', target, '--k', '3', '--json']);
  const out = JSON.parse(s.stdout);
  assert.equal(out.length, 3);
  assert.equal(out[0].path, target);
  assert.ok(out[0].score > 0.9999);
  assert.deepEqual(Object.keys(out[0]).sort(), ['hash', 'height', 'mtime', 'path', 'score', 'size', 'width']);
  const table = await run(process.execPath, [cli, 'search', '--model', fixture('hf-clip-tiny'), '--db', db, '"red" - "blue"', '--k', '2']);
  assert.match(table.stdout, /^#\s+score\s+path\s+size\n/);
  const i = await run(process.execPath, [cli, 'index', imagesDir, '--model', fixture('hf-clip-tiny'), '--db', db, '--json']);
  const stats = JSON.parse(i.stdout);
  assert.equal(stats.embedded, 0);
  assert.equal(stats.unchanged, 213);
  assert.equal(stats.count, 213);
  lance = await LanceStore.open(db);
});

/** Add, change, delete, touch, copy, and corrupt files; a rerun must do exactly the needed work. */
async function incremental(kind: 'lance' | 'exact'): Promise<void> {
  const dir = join(TMP, `inc-${kind}`);
  const files = await writePatternPngs(dir, 30, { seed: 5 });
  const store: VectorStore = kind === 'lance'
    ? await LanceStore.open(join(TMP, `inc-${kind}-db`), { dim: model.dim })
    : await ExactStore.open(join(TMP, `inc-${kind}.clipvec`), { dim: model.dim });
  const s1 = await indexFolders(model, store, [dir], { batchSize: 8 });
  assert.equal(s1.embedded, 30);

  const [fresh] = await writePatternPngs(dir, 1, { seed: 99, prefix: 'new' });
  const changed = files[1]!;
  await writePatternPngs(join(TMP, `tmp-${kind}`), 1, { seed: 1234 }).then(([p]) => copyFileSync(p!, changed));
  const deleted = files[2]!;
  unlinkSync(deleted);
  const touched = files[3]!;
  utimesSync(touched, new Date(), new Date(Date.now() + 10_000));
  const copy = join(dir, 'copy-of-4.png');
  copyFileSync(files[4]!, copy);
  const bad = join(dir, 'bad.png');
  writeFileSync(bad, 'not a png');
  // Two new files with the same new content, in the same batch: one model run for both.
  const [twinA] = await writePatternPngs(dir, 1, { seed: 4321, prefix: 'twin-a' });
  const twinB = join(dir, 'twin-b.png');
  copyFileSync(twinA!, twinB);

  const s2 = await indexFolders(model, store, [dir], { batchSize: 8 });
  assert.equal(s2.embedded, 3, 'only the new file, the changed file and one twin go through the model');
  assert.equal(s2.reused, 3, 'the touched file, the copy and the second twin reuse vectors');
  assert.equal(s2.deleted, 1);
  assert.equal(s2.unchanged, 27);
  assert.deepEqual(s2.failed.map((f) => f.path), [bad]);
  assert.equal(await store.count(), 33);

  const all = new Map<string, string>();
  for await (const e of store.entries()) all.set(e.id, e.meta.hash);
  assert.ok(!all.has(deleted));
  assert.equal(all.get(changed), sha256(changed));
  assert.equal(all.get(copy), sha256(files[4]!));
  for (const p of [fresh!, changed]) {
    const hits = await store.search(await embedQuery(model, [{ sign: 1, kind: 'image', value: p }]), 3);
    assert.equal(hits[0]!.id, p);
    assert.ok(hits[0]!.score > 0.9999);
  }
  const [orig, dup] = await store.get([files[4]!, copy]);
  assert.deepEqual(Array.from(dup!.vector), Array.from(orig!.vector));
  const twins = await store.get([twinA!, twinB]);
  assert.equal(twins.length, 2);
  assert.deepEqual(Array.from(twins[0]!.vector), Array.from(twins[1]!.vector));

  const s3 = await indexFolders(model, store, [dir], { batchSize: 8 });
  assert.deepEqual({ embedded: s3.embedded, reused: s3.reused, deleted: s3.deleted, unchanged: s3.unchanged }, { embedded: 0, reused: 0, deleted: 0, unchanged: 33 });
  await store.close();
}

test('index is incremental (LanceStore): new, changed, deleted, touched, copied and bad files', { skip: SKIP_FIXTURES }, () => incremental('lance'));
test('index is incremental (ExactStore)', { skip: SKIP_FIXTURES }, () => incremental('exact'));

test('LanceStore.optimize: index from 5000 rows, retrained when the rows double, one index left', async () => {
  const dim = 16;
  const store = await LanceStore.open(join(TMP, 'retrain-db'), { dim });
  const add = (from: number, n: number) => store.upsert(Array.from({ length: n }, (_, i) => record(`p${from + i}`, unit(dim, from + i))), { assumeNew: true });
  await add(0, 4999);
  await store.optimize();
  assert.deepEqual(await store.vectorIndexes(), [], 'no index below the threshold');
  await add(4999, 1);
  await store.optimize();
  assert.deepEqual(await store.vectorIndexes(), ['vector_ivfrq_p2']);
  await add(5000, 3000);
  await store.optimize(); // 8000 rows want 2 partitions: the index is extended, not retrained
  assert.deepEqual(await store.vectorIndexes(), ['vector_ivfrq_p2']);
  await add(8000, 8400);
  await store.optimize(); // 16400 rows want 5 >= 2 x 2 partitions
  assert.deepEqual(await store.vectorIndexes(), ['vector_ivfrq_p5']);
  assert.equal((await store.search(unit(dim, 12345), 1))[0]!.id, 'p12345');
  await store.close();
});

test('LanceStore ANN (4-bit IVF_RQ): recall@10 >= 0.95 against exact search on 50k x 512 clustered vectors', async (t) => {
  const n = 50_000;
  const dim = 512;
  const gen = new ClusteredVectors(dim, { seed: 42 });
  const data = gen.sample(n, 1);
  const queries = gen.sample(100, 2);
  const store = await LanceStore.open(join(TMP, 'ann-db'), { dim });
  let t0 = Date.now();
  await store.upsert(Array.from({ length: n }, (_, i) => record(`v${i}`, data.subarray(i * dim, (i + 1) * dim))), { assumeNew: true });
  const insertMs = Date.now() - t0;
  t0 = Date.now();
  await store.optimize(); // what the indexer calls: builds the index past the threshold
  const buildMs = Date.now() - t0;
  assert.equal((await store.vectorIndexes()).length, 1);
  let found = 0;
  let searchMs = 0;
  for (let qi = 0; qi < 100; qi++) {
    const q = queries.subarray(qi * dim, (qi + 1) * dim);
    const top = new TopK(10);
    for (let i = 0; i < n; i++) top.push(dotRow(q, data, i), i);
    const truth = new Set(top.items.map((i) => `v${i}`));
    const s0 = performance.now();
    const hits = await store.search(q, 10);
    searchMs += performance.now() - s0;
    found += hits.filter((h) => truth.has(h.id)).length;
    // Refinement re-ranks on the stored floats, so scores are exact, not quantized estimates.
    const exactScore = top.scores[0]!;
    if (hits[0]!.id === `v${top.items[0]}`) assert.ok(Math.abs(hits[0]!.score - exactScore) < 1e-4);
  }
  const recall = found / 1000;
  t.diagnostic(`insert ${insertMs} ms, optimize+index ${buildMs} ms, ${(searchMs / 100).toFixed(1)} ms/query, recall@10 ${recall}`);
  assert.ok(recall >= 0.95, `recall@10 ${recall}`);
  await store.close();
});
