// Duplicate detection over any VectorStore: files with the same bytes (content hash), then near-duplicates
// (resized, re-encoded, lightly edited copies) by embedding similarity.
//
// The near pass asks the store's own ANN index for each row's k nearest neighbours and joins every pair at or
// above the threshold with union-find: n searches instead of n² comparisons, and nothing held in memory but
// the rows that turned out to have a duplicate (plus, for stores without a server-side grouping, one content
// hash per row in the exact pass). Groups are single-linkage: A~B and B~C put A, B, C in one group even when
// A and C alone fall below the threshold; each member's similarity to the kept image is reported.
import { createHash } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { hashFileInto } from '../hub/verify.js';
import type { ImageMeta, StoredEntry, VectorStore } from './store.js';

/** Cosine similarity at or above which two images are near-duplicates. Resized and re-encoded copies of a
 * photo score ~0.98 or more with CLIP image embeddings; different shots of one scene mostly score below. */
export const DEFAULT_THRESHOLD = 0.95;
/** Neighbours asked for per row; larger groups still form through their members' own neighbours. */
export const DEFAULT_NEIGHBOURS = 10;
export const MAX_NEIGHBOURS = 100;
/** Searches in flight at once (a server store spreads them over its pool; PGlite just queues them). */
const PARALLEL = 4;

/** Which member of a group is kept. Ties fall through to the next key, last to path order. */
export type KeepRule = 'largest' | 'oldest' | 'newest';
export const KEEP_RULES: KeepRule[] = ['largest', 'oldest', 'newest'];
export const KEEP_RULE_TEXT: Record<KeepRule, string> = {
  largest: 'the most pixels, then the largest file, then the oldest, then the first path',
  oldest: 'the oldest modification time, then the most pixels, then the first path',
  newest: 'the newest modification time, then the most pixels, then the first path',
};

export interface DedupOptions {
  /** Cosine similarity for near-duplicates, in (0, 1]. */
  threshold?: number;
  /** Only byte-identical files (skip the embedding pass). */
  exactOnly?: boolean;
  /** Neighbours per row (default 10, at most 100). */
  neighbours?: number;
  /** Rows to examine in the near pass (default all): bounds the work on a huge index. */
  limit?: number;
  keep?: KeepRule;
  onProgress?: (done: number, total: number) => void;
}

export interface DupMember {
  id: string;
  meta: ImageMeta;
  /** Cosine similarity to the kept member (1 for itself and byte-identical copies). */
  similarity: number;
  /** Same bytes as the kept member. */
  exact: boolean;
  keep: boolean;
}

export interface DupGroup {
  /** 'exact' when every member has the same bytes, else 'near'. */
  kind: 'exact' | 'near';
  /** The kept member first, then the rest by similarity to it (highest first), then path. */
  members: DupMember[];
}

export interface DedupReport {
  threshold: number | null;
  keep: KeepRule;
  /** Rows in the store, and rows the near pass examined (all unless limited). */
  rows: number;
  examined: number;
  groups: DupGroup[];
}

/** Union-find over ids, holding only ids that were joined to something. */
class Groups {
  private readonly parent = new Map<string, string>();
  readonly meta = new Map<string, ImageMeta>();
  find(x: string): string {
    let r = x;
    for (let p = this.parent.get(r); p !== undefined && p !== r; p = this.parent.get(r)) r = p;
    // Path compression: later finds on this chain take one step.
    for (let y = x; y !== r;) {
      const next = this.parent.get(y)!;
      this.parent.set(y, r);
      y = next;
    }
    return r;
  }
  join(a: StoredEntry, b: StoredEntry): void {
    for (const e of [a, b]) {
      if (!this.parent.has(e.id)) this.parent.set(e.id, e.id);
      this.meta.set(e.id, e.meta);
    }
    const [ra, rb] = [this.find(a.id), this.find(b.id)];
    if (ra !== rb) this.parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
  }
  sets(): string[][] {
    const by = new Map<string, string[]>();
    for (const id of this.parent.keys()) {
      const r = this.find(id);
      const list = by.get(r);
      if (list) list.push(id);
      else by.set(r, [id]);
    }
    return [...by.values()];
  }
}

