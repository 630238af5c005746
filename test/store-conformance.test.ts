// One suite, the same assertions, for every VectorStore backend: the exact store, LanceDB, and Postgres +
// pgvector (PGlite over its wire protocol here; a real server too when CLIP_TEST_PG_URL is set — give it a
// scratch database: each case drops the clip_* tables in it). Small data, so every backend's answer must equal
// brute force exactly (an HNSW graph of a few hundred rows at ef_search 100 visits them all).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ExactStore } from '../src/search/exact-store.js';
import { LanceStore } from '../src/search/lance-store.js';
import { openStore } from '../src/search/open.js';
import { PgvectorStore, SCHEMA_VERSION } from '../src/search/pg-store.js';
import { matchesFilter, type Filter, type SearchHit, type StoreInfo, type VectorRecord, type VectorStore } from '../src/search/store.js';
import { startPglite, type PgServer } from './pglite.js';

const TMP = mkdtempSync(join(tmpdir(), 'clip-conf-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

function unit(dim: number, seed: number): Float32Array {
  const v = Float32Array.from({ length: dim }, (_, j) => Math.sin(seed * 12.9898 + j * 78.233) * 43758.5453 % 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
const DIM = 16;
const PATHS = ['/p/a', "/p/it's", '/p/50%_off', '/q/ü', '/q/Zebra', '/q/apple', '/r/x\\y'];
function rec(i: number, dim = DIM): VectorRecord {
  const path = `${PATHS[i % PATHS.length]}/${i}`;
  return { id: path, vector: unit(dim, i + 1), meta: { path, size: 1000 + i * 7, mtime: 1.7e12 + i * 0.25, width: 100 + (i % 10) * 50, height: 80 + (i % 3), hash: (i % 5 === 0 ? 'aa' : 'b') + i.toString(16) } };
}
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, j) => s + x * b[j]!, 0);
function brute(rows: VectorRecord[], q: Float32Array, k: number, filter: Filter = []): { id: string; score: number }[] {
  return rows.filter((r) => matchesFilter(r.meta, filter)).map((r) => ({ id: r.id, score: dot(r.vector, q) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1)).slice(0, k);
}
const sorted = <T>(xs: T[], key: (x: T) => string) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
function sameHits(got: SearchHit[], want: { id: string; score: number }[], what: string) {
  assert.deepEqual(got.map((h) => h.id), want.map((h) => h.id), what);
  for (const [i, h] of got.entries()) assert.ok(Math.abs(h.score - want[i]!.score) < 1e-4, `${what}: score ${h.score} vs ${want[i]!.score}`);
}

interface Backend {
  name: string;
  skip?: string | false;
  /** A location no case has used (a new file or folder; for Postgres: the same database, emptied). */
  fresh(): Promise<string>;
  open(loc: string, create?: StoreInfo): Promise<VectorStore>;
}

let n = 0;
const pgBackend = (name: string, url: () => string, skip: string | false): Backend => ({
  name,
  skip,
  async fresh() {
    const c = new pg.Client({ connectionString: url() });
    await c.connect();
    await c.query('DROP TABLE IF EXISTS clip_images, clip_store, clip_schema_version');
    await c.end();
    return url();
  },
  open: (loc, create) => PgvectorStore.open(loc, create),
});
let pglite: PgServer | undefined;
const backends: Backend[] = [
  { name: 'exact', fresh: async () => join(TMP, `s${n++}.clipvec`), open: (loc, create) => ExactStore.open(loc, create) },
  { name: 'lance', fresh: async () => join(TMP, `s${n++}.lance`), open: (loc, create) => LanceStore.open(loc, create) },
  pgBackend('postgres (PGlite)', () => pglite!.url, false),
  pgBackend('postgres (CLIP_TEST_PG_URL)', () => process.env.CLIP_TEST_PG_URL!, process.env.CLIP_TEST_PG_URL ? false : 'CLIP_TEST_PG_URL is not set'),
];

before(async () => {
  pglite = await startPglite();
});
after(() => pglite?.stop());

for (const b of backends) {
  describe(`store conformance: ${b.name}`, { skip: b.skip }, () => {
    test('create records the info; reopening reads it back; a missing index is refused', async () => {
      const loc = await b.fresh();
      await assert.rejects(b.open(loc), /no index/);
      const s = await b.open(loc, { dim: DIM, model: 'm/one' });
      assert.deepEqual(s.info, { dim: DIM, model: 'm/one' });
      assert.equal(await s.count(), 0);
      assert.deepEqual(await s.search(unit(DIM, 1), 5), []);
      await s.close();
      const again = await b.open(loc);
      assert.deepEqual(again.info, { dim: DIM, model: 'm/one' });
      await again.close();
    });

    test('upsert, get, entries, scan round-trip every field and vector bit for bit; upsert replaces by id; delete', async () => {
      const s = await b.open(await b.fresh(), { dim: DIM });
      try {
        const rows = Array.from({ length: 40 }, (_, i) => rec(i));
        await s.upsert(rows.slice(0, 25));
        await s.upsert(rows.slice(25));
        assert.equal(await s.count(), 40);
        const got = sorted(await s.get([rows[3]!.id, rows[30]!.id, 'nope']), (r) => r.id);
        assert.deepEqual(got.map((r) => ({ ...r, vector: Array.from(r.vector) })), sorted([rows[3]!, rows[30]!], (r) => r.id).map((r) => ({ ...r, vector: Array.from(r.vector) })));
        assert.deepEqual(sorted(await all(s.entries()), (e) => e.id), sorted(rows.map((r) => ({ id: r.id, meta: r.meta })), (e) => e.id));
        const scanned = (await all(s.scan())).flat();
        assert.deepEqual(sorted(scanned, (r) => r.id).map((r) => Array.from(r.vector)), sorted(rows, (r) => r.id).map((r) => Array.from(r.vector)));
        // Replace: a changed file keeps its id; the same id twice in one batch: the last one wins.
        const changed = { ...rec(5), vector: unit(DIM, 999), meta: { ...rec(5).meta, width: 7, hash: 'ff' } };
        await s.upsert([{ ...changed, meta: { ...changed.meta, width: 1 } }, changed]);
        assert.equal(await s.count(), 40);
        const [r5] = await s.get([changed.id]);
        assert.deepEqual(r5!.meta, changed.meta);
        assert.deepEqual(Array.from(r5!.vector), Array.from(changed.vector));
        await s.delete([rows[0]!.id, rows[1]!.id, 'never-there']);
        assert.equal(await s.count(), 38);
        assert.deepEqual(await s.get([rows[0]!.id]), []);
        await assert.rejects(s.upsert([rec(100, DIM + 1)]), /dims/);
        await assert.rejects(s.search(unit(DIM + 1, 1), 3), /dims/);
      } finally {
        await s.close();
      }
    });

    test('search equals brute force: ids in order and cosine scores; k larger than the store', async () => {
      const s = await b.open(await b.fresh(), { dim: DIM });
      try {
        const rows = Array.from({ length: 300 }, (_, i) => rec(i));
        await s.upsert(rows);
        for (const seed of [7, 1001, 2002]) sameHits(await s.search(unit(DIM, seed), 10), brute(rows, unit(DIM, seed), 10), `query ${seed}`);
        const self = await s.search(rows[42]!.vector, 1);
        assert.equal(self[0]!.id, rows[42]!.id);
        assert.ok(Math.abs(self[0]!.score - 1) < 1e-5);
        const small = rows.slice(0, 4);
        const s2 = await b.open(await b.fresh(), { dim: DIM });
        await s2.upsert(small);
        sameHits(await s2.search(unit(DIM, 3), 10), brute(small, unit(DIM, 3), 10), 'k > rows');
        await s2.close();
      } finally {
        await s.close();
      }
    });

    test('k above 1000 (pgvector\'s largest ef_search) still returns k rows in order', async () => {
      const s = await b.open(await b.fresh(), { dim: 4 });
      try {
        const rows = Array.from({ length: 1300 }, (_, i) => rec(i, 4));
        await s.upsert(rows);
        const hits = await s.search(unit(4, 5), 1200);
        assert.equal(hits.length, 1200);
        assert.deepEqual(hits.map((h) => h.id).slice(0, 50), brute(rows, unit(4, 5), 50).map((h) => h.id));
        assert.ok(hits.every((h, i) => i === 0 || hits[i - 1]!.score >= h.score - 1e-6), 'scores descend');
      } finally {
        await s.close();
      }
    });

    test('filters: every operator, on numbers and strings (quotes, %, _, backslash, non-ASCII), equal brute force', async () => {
      const s = await b.open(await b.fresh(), { dim: DIM });
      try {
        const rows = Array.from({ length: 200 }, (_, i) => rec(i));
        await s.upsert(rows);
        const filters: Filter[] = [
          [{ field: 'width', op: '>=', value: 300 }],
          [{ field: 'width', op: '<', value: 200 }, { field: 'height', op: '=', value: 81 }],
          [{ field: 'height', op: '!=', value: 80 }],
          [{ field: 'size', op: '<=', value: 1100 }],
          [{ field: 'mtime', op: '>', value: 1.7e12 + 30.1 }],
          [{ field: 'path', op: 'prefix', value: "/p/it's" }],
          [{ field: 'path', op: 'prefix', value: '/p/50%_' }],
          [{ field: 'path', op: 'prefix', value: '/p/5_%' }], // wildcards are literal: matches nothing
          [{ field: 'path', op: 'prefix', value: '/r/x\\' }],
          [{ field: 'path', op: '>', value: '/q/Zebra' }], // code point order: 'a' and 'ü' sort after 'Z'
          [{ field: 'path', op: '<', value: '/q/ü' }, { field: 'path', op: '>=', value: '/q/' }],
          [{ field: 'hash', op: 'prefix', value: 'aa' }],
          [{ field: 'hash', op: '=', value: 'b7' }],
          [{ field: 'path', op: '=', value: "x' OR '1'='1" }], // a value is only ever a value
        ];
        for (const f of filters) {
          const want = brute(rows, unit(DIM, 77), 8, f);
          sameHits(await s.search(unit(DIM, 77), 8, f), want, JSON.stringify(f));
        }
        assert.equal(await s.count(), 200);
        await assert.rejects(s.search(unit(DIM, 1), 3, [{ field: 'width', op: 'prefix', value: 3 }]), /prefix/);
      } finally {
        await s.close();
      }
    });

    test('a second handle (as another process would) sees committed writes', async () => {
      const loc = await b.fresh();
      const w = await b.open(loc, { dim: DIM });
      await w.upsert([rec(1), rec(2)]);
      const r = await b.open(loc);
      try {
        assert.equal(await r.count(), 2);
        await w.upsert([rec(3)]);
        // The exact store applies other writers' frames when it reads; the others read the shared table.
        const hits = await r.search(rec(3).vector, 1);
        assert.equal(hits[0]!.id, rec(3).id);
      } finally {
        await w.close();
        await r.close();
      }
    });
  });
}

describe('PgvectorStore specifics (PGlite)', () => {
  const url = () => pglite!.url;
  const fresh = backends[2]!.fresh;
  const sql = async (q: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: url() });
    await c.connect();
    try {
      return (await c.query(q, params)).rows;
    } finally {
      await c.end();
    }
  };

  test('schema: versioned, HNSW cosine index, unique ids, (content_hash, model) indexed; a newer schema is refused', async () => {
    const s = await openStore(await fresh(), { create: { dim: DIM, model: 'm' } });
    assert.equal(s.kind, 'postgres');
    await s.upsert([rec(1)]);
    await s.close();
    assert.deepEqual((await sql('SELECT version FROM clip_schema_version')).map((r) => r.version), [SCHEMA_VERSION]);
    const idx = (await sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'clip_images'")).map((r) => r.indexdef as string);
    assert.ok(idx.some((d) => /USING hnsw \(embedding vector_cosine_ops\)/.test(d)), idx.join('\n'));
    assert.ok(idx.some((d) => /UNIQUE INDEX clip_images_pkey .*\(id\)/.test(d)), idx.join('\n'));
    assert.ok(idx.some((d) => /\(content_hash, model\)/.test(d)), idx.join('\n'));
    assert.deepEqual(await sql('SELECT model FROM clip_images'), [{ model: 'm' }]);
    // A second open (e.g. a replica starting) migrates nothing and keeps the rows.
    const again = await openStore(url());
    assert.equal(await again.count(), 1);
    await again.close();
    await sql('INSERT INTO clip_schema_version (version) VALUES ($1)', [SCHEMA_VERSION + 1]);
    await assert.rejects(openStore(url()), new RegExp(`schema is version ${SCHEMA_VERSION + 1}, newer`));
  });

  test('embeddings wider than 2000 dims are indexed as halfvec and still searchable', async () => {
    const D = 2048;
    const s = await PgvectorStore.open(await fresh(), { dim: D });
    try {
      const rows = Array.from({ length: 20 }, (_, i) => rec(i, D));
      await s.upsert(rows);
      const idx = (await sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'clip_images_hnsw'"))[0].indexdef as string;
      assert.match(idx, /halfvec_cosine_ops/);
      const hits = await s.search(rows[4]!.vector, 3);
      assert.equal(hits[0]!.id, rows[4]!.id);
      assert.ok(Math.abs(hits[0]!.score - 1) < 1e-3); // halfvec: ~3 significant digits
      assert.deepEqual(Array.from((await s.get([rows[4]!.id]))[0]!.vector), Array.from(rows[4]!.vector)); // stored as float32
    } finally {
      await s.close();
    }
  });

  test('errors: no pgvector on the server, unreachable server; the password never appears', async () => {
    const bare = await startPglite({ vector: false });
    try {
      const withPw = bare.url.replace('postgres:postgres@', 'postgres:s3cret@');
      const e = await PgvectorStore.open(withPw, { dim: 4 }).then(() => undefined, (x: Error) => x);
      assert.match(String(e?.message), /no pgvector extension/);
      assert.doesNotMatch(String(e?.message), /s3cret/);
    } finally {
      await bare.stop();
    }
    const e2 = await PgvectorStore.open('postgres://u:s3cret@127.0.0.1:1/db', { dim: 4 }).then(() => undefined, (x: Error) => x);
    assert.match(String(e2?.message), /cannot connect/);
    assert.doesNotMatch(String(e2?.message), /s3cret/);
  });
});
