// LanceDB-backed store: persistent, multi-reader/one-writer safe (every write is one Lance commit, which is
// atomic: data files first, then a manifest that makes them visible), with an IVF_RQ ANN index.
//
// Index: IVF_RQ (RaBitQ codes) with 4 bits per dimension, searched with nprobes 20 and refine factor 5 (the
// 50 best candidates re-ranked on the stored float vectors). Measured on 2 shared cores, 512-dim clustered
// vectors (see bench/search.ts): at 1M, training takes 50-85 s, recall@10 = 1.0, p50 12-15 ms. With 1 bit the
// codes are too coarse (recall@10 0.61 at 1M with refine 5, and 1.0 only at refine 50, p50 ~25 ms);
// IVF_PQ trained ~50x slower and HNSW_SQ ~15x slower for the same recall at 100k.
import type * as LanceDB from '@lancedb/lancedb';
import type { Schema, Table as ArrowTable, Vector } from 'apache-arrow';
import type * as LanceArrow from './lance-arrow.js';
import { checkFilter, META_FIELDS, type Filter, type ImageMeta, type SearchHit, type StoredEntry, type StoreInfo, type UpsertOptions, type VectorRecord, type VectorStore } from './store.js';

const TABLE = 'images';
export const DEFAULT_NPROBES = 20;
export const DEFAULT_REFINE = 5;
/** SQL `IN` lists are chunked: one huge predicate is slow to plan. */
const IN_CHUNK = 1000;

export interface LanceStoreOptions {
  /** Seconds between checks for commits made by other processes; 0 (default): every read sees the latest commit. */
  readConsistencySeconds?: number;
  /** IVF partitions probed per query (default 20). */
  nprobes?: number;
  /** Candidates re-ranked on full vectors = k x refineFactor (default 5). */
  refineFactor?: number;
  /** Rows before optimize() builds the ANN index; below it a flat scan is exact and fast enough (default 5000). */
  indexThreshold?: number;
}

/** A SQL string literal for Lance's DataFusion filters: single quotes doubled, nothing else is special. */
export const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Translate the portable filter into a Lance `where` predicate; field names come from a fixed list. */
export function filterToSql(filter: Filter): string {
  checkFilter(filter);
  return filter.map((c) => {
    const v = typeof c.value === 'string' ? sqlString(c.value) : String(c.value);
    if (c.op === 'prefix') return `starts_with(${c.field}, ${v})`;
    return `${c.field} ${c.op === '!=' ? '<>' : c.op} ${v}`;
  }).join(' AND ');
}

// LanceDB and Arrow are optional peer dependencies (~200 MB of native code): loaded on the first open, so
// `import { ClipModel } from 'clip-ts'` works without them and the exact store needs neither.
let lancedb: typeof LanceDB;
let arrow: typeof LanceArrow;
export async function loadLance(): Promise<void> {
  if (lancedb && arrow) return;
  try {
    lancedb = await import('@lancedb/lancedb');
    arrow = await import('./lance-arrow.js');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new Error(
      'a LanceDB store needs the optional packages @lancedb/lancedb and apache-arrow: `npm i @lancedb/lancedb apache-arrow@18`, ' +
      'or give --db a path ending in .clipvec for the built-in exact store',
    );
  }
}