const pixels = (m: ImageMeta) => m.width * m.height;
const byPath = (a: ImageMeta, b: ImageMeta) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
/** Negative when `a` should be kept over `b`. */
export function keepOrder(rule: KeepRule): (a: ImageMeta, b: ImageMeta) => number {
  switch (rule) {
    case 'largest': return (a, b) => pixels(b) - pixels(a) || b.size - a.size || a.mtime - b.mtime || byPath(a, b);
    case 'oldest': return (a, b) => a.mtime - b.mtime || pixels(b) - pixels(a) || byPath(a, b);
    case 'newest': return (a, b) => b.mtime - a.mtime || pixels(b) - pixels(a) || byPath(a, b);
  }
}

/** Groups of stored entries that share a content hash (each group sorted by id); streams when the store can. */
async function* sameContent(store: VectorStore): AsyncIterable<StoredEntry[]> {
  if (store.sameContent) {
    yield* store.sameContent();
    return;
  }
  const first = new Map<string, StoredEntry | StoredEntry[]>();
  for await (const e of store.entries()) {
    const seen = first.get(e.meta.hash);
    if (!seen) first.set(e.meta.hash, e);
    else if (Array.isArray(seen)) seen.push(e);
    else first.set(e.meta.hash, [seen, e]);
  }
  for (const v of first.values()) if (Array.isArray(v)) yield v;
}

export function checkThreshold(t: number): number {
  if (!(Number.isFinite(t) && t > 0 && t <= 1)) throw new Error(`--threshold ${t}: give a cosine similarity in (0, 1], e.g. ${DEFAULT_THRESHOLD}`);
  return t;
}

/** Find duplicate groups. Reads only; see `removeDuplicates` to act on them. */
export async function findDuplicates(store: VectorStore, opts: DedupOptions = {}): Promise<DedupReport> {
  const threshold = checkThreshold(opts.threshold ?? DEFAULT_THRESHOLD);
  const k = opts.neighbours ?? DEFAULT_NEIGHBOURS;
  if (!Number.isInteger(k) || k < 1 || k > MAX_NEIGHBOURS) throw new Error(`--neighbours ${k}: give an integer from 1 to ${MAX_NEIGHBOURS}`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) throw new Error(`--limit ${opts.limit}: give a positive integer`);
  const keep = opts.keep ?? 'largest';
  const rows = await store.count();
  const groups = new Groups();

  // Pass 1: identical bytes.
  for await (const same of sameContent(store)) for (let i = 1; i < same.length; i++) groups.join(same[0]!, same[i]!);

  // Pass 2: near-duplicates through the ANN index, one k-NN search per row.
  const total = Math.min(rows, opts.limit ?? rows);
  let examined = 0;
  if (!opts.exactOnly && total > 0) {
    opts.onProgress?.(0, total);
    outer: for await (const batch of store.scan()) {
      for (let s = 0; s < batch.length; s += PARALLEL) {
        const part = batch.slice(s, Math.min(s + PARALLEL, s + total - examined));
        const hits = await Promise.all(part.map((r) => store.search(r.vector, k + 1)));
        part.forEach((r, i) => {
          for (const h of hits[i]!) if (h.id !== r.id && h.score >= threshold) groups.join(r, h);
        });
        examined += part.length;
        opts.onProgress?.(examined, total);
        if (examined >= total) break outer;
      }
    }
  }

  // Each group: the kept member by the rule, the others' similarity to it (vectors read for group members only).
  const order = keepOrder(keep);
  const out: DupGroup[] = [];
  for (const ids of groups.sets()) {
    const metas = ids.map((id) => ({ id, meta: groups.meta.get(id)! })).sort((a, b) => order(a.meta, b.meta));
    const kept = metas[0]!;
    const exactAll = metas.every((m) => m.meta.hash === kept.meta.hash);
    let sims = new Map<string, number>();
    if (!exactAll) {
      const vecs = new Map((await store.get(ids)).map((r) => [r.id, r.vector]));
      const kv = vecs.get(kept.id);
      // A row deleted since the scan has no vector; its similarity is unknown (NaN, shown as such).
      sims = new Map(ids.map((id) => {
        const v = vecs.get(id);
        return [id, kv && v ? Math.min(1, v.reduce((s, x, j) => s + x * kv[j]!, 0)) : Number.NaN];
      }));
    }
    const members = metas.map((m, i): DupMember => {
      const exact = m.meta.hash === kept.meta.hash;
      return { id: m.id, meta: m.meta, similarity: exact ? 1 : sims.get(m.id)!, exact, keep: i === 0 };
    });
    members.sort((a, b) => Number(b.keep) - Number(a.keep) || b.similarity - a.similarity || byPath(a.meta, b.meta));
    out.push({ kind: exactAll ? 'exact' : 'near', members });
  }
  // Exact groups first, then the largest groups, then by the kept path: a stable order for people and scripts.
  out.sort((a, b) => Number(b.kind === 'exact') - Number(a.kind === 'exact') || b.members.length - a.members.length || byPath(a.members[0]!.meta, b.members[0]!.meta));
  return { threshold: opts.exactOnly ? null : threshold, keep, rows, examined, groups: out };
}

