// The vector store contract. Kept backend-neutral (plain records, a small filter AST instead of SQL) so a
// server-backed store (pgvector, Qdrant) can implement it later without the indexer or CLI changing.

/** What we keep about each indexed image besides its vector. */
export interface ImageMeta {
  path: string;
  /** Bytes on disk. */
  size: number;
  /** Modification time, ms since the epoch (fractional, as fs.stat gives it). */
  mtime: number;
  width: number;
  height: number;
  /** sha256 of the file bytes, hex. */
  hash: string;
}

export interface VectorRecord {
  /** Stable key; the indexer uses the absolute path, so an upsert can never create a duplicate of a file. */
  id: string;
  /** L2-normalized embedding. */
  vector: Float32Array;
  meta: ImageMeta;
}

export interface SearchHit {
  id: string;
  /** Cosine similarity (vectors are unit length, so also the dot product). */
  score: number;
  meta: ImageMeta;
}

/** One stored record without its vector: what the indexer needs to decide what changed. */
export interface StoredEntry {
  id: string;
  meta: ImageMeta;
}

export type FilterOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'prefix';

/** One condition; a Filter is their conjunction. 'prefix' applies to string fields (path, hash). */
export interface Condition {
  field: keyof ImageMeta;
  op: FilterOp;
  value: string | number;
}
export type Filter = Condition[];

/** Recorded once, when the store is created: mixing embeddings of two models makes scores meaningless. */
export interface StoreInfo {
  dim: number;
  model?: string;
}

export interface UpsertOptions {
  /** The caller guarantees none of the ids exist yet (bulk loads): lets a store append instead of merging. */
  assumeNew?: boolean;
}

/** Bytes [start, end) of a store file that hold no readable frame, and why. */
export interface DamagedRegion {
  start: number;
  end: number;
  reason: string;
}

/** What a reader skipped in a damaged store. Everything valid around the regions was read and is served. */
export interface StoreDamage {
  /** In file order. */
  regions: DamagedRegion[];
  /** Their total size. */
  bytes: number;
  /** Valid frames read in all. */
  frames: number;
  /** Of those, the frames after the first damaged region: what a reader that stopped there would have lost. */
  framesAfter: number;
}

export interface VectorStore {
  readonly kind: string;
  readonly info: StoreInfo;
  /** Set when the store's file is damaged (ExactStore); readers skip the damaged bytes, writers never drop them. */
  readonly damage?: StoreDamage;
  /** Insert or replace by id. One call is one atomic commit: after a crash it is either fully visible or not at all. */
  upsert(records: VectorRecord[], opts?: UpsertOptions): Promise<void>;
  /** Remove by id; unknown ids are ignored. Atomic per call like upsert. */
  delete(ids: string[]): Promise<void>;
  search(query: Float32Array, k: number, filter?: Filter): Promise<SearchHit[]>;
  count(): Promise<number>;
  /** Every record's id and metadata (no vectors), in no particular order. */
  entries(): AsyncIterable<StoredEntry>;
  /** Every record with its vector, in batches: copying a collection to another store (or backend). */
  scan(): AsyncIterable<VectorRecord[]>;
  /** Records (with vectors) for the ids that exist; used to reuse an embedding when content is unchanged. */
  get(ids: string[]): Promise<VectorRecord[]>;
  /** Optional: groups of entries sharing a content hash (2+ each), computed by the store itself (a server
   * groups without sending every row over); `clip dedup` falls back to reading entries() when absent. */
  sameContent?(): AsyncIterable<StoredEntry[]>;
  /** Housekeeping after a write session (index build/merge, compaction). Safe to skip or to interrupt. */
  optimize(): Promise<void>;
  close(): Promise<void>;
}

/** One line for a warning: where the damage is and what was still read. */
export function describeDamage(path: string, d: StoreDamage): string {
  const shown = d.regions.slice(0, 3).map((r) => `${r.end - r.start} bytes at offset ${r.start} (${r.reason})`);
  if (d.regions.length > 3) shown.push(`${d.regions.length - 3} more`);
  return `${path} is damaged: skipped ${d.bytes} unreadable bytes in ${d.regions.length} region${d.regions.length === 1 ? '' : 's'}: ` +
    `${shown.join('; ')}; read the ${d.frames} valid frames around them (${d.framesAfter} after the damage)`;
}

export const META_FIELDS: (keyof ImageMeta)[] = ['path', 'size', 'mtime', 'width', 'height', 'hash'];
const STRING_FIELDS = new Set<keyof ImageMeta>(['path', 'hash']);

/** Reject malformed filters early, with a message naming the problem, whatever the backend. */
export function checkFilter(filter: Filter): void {
  for (const c of filter) {
    if (!META_FIELDS.includes(c.field)) throw new Error(`filter: unknown field "${c.field}" (one of ${META_FIELDS.join(', ')})`);
    const isString = STRING_FIELDS.has(c.field);
    if (isString !== (typeof c.value === 'string')) throw new Error(`filter: ${c.field} takes a ${isString ? 'string' : 'number'}`);
    if (c.op === 'prefix' && !isString) throw new Error(`filter: prefix applies to path or hash, not ${c.field}`);
    if (typeof c.value === 'number' && !Number.isFinite(c.value)) throw new Error(`filter: ${c.field} needs a finite number`);
  }
}

/** In-process evaluation of a filter (ExactStore; also the reference the other backends are tested against). */
export function matchesFilter(meta: ImageMeta, filter: Filter): boolean {
  return filter.every((c) => {
    const v = meta[c.field];
    switch (c.op) {
      case '=': return v === c.value;
      case '!=': return v !== c.value;
      case '<': return v < c.value;
      case '<=': return v <= c.value;
      case '>': return v > c.value;
      case '>=': return v >= c.value;
      case 'prefix': return String(v).startsWith(String(c.value));
    }
  });
}

/** Parse "width>=512", "path^=/photos/" (prefix), "hash=ab12…" from the command line. */
export function parseCondition(text: string): Condition {
  const m = /^\s*([a-z]+)\s*(\^=|!=|<=|>=|=|<|>)\s*(.*?)\s*$/.exec(text);
  if (!m) throw new Error(`filter "${text}": expected FIELD OP VALUE, e.g. width>=512 or path^=/photos/`);
  const field = m[1] as keyof ImageMeta;
  const op: FilterOp = m[2] === '^=' ? 'prefix' : (m[2] as FilterOp);
  const value = STRING_FIELDS.has(field) ? m[3]! : Number(m[3]);
  const c = { field, op, value };
  checkFilter([c]);
  return c;
}
