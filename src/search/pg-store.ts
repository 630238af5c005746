// Postgres + pgvector store: one shared index that many processes (indexers, queue workers, server replicas)
// write and read at once. Every upsert/delete is one transaction, so it is atomic like the other stores, and
// writes are keyed (ON CONFLICT DO UPDATE), so a batch delivered twice changes nothing the second time.
//
// Schema (ours, versioned in clip_schema_version, migrated forward on open under an advisory lock):
//   clip_store   one row: the embedding width and model the index was created for, the vector type indexed;
//   clip_images  one row per image: id (the key of the VectorStore contract), the metadata as typed columns
//                (what filters use), `extra` jsonb for fields without a column, and the embedding.
// Rows are unique per id. (content_hash, model) is indexed but not unique: two paths with the same bytes are
// two images to the indexer and to `clip dedup`'s exact pass, so the table must be able to hold both.
//
// ANN: HNSW, cosine, m 16, ef_construction 64. pgvector indexes `vector` up to 2000 dims; above that the index
// is on the halfvec cast (up to 4000), and queries order by the same expression so the planner can use it.
import type * as PG from 'pg';
import { checkFilter, type Filter, type ImageMeta, type SearchHit, type StoredEntry, type StoreInfo, type UpsertOptions, type VectorRecord, type VectorStore } from './store.js';
import { isPostgresUrl, redactUrl } from './redact-url.js';

/** The schema this code writes and reads. Opening a newer one is refused: we cannot know what it means. */
export const SCHEMA_VERSION = 1;
/** Oldest server we run on (pgvector 0.8 supports 13 and newer). */
export const MIN_SERVER_VERSION = 130000;
/** pgvector 0.5 brought HNSW; 0.7 halfvec; 0.8 iterative index scans (used when present: filtered search). */
const MIN_PGVECTOR = [0, 5, 0];
const HALFVEC_PGVECTOR = [0, 7, 0];
const ITERATIVE_PGVECTOR = [0, 8, 0];
/** pgvector's own limits: HNSW over vector up to 2000 dims, over halfvec up to 4000, a vector column 16000. */
const HNSW_VECTOR_MAX = 2000;
const HNSW_HALFVEC_MAX = 4000;
const VECTOR_MAX = 16000;
export const DEFAULT_EF_SEARCH = 100;
/** Upper bound pgvector accepts for hnsw.ef_search. */
const EF_SEARCH_MAX = 1000;
/** Rows per INSERT statement (one round trip; the whole upsert call is still one transaction). */
const UPSERT_CHUNK = 500;
/** Rows per page when listing: keyset pages keep no cursor (and no transaction) open between pages. */
const PAGE = 1000;
/** Any constant: the key of the advisory lock that serializes schema creation and migration. */
const MIGRATE_LOCK = 0x636c6970; // "clip"

export interface PgStoreOptions {
  /** Connections in the pool (default 4; 1 when the server is PGlite, which has one session behind its socket). */
  poolSize?: number;
  /** hnsw.ef_search per query (default 100, at least k). Higher: better recall, slower. */
  efSearch?: number;
}


export { isPostgresUrl, redactUrl };

let pg: typeof PG;
let pgvector: { toSql(v: number[]): string };
async function loadPg(): Promise<void> {
  if (pg && pgvector) return;
  try {
    pg = ((await import('pg')) as unknown as { default: typeof PG }).default;
    pgvector = (await import('pgvector')).default as typeof pgvector;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new Error('a postgres:// index needs the optional packages pg and pgvector: `npm i pg pgvector`');
  }
}

const parseVersion = (v: string) => v.split(/[.-]/).slice(0, 3).map((x) => Number.parseInt(x, 10) || 0);
const atLeast = (v: number[], min: number[]) => {
  for (let i = 0; i < min.length; i++) if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  return true;
};

