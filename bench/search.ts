// Query latency of LanceStore (IVF_RQ ANN index) vs exact brute force, at 100k and 1M vectors of dim 512.
//   node dist/bench/search.js [--json] [--sizes 100000,1000000] [--rebuild]
// Tables are built once (generated in batches, seeded) and cached under <bench cache>/search-100k, search-1m;
// a cache directory only counts once its bench-meta.json says the build finished with the same parameters.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExactStore } from '../src/search/exact-store.js';
import { DEFAULT_NPROBES, DEFAULT_REFINE, LanceStore } from '../src/search/lance-store.js';
import type { VectorRecord } from '../src/search/store.js';
import { ClusteredVectors } from '../src/search/synthetic.js';
import { cacheRoot } from './prepare.js';

export interface SearchBenchOptions {
  sizes?: number[];
  dim?: number;
  /** Timed ANN queries per size (after 10 warm-up queries). */
  queries?: number;
  /** Timed exact queries per size (each scans every vector, so fewer). */
  exactQueries?: number;
  /** Parent of the cached tables (default: <CLIP_CACHE | XDG_CACHE_HOME/clip-ts | ~/.cache/clip-ts>/bench). */
  cacheDir?: string;
  rebuild?: boolean;
  log?: (msg: string) => void;
}

export interface Latency {
  queries: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

export interface SizeResult {
  n: number;
  dim: number;
  table: string;
  /** False when the table was built by this run; the build times are then this run's. */
  cached: boolean;
  generateInsertS?: number;
  indexS?: number;
  ann: Latency & { recallAt10: number };
  exact: Latency & { loadS: number };
}

export interface SearchBenchResult {
  sizes: SizeResult[];
  nprobes: number;
  refineFactor: number;
  cores: number;
  loadAvg: number;
}

const BATCH = 50_000;
const SEED = 1;
const QUERY_SEED = 999;
const label = (n: number) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}m` : `${Math.round(n / 1e3)}k`);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function latency(ms: number[]): Latency {
  const s = [...ms].sort((a, b) => a - b);
  return { queries: ms.length, p50Ms: percentile(s, 50), p99Ms: percentile(s, 99), meanMs: ms.reduce((a, b) => a + b, 0) / ms.length };
}

/** Rows [start, start+count) of the data set: batch b always comes from seed SEED+b, so any batch can be regenerated. */
function batchRecords(gen: ClusteredVectors, b: number, n: number): VectorRecord[] {
  const count = Math.min(BATCH, n - b * BATCH);
  const data = gen.sample(count, SEED + 1 + b);
  return Array.from({ length: count }, (_, i) => {
    const id = `v${b * BATCH + i}`;
    return { id, vector: data.subarray(i * gen.dim, (i + 1) * gen.dim), meta: { path: id, size: 0, mtime: 0, width: 0, height: 0, hash: id } };
  });
}

/** Build (or reuse) the cached table for n vectors; returns its path and, when built now, the timings. */
async function ensureTable(n: number, dim: number, dir: string, rebuild: boolean, log: (m: string) => void) {
  const table = join(dir, `search-${label(n)}`);
  const metaPath = join(table, 'bench-meta.json');
  const want = { n, dim, seed: SEED, batch: BATCH, generator: 'clustered-1000-spread1', index: 'ivfrq4', v: 2 };
  if (!rebuild && existsSync(metaPath) && readFileSync(metaPath, 'utf8') === JSON.stringify(want)) return { table, cached: true };
  // Build next to the target and rename at the end: a killed build never leaves a table that looks complete.
  const tmp = `${table}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const gen = new ClusteredVectors(dim, { seed: SEED });
  const store = await LanceStore.open(tmp, { dim, model: 'synthetic' });
  let t0 = performance.now();
  for (let b = 0; b * BATCH < n; b++) {
    await store.upsert(batchRecords(gen, b, n), { assumeNew: true });
    log(`search bench: ${label(n)}: inserted ${Math.min(n, (b + 1) * BATCH)} / ${n}`);
  }
  const generateInsertS = (performance.now() - t0) / 1000;
  log(`search bench: ${label(n)}: training the IVF_RQ index`);
  t0 = performance.now();
  await store.buildIndex();
  const indexS = (performance.now() - t0) / 1000;
  await store.close();
  writeFileSync(join(tmp, 'bench-meta.json'), JSON.stringify(want));
  rmSync(table, { recursive: true, force: true });
  renameSync(tmp, table);
  return { table, cached: false, generateInsertS, indexS };
}

