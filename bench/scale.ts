// One-off measurement for docs/scale.md: the same clustered vectors into Postgres + pgvector (PGlite behind
// pglite-server, HNSW m 16 / ef_construction 64, ef_search 100) and LanceDB (IVF_RQ, the default store), in
// one run: upsert rows/s, query p50/p99, recall@10 against exact search. Not a test.
//   node dist/bench/scale.js [--n 100000] [--dim 512] [--queries 200] [--pg-live 5000] [--url postgres://...]
// Postgres: the first --pg-live rows are upserted with the HNSW index kept up to date (what workers see: the
// upsert rate); the rest are loaded without it and the index is built once (PGlite's WASM HNSW inserts are too
// slow to load 100k rows one by one on a loaded 2-core machine), then the same queries run.
// --url measures a real Postgres server instead of starting PGlite (its clip_* tables are dropped first).
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ExactStore } from '../src/search/exact-store.js';
import { LanceStore } from '../src/search/lance-store.js';
import { PgvectorStore } from '../src/search/pg-store.js';
import type { VectorRecord, VectorStore } from '../src/search/store.js';
import { ClusteredVectors } from '../src/search/synthetic.js';
import { startPglite } from '../test/pglite.js';

const { values } = parseArgs({ options: { 'pg-live': { type: 'string', default: '5000' }, n: { type: 'string', default: '100000' }, dim: { type: 'string', default: '512' }, queries: { type: 'string', default: '200' }, url: { type: 'string' } } });
const N = Number(values.n);
const D = Number(values.dim);
const Q = Number(values.queries);
const BATCH = 1000;
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

const gen = new ClusteredVectors(D);
const data = gen.sample(N, 1);
const queries = gen.sample(Q, 999);
const row = (m: Float32Array, i: number) => m.subarray(i * D, (i + 1) * D);
const rec = (i: number): VectorRecord => {
  const id = `/bench/${String(i).padStart(7, '0')}.jpg`;
  return { id, vector: row(data, i), meta: { path: id, size: 1000 + i, mtime: 1.7e12 + i, width: 640, height: 480, hash: i.toString(16) } };
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function load(store: VectorStore, assumeNew: boolean, from = 0, to = N, batch = BATCH): Promise<number> {
  const t0 = performance.now();
  for (let s = from; s < to; s += batch) {
    await store.upsert(Array.from({ length: Math.min(batch, to - s) }, (_, j) => rec(s + j)), { assumeNew });
    if (((s - from) / batch) % 20 === 19) log(`  ${s + batch} rows, ${((s - from + batch) / ((performance.now() - t0) / 1000)).toFixed(0)} rows/s`);
  }
  return (to - from) / ((performance.now() - t0) / 1000);
}

async function queryAll(store: VectorStore, truth: string[][]): Promise<{ p50: number; p99: number; recall: number }> {
  for (let i = 0; i < 10; i++) await store.search(row(queries, i), 10); // warm-up
  const times: number[] = [];
  let hit = 0;
  for (let i = 0; i < Q; i++) {
    const t0 = performance.now();
    const hits = await store.search(row(queries, i), 10);
    times.push(performance.now() - t0);
    const want = new Set(truth[i]);
    hit += hits.filter((h) => want.has(h.id)).length;
  }
  return { p50: pct(times, 50), p99: pct(times, 99), recall: hit / (Q * 10) };
}

log(`${N} x ${D}, ${Q} queries, ${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(1)}`);
const exact = ExactStore.memory({ dim: D }, N);
for (let s = 0; s < N; s += 10_000) await exact.upsert(Array.from({ length: Math.min(10_000, N - s) }, (_, j) => rec(s + j)));
const truth: string[][] = [];
for (let i = 0; i < Q; i++) truth.push((await exact.search(row(queries, i), 10)).map((h) => h.id));
log('exact ground truth done');

const results: Record<string, unknown> = { n: N, dim: D, queries: Q, cores: availableParallelism(), loadAvg1m: loadavg()[0] };
const tmp = mkdtempSync(join(tmpdir(), 'clip-scale-'));
try {
  // LanceDB: bulk append, then the IVF_RQ index (as `clip index` + optimize does).
  const lance = await LanceStore.open(join(tmp, 'l.lance'), { dim: D });
  const lRate = await load(lance, true);
  const ti = performance.now();
  await lance.buildIndex();
  const lIndexS = (performance.now() - ti) / 1000;
  const lq = await queryAll(lance, truth);
  await lance.close();
  results.lance = { upsertRowsPerS: Math.round(lRate), indexBuildS: +lIndexS.toFixed(1), p50Ms: +lq.p50.toFixed(2), p99Ms: +lq.p99.toFixed(2), recallAt10: lq.recall };
  log(`lance: ${JSON.stringify(results.lance)}`);

  // Postgres: upserts into a table whose HNSW index is maintained on every insert (as workers write).
  const server = values.url ? undefined : await startPglite();
  const url = values.url ?? server!.url;
  try {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('DROP TABLE IF EXISTS clip_images, clip_store, clip_schema_version');
    await c.end();
    const store = await PgvectorStore.open(url, { dim: D });
    const live = Math.min(N, Number(values['pg-live']));
    // Batches of 100 here: a worker's batch is 16-64 images; 1000-row transactions would hide nothing but latency.
    const pRate = await load(store, false, 0, live, 100);
    log(`postgres: ${live} rows with HNSW maintained: ${pRate.toFixed(0)} rows/s (load ${loadavg()[0]!.toFixed(1)})`);
    let bulk: Record<string, number> = {};
    if (live < N) {
      await store.dropIndex();
      const bRate = await load(store, false, live, N);
      const tb = performance.now();
      await store.buildIndex();
      const buildS = (performance.now() - tb) / 1000;
      bulk = { bulkRowsPerSNoIndex: Math.round(bRate), indexBuildS: +buildS.toFixed(1) };
      log(`postgres: bulk ${JSON.stringify(bulk)} (load ${loadavg()[0]!.toFixed(1)})`);
    }
    await store.optimize();
    const pq = await queryAll(store, truth);
    await store.close();
    results.postgres = { server: values.url ? 'postgres' : 'pglite', upsertRowsPerS: Math.round(pRate), upsertRowsMeasured: live, ...bulk, p50Ms: +pq.p50.toFixed(2), p99Ms: +pq.p99.toFixed(2), recallAt10: pq.recall, efSearch: 100 };
    log(`postgres: ${JSON.stringify(results.postgres)}`);
  } finally {
    await server?.stop();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
results.loadAvgEnd = loadavg();
process.stdout.write(JSON.stringify(results) + '\n');