export interface RemovalReport {
  /** Files deleted from disk, and their rows from the index. */
  removed: { path: string; keptAs: string }[];
  /** Members left alone, with why (the kept file changed or is missing; the file changed since indexing...). */
  skipped: { path: string; reason: string }[];
}

/** sha256 of a file, or why it cannot be read. */
async function fileHash(path: string): Promise<string | Error> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return new Error('not a regular file');
    return (await hashFileInto(path, createHash('sha256'))).digest('hex');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return new Error(code === 'ENOENT' ? 'not found on this machine' : (e as Error).message);
  }
}

/**
 * Delete every member but the kept one of each group: the file, then its row. Only files whose bytes are still
 * the ones indexed are touched, and only while the kept file is still there with its indexed bytes, so a group
 * never loses its last copy and a file edited since indexing (its row is stale) is never deleted on its say.
 */
export async function removeDuplicates(store: VectorStore, groups: DupGroup[]): Promise<RemovalReport> {
  const report: RemovalReport = { removed: [], skipped: [] };
  for (const g of groups) {
    const [kept, ...rest] = g.members;
    const kh = await fileHash(kept!.meta.path);
    if (kh instanceof Error || kh !== kept!.meta.hash) {
      const why = kh instanceof Error ? kh.message : 'changed since it was indexed';
      for (const m of rest) report.skipped.push({ path: m.meta.path, reason: `the kept copy ${kept!.meta.path} is ${why}; reindex, then rerun` });
      continue;
    }
    const gone: string[] = [];
    for (const m of rest) {
      const h = await fileHash(m.meta.path);
      if (h instanceof Error) report.skipped.push({ path: m.meta.path, reason: h.message });
      else if (h !== m.meta.hash) report.skipped.push({ path: m.meta.path, reason: 'changed since it was indexed; reindex, then rerun' });
      else {
        try {
          await rm(m.meta.path);
          gone.push(m.id);
          report.removed.push({ path: m.meta.path, keptAs: kept!.meta.path });
        } catch (e) {
          report.skipped.push({ path: m.meta.path, reason: (e as Error).message });
        }
      }
    }
    // Per group, right after its files: an interrupted run leaves no row pointing at a file it deleted
    // (beyond the group in hand, which the next `clip index` cleans up as it would any deleted file).
    await store.delete(gone);
  }
  return report;
}