const inList = (ids: string[]) => `id IN (${ids.map(sqlString).join(', ')})`;
const chunks = <T>(xs: T[], n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

export class LanceStore implements VectorStore {
  readonly kind = 'lance';

  private constructor(
    private readonly db: LanceDB.Connection,
    private readonly table: LanceDB.Table,
    readonly info: StoreInfo,
    private readonly schema: Schema,
    private readonly opts: LanceStoreOptions,
  ) {}

  /** Open the store in directory `dir`, creating it with `create` when it has no table yet. */
  static async open(dir: string, create?: StoreInfo, opts: LanceStoreOptions = {}): Promise<LanceStore> {
    await loadLance();
    const { INFO_KEY, storeSchema } = arrow;
    const db = await lancedb.connect(dir, { readConsistencyInterval: opts.readConsistencySeconds ?? 0 });
    let table: LanceDB.Table;
    if ((await db.tableNames()).includes(TABLE)) table = await db.openTable(TABLE);
    else if (create) table = await db.createEmptyTable(TABLE, storeSchema(create), { mode: 'create', existOk: true });
    else {
      db.close();
      throw new Error(`no index at ${dir}`);
    }
    const raw = (await table.schema()).metadata.get(INFO_KEY);
    if (!raw) throw new Error(`${dir}: table "${TABLE}" was not written by clip-ts`);
    const info: StoreInfo = JSON.parse(raw);
    return new LanceStore(db, table, info, storeSchema(info), opts);
  }

  async upsert(records: VectorRecord[], opts: UpsertOptions = {}): Promise<void> {
    if (!records.length) return;
    for (const r of records) if (r.vector.length !== this.info.dim) throw new Error(`vector has ${r.vector.length} dims, the store ${this.info.dim}`);
    // merge_insert refuses two source rows for one id; the contract (as in the exact store) is: the last one wins.
    if (new Set(records.map((r) => r.id)).size < records.length) records = [...new Map(records.map((r) => [r.id, r])).values()];
    const data = arrow.recordsToTable(records, this.schema);
    // merge_insert keyed on id is a single commit, so a batch with new and changed files lands atomically,
    // and re-sending a batch that already landed (a rerun after a crash) cannot duplicate anything.
    if (opts.assumeNew) await this.table.add(data);
    else await this.table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data);
  }

  async delete(ids: string[]): Promise<void> {
    for (const part of chunks(ids, IN_CHUNK)) await this.table.delete(inList(part));
  }

  async search(query: Float32Array, k: number, filter?: Filter): Promise<SearchHit[]> {
    if (query.length !== this.info.dim) throw new Error(`query has ${query.length} dims, the store ${this.info.dim}`);
    let q = this.table.vectorSearch(query).column('vector').distanceType('cosine')
      .select(['id', ...META_FIELDS, '_distance']).limit(k)
      .nprobes(this.opts.nprobes ?? DEFAULT_NPROBES).refineFactor(this.opts.refineFactor ?? DEFAULT_REFINE);
    if (filter?.length) q = q.where(filterToSql(filter));
    const t = await q.toArrow();
    if (!t.numRows) return []; // an empty result can come back without columns
    const cols = columns(t);
    const dist = t.getChild('_distance')!;
    return Array.from({ length: t.numRows }, (_, i) => ({ id: cols.id.get(i) as string, score: 1 - Number(dist.get(i)), meta: arrow.metaAt(cols, i) }));
  }

  count(): Promise<number> {
    return this.table.countRows();
  }

  async *entries(): AsyncIterable<StoredEntry> {
    for await (const batch of this.table.query().select(['id', ...META_FIELDS])) {
      if (!batch.numRows) continue;
      const cols = columns(batch);
      for (let i = 0; i < batch.numRows; i++) yield { id: cols.id.get(i) as string, meta: arrow.metaAt(cols, i) };
    }
  }

  async *scan(): AsyncIterable<VectorRecord[]> {
    for await (const batch of this.table.query().select(['id', 'vector', ...META_FIELDS])) {
      if (!batch.numRows) continue;
      const cols = columns(batch);
      const vec = batch.getChild('vector')!;
      yield Array.from({ length: batch.numRows }, (_, i) => ({ id: cols.id.get(i) as string, vector: vec.get(i).toArray() as Float32Array, meta: arrow.metaAt(cols, i) }));
    }
  }

  async get(ids: string[]): Promise<VectorRecord[]> {
    const out: VectorRecord[] = [];
    for (const part of chunks(ids, IN_CHUNK)) {
      const t = await this.table.query().where(inList(part)).select(['id', 'vector', ...META_FIELDS]).toArrow();
      if (!t.numRows) continue;
      const cols = columns(t);
      const vec = t.getChild('vector')!;
      for (let i = 0; i < t.numRows; i++) {
        out.push({ id: cols.id.get(i) as string, vector: Float32Array.from(vec.get(i).toArray() as Float32Array), meta: arrow.metaAt(cols, i) });
      }
    }
    return out;
  }

  /**
   * Build the ANN index once the table is big enough; retrain it when the rows have doubled since training
   * (so retraining costs O(n) amortized), otherwise fold new rows into it; then compact the small fragments
   * that one commit per batch leaves. Each step is its own commit: an interrupted optimize leaves a valid table.
   */
  async optimize(): Promise<void> {
    const rows = await this.table.countRows();
    const vecIndices = (await this.table.listIndices()).filter((i) => i.columns.includes('vector'));
    // Our index names carry their partition count; an index we did not name is left alone.
    const trained = Math.max(0, ...vecIndices.map((i) => Number(/^vector_ivfrq_p(\d+)$/.exec(i.name)?.[1] ?? Infinity)));
    const want = partitionsFor(rows);
    if (rows >= (this.opts.indexThreshold ?? 5000) && (!vecIndices.length || want >= 2 * trained)) {
      await this.buildIndex(want);
      for (const old of vecIndices) if (old.name !== indexName(want)) await this.table.dropIndex(old.name);
    } else if (vecIndices.length > 1 && Number.isFinite(trained)) {
      // A retrain killed between creating the new index and dropping the old one: with two vector indexes
      // Lance falls back to a flat scan, so keep only the newest (largest) one.
      const keep = indexName(trained);
      for (const old of vecIndices) if (old.name !== keep) await this.table.dropIndex(old.name);
    }
    // Versions older than a few minutes are dropped; readers hold a version only for the length of a query.
    await this.table.optimize({ cleanupOlderThan: new Date(Date.now() - 5 * 60_000) });
  }

  /** Train the IVF_RQ index now (bench and tests call this directly to time it). */
  async buildIndex(partitions?: number): Promise<void> {
    partitions ??= partitionsFor(await this.table.countRows());
    const config = lancedb.Index.ivfRq({ distanceType: 'cosine', numPartitions: partitions, numBits: 4 });
    await this.table.createIndex('vector', { config, name: indexName(partitions), replace: true });
  }

  /** Names of the vector indexes on the table (empty until optimize() has built one). */
  async vectorIndexes(): Promise<string[]> {
    return (await this.table.listIndices()).filter((i) => i.columns.includes('vector')).map((i) => i.name);
  }

  async close(): Promise<void> {
    this.table.close();
    this.db.close();
  }
}

const indexName = (p: number) => `vector_ivfrq_p${p}`;
/**
 * ~4096 rows per partition (Lance's own default is of that order). sqrt(n) partitions made training ~10x
 * slower at 50k (k-means samples 256 rows per partition) with no recall gain once 1-bit codes are refined.
 */
const partitionsFor = (rows: number) => Math.max(1, Math.ceil(rows / 4096));

type Cols = Record<keyof ImageMeta | 'id', Vector>;
function columns(t: ArrowTable | { getChild(name: string): Vector | null }): Cols {
  const get = (n: string) => {
    const c = t.getChild(n);
    if (!c) throw new Error(`lance result has no column ${n}`);
    return c;
  };
  return Object.fromEntries(['id', ...META_FIELDS].map((n) => [n, get(n)])) as Cols;
}