/** Column for each metadata field; a filter can only name these (checkFilter), never free text. */
const COLUMNS: Record<keyof ImageMeta, { col: string; text: boolean }> = {
  path: { col: 'path', text: true },
  hash: { col: 'content_hash', text: true },
  size: { col: 'size', text: false },
  mtime: { col: 'mtime', text: false },
  width: { col: 'width', text: false },
  height: { col: 'height', text: false },
};
const SQL_OPS = { '=': '=', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>=' } as const;

/**
 * Translate the portable filter into a WHERE clause over our columns, values as bind parameters ($first...).
 * Only column names and operators from the fixed tables above enter the SQL text. Strings compare in the "C"
 * collation (code point order), so results match the exact store's JS comparison, not the server's locale.
 */
export function filterToPg(filter: Filter, first: number): { sql: string; params: (string | number)[] } {
  checkFilter(filter);
  const params: (string | number)[] = [];
  const parts = filter.map((c) => {
    const { col, text } = COLUMNS[c.field];
    params.push(c.value);
    const p = `$${first + params.length - 1}`;
    if (c.op === 'prefix') return `starts_with(${col}, ${p}::text)`;
    return text ? `${col} COLLATE "C" ${SQL_OPS[c.op]} ${p}::text COLLATE "C"` : `${col} ${SQL_OPS[c.op]} ${p}::float8`;
  });
  return { sql: parts.join(' AND '), params };
}

/** The HNSW index over the embeddings (none when wider than pgvector can index); `dim` is a checked integer. */
function hnswIndexSql(dim: number, vtype: string): string | undefined {
  if (vtype === 'vector') return 'CREATE INDEX IF NOT EXISTS clip_images_hnsw ON clip_images USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)';
  if (vtype === 'halfvec') return `CREATE INDEX IF NOT EXISTS clip_images_hnsw ON clip_images USING hnsw ((embedding::halfvec(${dim})) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)`;
  return undefined;
}

/** Forward migrations: index i takes the schema from version i to i + 1. Each runs in the open transaction. */
const MIGRATIONS: ((c: PG.PoolClient | PG.Client, info: StoreInfo, vtype: string) => Promise<void>)[] = [
  async (c, info, vtype) => {
    await c.query(`CREATE TABLE clip_store (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      dim integer NOT NULL, model text, index_type text NOT NULL)`);
    await c.query('INSERT INTO clip_store (dim, model, index_type) VALUES ($1, $2, $3)', [info.dim, info.model ?? null, vtype]);
    // dim was checked to be an integer in range before it reaches this DDL (DDL takes no bind parameters).
    await c.query(`CREATE TABLE clip_images (
      id text PRIMARY KEY,
      path text NOT NULL,
      size double precision NOT NULL,
      mtime double precision NOT NULL,
      width double precision NOT NULL,
      height double precision NOT NULL,
      content_hash text NOT NULL,
      model text,
      extra jsonb NOT NULL DEFAULT '{}'::jsonb,
      embedding vector(${info.dim}) NOT NULL)`);
    await c.query('CREATE INDEX clip_images_hash ON clip_images (content_hash, model)');
    await c.query('CREATE INDEX clip_images_path ON clip_images (path COLLATE "C")');
    const ddl = hnswIndexSql(info.dim, vtype);
    if (ddl) await c.query(ddl);
  },
];

const META_SELECT = 'id, path, size, mtime, width, height, content_hash';
interface Row { id: string; path: string; size: number; mtime: number; width: number; height: number; content_hash: string; embedding?: number[]; distance?: number }
const metaOf = (r: Row): ImageMeta => ({ path: r.path, size: r.size, mtime: r.mtime, width: r.width, height: r.height, hash: r.content_hash });
const toVector = (v: Float32Array) => pgvector.toSql(Array.from(v));

export class PgvectorStore implements VectorStore {
  readonly kind = 'postgres';
  /** Connections whose type parsers already know `vector` (pgvector registers per connection). */
  private readonly registered = new WeakSet<PG.PoolClient>();

  private constructor(
    private readonly pool: PG.Pool,
    readonly info: StoreInfo,
    /** What the HNSW index is built on: 'vector', 'halfvec', or 'none' (wider than any HNSW index). */
    private readonly indexType: string,
    private readonly iterative: boolean,
    private readonly opts: PgStoreOptions,
    readonly pglite: boolean,
  ) {}

  /** Open the index at `url`, creating (or migrating) our schema when `create` is given. */
  static async open(url: string, create?: StoreInfo, opts: PgStoreOptions = {}): Promise<PgvectorStore> {
    await loadPg();
    const shown = redactUrl(url);
    if (create && (!Number.isInteger(create.dim) || create.dim < 1 || create.dim > VECTOR_MAX)) {
      throw new Error(`${shown}: embedding width ${create.dim} is outside pgvector's 1..${VECTOR_MAX}`);
    }
    // Set-up runs on one plain connection, so the pool can be sized for the server we find.
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
    } catch (e) {
      throw new Error(`${shown}: cannot connect: ${(e as Error).message}`);
    }
    let info: StoreInfo, indexType: string, ext: number[], pglite: boolean;
    try {
      const num = Number((await c.query('SHOW server_version_num')).rows[0].server_version_num);
      const version: string = (await c.query('SELECT version() AS v')).rows[0].v;
      pglite = /PGlite/i.test(version);
      if (!(num >= MIN_SERVER_VERSION)) throw new Error(`${shown}: PostgreSQL ${version.split(' ')[1] ?? num} is not supported; clip-ts needs PostgreSQL 13 or newer with pgvector`);
      ext = await ensureVector(c, shown, !!create);
      await c.query('BEGIN');
      try {
        await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
        ({ info, indexType } = await migrate(c, shown, create, ext));
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      }
    } finally {
      await c.end().catch(() => {});
    }
    const pool = new pg.Pool({ connectionString: url, max: pglite ? 1 : (opts.poolSize ?? 4) });
    // An idle connection the server dropped must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    return new PgvectorStore(pool, info, indexType, atLeast(ext, ITERATIVE_PGVECTOR), opts, pglite);
  }

  /** A pooled connection whose parsers turn `vector` columns into number arrays. */
  private async client(): Promise<PG.PoolClient> {
    const c = await this.pool.connect();
    if (!this.registered.has(c)) {
      try {
        const pv = (await import('pgvector/pg')).default;
        await pv.registerTypes(c);
      } catch (e) {
        c.release(e as Error);
        throw e;
      }
      this.registered.add(c);
    }
    return c;
  }

  /** Run `fn` in one transaction on one connection; rolled back on any error. */
  private async tx<T>(fn: (c: PG.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.client();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (e) {
      await c.query('ROLLBACK').catch((r) => { broken = r as Error; });
      throw e;
    } finally {
      c.release(broken);
    }
  }

  private async query<T = Row>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = await this.client();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      c.release();
    }
  }

  async upsert(records: VectorRecord[], _opts: UpsertOptions = {}): Promise<void> {
    if (!records.length) return;
    for (const r of records) if (r.vector.length !== this.info.dim) throw new Error(`vector has ${r.vector.length} dims, the store ${this.info.dim}`);
    // ON CONFLICT cannot touch one row twice in a statement: the last record for an id wins, as in the other stores.
    const byId = new Map(records.map((r) => [r.id, r]));
    const rows = [...byId.values()];
    await this.tx(async (c) => {
      for (let s = 0; s < rows.length; s += UPSERT_CHUNK) {
        const part = rows.slice(s, s + UPSERT_CHUNK);
        // Column arrays unnested into rows: one statement with 9 parameters, whatever the batch size.
        await c.query(
          `INSERT INTO clip_images (id, path, size, mtime, width, height, content_hash, model, embedding)
           SELECT u.id, u.path, u.size, u.mtime, u.width, u.height, u.hash, $8, u.embedding::vector
           FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::text[], $9::text[])
             AS u(id, path, size, mtime, width, height, hash, embedding)
           ON CONFLICT (id) DO UPDATE SET path = EXCLUDED.path, size = EXCLUDED.size, mtime = EXCLUDED.mtime,
             width = EXCLUDED.width, height = EXCLUDED.height, content_hash = EXCLUDED.content_hash,
             model = EXCLUDED.model, embedding = EXCLUDED.embedding`,
          [part.map((r) => r.id), part.map((r) => r.meta.path), part.map((r) => r.meta.size), part.map((r) => r.meta.mtime),
            part.map((r) => r.meta.width), part.map((r) => r.meta.height), part.map((r) => r.meta.hash), this.info.model ?? null,
            part.map((r) => toVector(r.vector))],
        );
      }
    });
  }

  async delete(ids: string[]): Promise<void> {
    if (!ids.length) return;
    await this.tx((c) => c.query('DELETE FROM clip_images WHERE id = ANY($1::text[])', [ids]));
  }

  async search(query: Float32Array, k: number, filter?: Filter): Promise<SearchHit[]> {
    if (query.length !== this.info.dim) throw new Error(`query has ${query.length} dims, the store ${this.info.dim}`);
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
    const where = filter?.length ? filterToPg(filter, 3) : undefined;
    const emb = this.indexType === 'halfvec' ? `embedding::halfvec(${this.info.dim})` : 'embedding';
    const q = this.indexType === 'halfvec' ? `$1::halfvec(${this.info.dim})` : '$1::vector';
    const ef = Math.min(EF_SEARCH_MAX, Math.max(this.opts.efSearch ?? DEFAULT_EF_SEARCH, k));
    const rows = await this.tx(async (c) => {
      // SET LOCAL ends with the transaction: a pooled connection (or PGlite's one shared session) keeps no setting.
      // ef is an integer we computed, so it can be part of the statement (SET takes no bind parameters).
      await c.query(`SET LOCAL hnsw.ef_search = ${ef}`);
      // Without iterative scans a filter is applied to the ef_search nearest only (and k > ef_search gets at most
      // ef_search rows); with them, pgvector keeps scanning until k rows pass (the final ORDER BY below restores
      // exact order for relaxed_order).
      if (this.iterative && (where || k > ef)) await c.query('SET LOCAL hnsw.iterative_scan = relaxed_order');
      return (await c.query(
        `SELECT * FROM (SELECT ${META_SELECT}, ${emb} <=> ${q} AS distance FROM clip_images
           ${where ? `WHERE ${where.sql}` : ''} ORDER BY ${emb} <=> ${q} LIMIT $2) t ORDER BY distance, id`,
        [toVector(query), k, ...(where?.params ?? [])],
      )).rows as Row[];
    });
    return rows.map((r) => ({ id: r.id, score: 1 - Number(r.distance), meta: metaOf(r) }));
  }

  async count(): Promise<number> {
    const [r] = await this.query<{ n: number }>('SELECT count(*)::int AS n FROM clip_images');
    return r!.n;
  }

  private async *pages(withVectors: boolean): AsyncIterable<Row[]> {
    // Keyset pages in the primary key's own order (its index serves both the > and the ORDER BY).
    let after: string | null = null;
    for (;;) {
      const rows: Row[] = await this.query(
        `SELECT ${META_SELECT}${withVectors ? ', embedding' : ''} FROM clip_images
         WHERE $1::text IS NULL OR id > $1::text ORDER BY id LIMIT ${PAGE}`, [after]);
      if (!rows.length) return;
      yield rows;
      if (rows.length < PAGE) return;
      after = rows.at(-1)!.id;
    }
  }

  async *entries(): AsyncIterable<StoredEntry> {
    for await (const rows of this.pages(false)) for (const r of rows) yield { id: r.id, meta: metaOf(r) };
  }

  async *scan(): AsyncIterable<VectorRecord[]> {
    for await (const rows of this.pages(true)) yield rows.map((r) => ({ id: r.id, vector: Float32Array.from(r.embedding!), meta: metaOf(r) }));
  }

  async get(ids: string[]): Promise<VectorRecord[]> {
    if (!ids.length) return [];
    const rows = await this.query(`SELECT ${META_SELECT}, embedding FROM clip_images WHERE id = ANY($1::text[])`, [ids]);
    return rows.map((r) => ({ id: r.id, vector: Float32Array.from(r.embedding!), meta: metaOf(r) }));
  }

  async *sameContent(): AsyncIterable<StoredEntry[]> {
    // Keyset pages over the duplicated hashes only (the (content_hash, model) index serves the GROUP BY);
    // a page ends on a hash boundary, so no group is split between pages.
    let after: string | null = null;
    for (;;) {
      const hashes: string[] = (await this.query<{ h: string }>(
        `SELECT content_hash AS h FROM clip_images WHERE $1::text IS NULL OR content_hash > $1::text
         GROUP BY content_hash HAVING count(*) > 1 ORDER BY content_hash LIMIT ${PAGE}`, [after])).map((r) => r.h);
      if (!hashes.length) return;
      const rows = await this.query(`SELECT ${META_SELECT} FROM clip_images WHERE content_hash = ANY($1::text[]) ORDER BY content_hash, id`, [hashes]);
      let group: StoredEntry[] = [];
      for (const r of rows) {
        if (group.length && group[0]!.meta.hash !== r.content_hash) {
          if (group.length > 1) yield group; // (a row deleted since the GROUP BY can leave one)
          group = [];
        }
        group.push({ id: r.id, meta: metaOf(r) });
      }
      if (group.length > 1) yield group;
      if (hashes.length < PAGE) return;
      after = hashes.at(-1)!;
    }
  }

  /**
   * Drop the HNSW index, for a first bulk load into an empty table (each insert then costs no graph update);
   * `buildIndex()` afterwards builds it in one pass, in parallel on a server with maintenance workers.
   * Searches meanwhile are exact scans: slow on a large table, but correct.
   */
  async dropIndex(): Promise<void> {
    await this.query('DROP INDEX IF EXISTS clip_images_hnsw');
  }

  /** (Re)create the HNSW index if it is missing; a no-op when it exists. */
  async buildIndex(): Promise<void> {
    const ddl = hnswIndexSql(this.info.dim, this.indexType);
    if (ddl) await this.query(ddl);
  }

  /** The HNSW index is maintained on every write; refresh the planner's statistics. */
  async optimize(): Promise<void> {
    await this.query('ANALYZE clip_images');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The pgvector version in the database, installing the extension when creating. Errors say what to do. */
async function ensureVector(c: PG.Client, shown: string, creating: boolean): Promise<number[]> {
  const installed = async () => (await c.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).rows[0]?.extversion as string | undefined;
  let v = await installed();
  if (!v && creating) {
    const avail = (await c.query("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")).rows[0];
    if (!avail) throw new Error(`${shown}: the server has no pgvector extension (vector); install pgvector on the server (e.g. the postgresql-NN-pgvector package) and retry`);
    try {
      await c.query('CREATE EXTENSION IF NOT EXISTS vector');
    } catch (e) {
      throw new Error(`${shown}: pgvector is available but could not be enabled (${(e as Error).message}); have a superuser run CREATE EXTENSION vector in this database`);
    }
    v = await installed();
  }
  if (!v) throw new Error(`no index at ${shown} (not even the pgvector extension is enabled there); build one with \`clip index --db ${shown}\``);
  const ver = parseVersion(v);
  if (!atLeast(ver, MIN_PGVECTOR)) throw new Error(`${shown}: pgvector ${v} is too old; clip-ts needs 0.5.0 or newer (HNSW)`);
  return ver;
}

async function migrate(c: PG.Client, shown: string, create: StoreInfo | undefined, ext: number[]): Promise<{ info: StoreInfo; indexType: string }> {
  const exists = (await c.query("SELECT to_regclass('clip_schema_version') IS NOT NULL AS e")).rows[0].e as boolean;
  let version = 0;
  if (exists) version = (await c.query('SELECT max(version) AS v FROM clip_schema_version')).rows[0].v ?? 0;
  if (version > SCHEMA_VERSION) throw new Error(`${shown}: the index schema is version ${version}, newer than this clip-ts understands (${SCHEMA_VERSION}); upgrade clip-ts`);
  if (version === 0 && !create) throw new Error(`no index at ${shown} (build one with \`clip index --db ${shown}\`)`);
  if (version < SCHEMA_VERSION) {
    // A fresh database takes its shape from `create`; an older schema keeps the info it recorded.
    const info = version === 0 ? create! : await readInfo(c);
    const vtype = info.dim <= HNSW_VECTOR_MAX ? 'vector' : info.dim <= HNSW_HALFVEC_MAX ? 'halfvec' : 'none';
    if (vtype === 'halfvec' && !atLeast(ext, HALFVEC_PGVECTOR)) throw new Error(`${shown}: ${info.dim}-dim embeddings need pgvector 0.7.0 or newer (halfvec index)`);
    if (!exists) await c.query('CREATE TABLE clip_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    for (let v = version; v < SCHEMA_VERSION; v++) {
      await MIGRATIONS[v]!(c, info, vtype);
      await c.query('INSERT INTO clip_schema_version (version) VALUES ($1)', [v + 1]);
    }
  }
  const info = await readInfo(c);
  const indexType = (await c.query('SELECT index_type FROM clip_store')).rows[0].index_type as string;
  if (create && create.dim !== info.dim) throw new Error(`${shown} holds ${info.dim}-dim embeddings (model ${info.model ?? '?'}); this model makes ${create.dim}-dim ones`);
  return { info, indexType };
}

async function readInfo(c: PG.Client): Promise<StoreInfo> {
  const r = (await c.query('SELECT dim, model FROM clip_store')).rows[0];
  if (!r) throw new Error('clip_store is empty: the index was not written by clip-ts');
  return { dim: r.dim, ...(r.model ? { model: r.model } : {}) };
}