export async function runSearchBench(opts: SearchBenchOptions = {}): Promise<SearchBenchResult> {
  const sizes = opts.sizes ?? [100_000, 1_000_000];
  const dim = opts.dim ?? 512;
  const nq = opts.queries ?? 200;
  const nExact = opts.exactQueries ?? 20;
  const dir = opts.cacheDir ?? join(cacheRoot(), 'bench');
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const nprobes = DEFAULT_NPROBES;
  const refineFactor = DEFAULT_REFINE;
  const out: SizeResult[] = [];
  for (const n of sizes) {
    const built = await ensureTable(n, dim, dir, opts.rebuild ?? false, log);
    const gen = new ClusteredVectors(dim, { seed: SEED });
    const queries = gen.sample(nq + 10, QUERY_SEED);
    const q = (i: number) => queries.subarray(i * dim, (i + 1) * dim);

    const store = await LanceStore.open(built.table, undefined, { nprobes, refineFactor });
    for (let i = 0; i < 10; i++) await store.search(q(nq + i), 10); // warm-up: index and data pages into cache
    const annMs: number[] = [];
    const annIds: string[][] = [];
    for (let i = 0; i < nq; i++) {
      const t0 = performance.now();
      const hits = await store.search(q(i), 10);
      annMs.push(performance.now() - t0);
      annIds.push(hits.map((h) => h.id));
    }

    // Exact: the same vectors, read back from the table into an in-memory ExactStore (the product's
    // brute-force path).
    log(`search bench: ${label(n)}: loading ${n} vectors for exact search`);
    let t0 = performance.now();
    const exact = ExactStore.memory({ dim }, n);
    for await (const recs of store.scan()) await exact.upsert(recs);
    await store.close();
    const loadS = (performance.now() - t0) / 1000;
    const exactMs: number[] = [];
    let found = 0;
    for (let i = 0; i < nExact; i++) {
      t0 = performance.now();
      const hits = await exact.search(q(i), 10);
      exactMs.push(performance.now() - t0);
      const truth = new Set(hits.map((h) => h.id));
      found += annIds[i]!.filter((id) => truth.has(id)).length;
    }
    out.push({
      n, dim, table: built.table, cached: built.cached, generateInsertS: built.generateInsertS, indexS: built.indexS,
      ann: { ...latency(annMs), recallAt10: found / (10 * nExact) },
      exact: { ...latency(exactMs), loadS },
    });
  }
  return { sizes: out, nprobes, refineFactor, cores: availableParallelism(), loadAvg: loadavg()[0]! };
}

export function renderSearchBench(r: SearchBenchResult): string {
  const f = (x: number) => x.toFixed(1);
  const lines = [`search latency, dim ${r.sizes[0]?.dim}, k 10 (IVF_RQ 4-bit, nprobes ${r.nprobes}, refine x${r.refineFactor}; ${r.cores} cores, load ${r.loadAvg.toFixed(1)})`];
  for (const s of r.sizes) {
    const build = s.cached ? 'table cached' : `generate+insert ${f(s.generateInsertS!)} s, index ${f(s.indexS!)} s`;
    lines.push(`${label(s.n).padStart(5)}  ANN p50 ${f(s.ann.p50Ms)} ms  p99 ${f(s.ann.p99Ms)} ms  recall@10 ${s.ann.recallAt10.toFixed(3)}  |  ` +
      `exact p50 ${f(s.exact.p50Ms)} ms  p99 ${f(s.exact.p99Ms)} ms  |  ${build}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const sizesArg = args.indexOf('--sizes');
  const r = await runSearchBench({
    sizes: sizesArg >= 0 ? args[sizesArg + 1]!.split(',').map(Number) : undefined,
    rebuild: args.includes('--rebuild'),
  });
  process.stdout.write((args.includes('--json') ? JSON.stringify(r) : renderSearchBench(r)) + '\n');
}
