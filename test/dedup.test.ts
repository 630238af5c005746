// `clip dedup` on every store: crafted duplicates (a byte copy, a resized JPEG, a downscaled PNG, a
// re-encoded JPEG) are grouped with their originals, distinct photos are not; --exact finds only the byte copy;
// --delete removes all but the kept file of each group, and never a file changed since it was indexed.
// The grouping itself (union-find over k-NN edges, --limit) is also checked on crafted vectors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import pg from 'pg';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { startPglite, type PgServer } from './pglite.js';
import { ExactStore } from '../src/search/exact-store.js';
import { LanceStore } from '../src/search/lance-store.js';
import { PgvectorStore } from '../src/search/pg-store.js';
import { findDuplicates } from '../src/search/dedup.js';
import type { VectorRecord, VectorStore } from '../src/search/store.js';

const run = promisify(execFile);
const MODEL = fixture('hf-clip-tiny');
// The tiny test model has random weights: distinct photos reach cosine 0.977 with it, resized and re-encoded
// copies 0.999+, so the tests use 0.99 (a trained CLIP separates them at the default 0.95).
const THRESHOLD = '0.99';
let tmp = '';
let photos = '';
let pglite: PgServer | undefined;
let records: VectorRecord[] = [];

before(async () => {
  if (SKIP_FIXTURES) return;
  tmp = mkdtempSync(join(tmpdir(), 'clip-dedup-'));
  photos = join(tmp, 'photos');
  mkdirSync(photos);
  const img = (f: string) => fixture('common', 'images', f);
  for (const f of ['astronaut.png', 'chelsea.png', 'coffee.png', 'horse.png', 'camera.png', 'rocket.png']) copyFileSync(img(f), join(photos, f));
  copyFileSync(img('astronaut.png'), join(photos, 'astronaut-copy.png'));
  await sharp(img('astronaut.png')).resize(256).jpeg({ quality: 70 }).toFile(join(photos, 'astronaut-small.jpg'));
  await sharp(img('chelsea.png')).resize(200).png().toFile(join(photos, 'chelsea-small.png'));
  await sharp(img('coffee.png')).jpeg({ quality: 60 }).toFile(join(photos, 'coffee-q60.jpg'));
  // One index built by the CLI; the other stores get the same rows (the dedup pass reads only the store).
  const db = join(tmp, 'ref.clipvec');
  await run(process.execPath, [CLIP_BIN, 'index', photos, '--db', db, '--model', MODEL, '--no-cache']);
  const ref = await ExactStore.open(db);
  for await (const b of ref.scan()) records.push(...b);
  await ref.close();
  pglite = await startPglite();
});
after(async () => {
  await pglite?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const p = (f: string) => join(photos, f);
interface Out { groups: { kind: string; members: { path: string; action: string; exact: boolean; similarity: number }[] }[]; rows: number; examined: number; removed?: { path: string }[]; skipped?: { path: string; reason: string }[] }
async function dedup(db: string, ...args: string[]): Promise<Out> {
  const { stdout } = await run(process.execPath, [CLIP_BIN, 'dedup', '--db', db, '--json', ...args]);
  return JSON.parse(stdout);
}
const shape = (o: Out) => o.groups.map((g) => [g.kind, g.members.map((m) => `${m.action}:${m.path.slice(photos.length + 1)}`)]);

const stores: { name: string; make(): Promise<string> }[] = [
  {
    name: 'exact',
    async make() {
      const loc = join(tmp, `d${Math.random().toString(16).slice(2)}.clipvec`);
      const s = await ExactStore.open(loc, { dim: records[0]!.vector.length });
      await s.upsert(records);
      await s.close();
      return loc;
    },
  },
  {
    name: 'lance',
    async make() {
      const loc = join(tmp, `d${Math.random().toString(16).slice(2)}.lance`);
      const s = await LanceStore.open(loc, { dim: records[0]!.vector.length });
      await s.upsert(records);
      await s.close();
      return loc;
    },
  },
  {
    name: 'postgres (PGlite)',
    async make() {
      const c = new pg.Client({ connectionString: pglite!.url });
      await c.connect();
      await c.query('DROP TABLE IF EXISTS clip_images, clip_store, clip_schema_version');
      await c.end();
      const s = await PgvectorStore.open(pglite!.url, { dim: records[0]!.vector.length });
      await s.upsert(records);
      await s.close();
      return pglite!.url;
    },
  },
];

for (const st of stores) {
  describe(`clip dedup on ${st.name}`, { skip: SKIP_FIXTURES }, () => {
    test('groups the byte copy and the resized / re-encoded copies with their originals, and nothing else', { timeout: 120_000 }, async () => {
      const db = await st.make();
      const out = await dedup(db, '--threshold', THRESHOLD);
      assert.equal(out.rows, 10);
      assert.equal(out.examined, 10);
      // Kept: the most pixels, then the largest file (the PNG original over its byte copy: same size, older).
      assert.deepEqual(shape(out), [
        ['near', ['keep:astronaut.png', 'would remove:astronaut-copy.png', 'would remove:astronaut-small.jpg']],
        ['near', ['keep:chelsea.png', 'would remove:chelsea-small.png']],
        ['near', ['keep:coffee.png', 'would remove:coffee-q60.jpg']],
      ]);
      const astro = out.groups[0]!.members;
      assert.equal(astro[1]!.exact, true);
      assert.equal(astro[2]!.exact, false);
      assert.ok(astro[2]!.similarity >= 0.99 && astro[2]!.similarity < 1, `similarity ${astro[2]!.similarity}`);

      // Identical bytes only: the one copy.
      assert.deepEqual(shape(await dedup(db, '--exact')), [['exact', ['keep:astronaut.png', 'would remove:astronaut-copy.png']]]);
      // Nothing was deleted by looking.
      for (const f of ['astronaut-copy.png', 'astronaut-small.jpg', 'chelsea-small.png', 'coffee-q60.jpg']) assert.ok(existsSync(p(f)), f);
    });
  });
}

test('clip dedup --delete removes all but the kept file of each group, with their rows, and leaves a file changed since indexing', { skip: SKIP_FIXTURES, timeout: 120_000 }, async () => {
  const db = await stores[0]!.make();
  // Work on copies of the files, so the other tests keep theirs.
  const dir = join(tmp, 'del');
  mkdirSync(dir);
  const moved = records.map((r) => {
    const path = join(dir, r.meta.path.slice(photos.length + 1));
    copyFileSync(r.meta.path, path);
    return { ...r, id: path, meta: { ...r.meta, path } };
  });
  const s = await ExactStore.open(db);
  await s.delete(records.map((r) => r.id));
  await s.upsert(moved);
  await s.close();
  writeFileSync(join(dir, 'coffee-q60.jpg'), 'edited since indexing'); // its row is stale: not to be deleted on its say

  const res = await run(process.execPath, [CLIP_BIN, 'dedup', '--db', db, '--threshold', THRESHOLD, '--delete', '--json']).catch((e) => e);
  assert.equal(res.code, 3, 'a group member left alone makes the exit code 3');
  const out: Out = JSON.parse(res.stdout);
  assert.deepEqual(out.removed!.map((r) => r.path).sort(), ['astronaut-copy.png', 'astronaut-small.jpg', 'chelsea-small.png'].map((f) => join(dir, f)));
  assert.deepEqual(out.skipped!.map((r) => r.path), [join(dir, 'coffee-q60.jpg')]);
  assert.match(out.skipped![0]!.reason, /changed since it was indexed/);
  assert.match(res.stderr, /left .*coffee-q60\.jpg: changed since it was indexed/);
  for (const f of ['astronaut.png', 'chelsea.png', 'coffee.png', 'coffee-q60.jpg', 'horse.png']) assert.ok(existsSync(join(dir, f)), `${f} kept`);
  for (const f of ['astronaut-copy.png', 'astronaut-small.jpg', 'chelsea-small.png']) assert.ok(!existsSync(join(dir, f)), `${f} deleted`);
  const after = await ExactStore.open(db);
  assert.equal(await after.count(), 7);
  await after.close();
  // What is left: the stale coffee copy only, still listed (and still left alone).
  const left = await dedup(db, '--threshold', THRESHOLD);
  assert.deepEqual(left.groups.map((g) => g.members.map((m) => `${m.action}:${m.path}`)), [[`keep:${join(dir, 'coffee.png')}`, `would remove:${join(dir, 'coffee-q60.jpg')}`]]);
});

describe('findDuplicates: grouping', () => {
  const unit = (xs: number[]) => {
    const n = Math.hypot(...xs);
    return Float32Array.from(xs, (x) => x / n);
  };
  const meta = (i: number, w = 100) => ({ path: `/x/${i}`, size: 100 + i, mtime: 1000 + i, width: w, height: w, hash: `h${i}` });
  async function store(vecs: Float32Array[], hashes: Record<number, string> = {}): Promise<VectorStore> {
    const s = ExactStore.memory({ dim: vecs[0]!.length });
    await s.upsert(vecs.map((v, i) => ({ id: `/x/${i}`, vector: v, meta: { ...meta(i, 100 + i), hash: hashes[i] ?? `h${i}` } })));
    return s;
  }
  // A chain 0 ~ 1 ~ 2 (cos 0.96 each step, 0 and 2 only 0.85), 3 alone, 4 and 5 byte-identical but far apart
  // in embedding space (a store cannot tell: the hash decides).
  const a = (deg: number) => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180), 0, 0];
  const vecs = [unit(a(0)), unit(a(16)), unit(a(32)), unit([0, 0, 1, 0]), unit([0, 0, 0, 1]), unit([0, 0, -1, 0.2])];

  test('single linkage through neighbours, identical bytes by hash, the kept member by the rule', async () => {
    const s = await store(vecs, { 4: 'same', 5: 'same' });
    const r = await findDuplicates(s, { threshold: 0.95 });
    assert.deepEqual(r.groups.map((g) => [g.kind, g.members.map((m) => m.id)]), [
      ['exact', ['/x/5', '/x/4']], // largest: 5 has more pixels
      ['near', ['/x/2', '/x/1', '/x/0']], // kept 2 (largest); 1 is nearer to it than 0
    ]);
    const chain = r.groups[1]!.members;
    assert.ok(Math.abs(chain[2]!.similarity - Math.cos((32 * Math.PI) / 180)) < 1e-6, 'similarity is to the kept member, below the threshold here');
    const oldest = await findDuplicates(s, { threshold: 0.95, keep: 'oldest' });
    assert.equal(oldest.groups[1]!.members[0]!.id, '/x/0');
    // A threshold above the chain's steps: no near group; --exact alone: the hash group only.
    assert.deepEqual((await findDuplicates(s, { threshold: 0.97 })).groups.map((g) => g.kind), ['exact']);
    assert.deepEqual((await findDuplicates(s, { exactOnly: true })).groups.map((g) => g.kind), ['exact']);
  });

  test('--limit bounds the rows searched; their duplicates are still found anywhere', async () => {
    const s = await store(vecs);
    const r = await findDuplicates(s, { threshold: 0.95, limit: 1 });
    assert.equal(r.examined, 1);
    assert.deepEqual(r.groups.map((g) => g.members.map((m) => m.id).sort()), [['/x/0', '/x/1']]);
    await assert.rejects(findDuplicates(s, { threshold: 1.5 }), /threshold 1.5/);
    await assert.rejects(findDuplicates(s, { neighbours: 1000 }), /neighbours 1000/);
  });
});
