// Incremental, crash-safe indexing of image folders into a VectorStore.
//
// Crash safety comes from the store, not from a journal: each batch is one atomic upsert keyed by path, and
// what is "done" is recomputed from the store on every run (path + size + mtime, else the content hash).
// Killed at any point, a rerun sees exactly the batches that committed, redoes only the rest, and cannot
// duplicate a file. Deletions run last so that a renamed file's vector is found (by hash) before the old
// path goes; a crash in between only leaves the old path for the rerun to delete.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import sharp from 'sharp';
import type { ImageMeta, VectorRecord, VectorStore } from './store.js';
import { findImages, type FoundFile } from './walk.js';

/** The part of ClipModel the indexer uses. */
export interface ImageEmbedder {
  encodeImages(inputs: Uint8Array[], opts?: { batchSize?: number }): Promise<{ embedding?: Float32Array; error?: string }[]>;
}

export interface IndexOptions {
  /** Images per model batch and per commit (default 64). */
  batchSize?: number;
  /** Hash every file even when path, size and mtime are unchanged (finds edits that preserved mtime). */
  rehash?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface IndexStats {
  /** Images found under the roots. */
  files: number;
  /** Skipped without reading: path, size and mtime as indexed. */
  unchanged: number;
  /** Run through the image tower. */
  embedded: number;
  /** New or changed paths whose content was already indexed (a copy, a rename, a touch): vector reused. */
  reused: number;
  /** Entries removed: file gone, or now unreadable. */
  deleted: number;
  /** Images that could not be read or decoded; the run goes on without them. */
  failed: { path: string; error: string }[];
  /** Commits made. */
  batches: number;
}

interface Prepared {
  file: FoundFile;
  meta?: ImageMeta;
  bytes?: Uint8Array;
  error?: string;
}

const under = (p: string, roots: string[]) => roots.some((r) => p === r || p.startsWith(r.endsWith(sep) ? r : r + sep));

/** Read, hash and measure one file. Errors are data here: a bad image must not stop the run. */
async function prepare(file: FoundFile): Promise<Prepared> {
  try {
    const bytes = await readFile(file.path);
    const hash = createHash('sha256').update(bytes).digest('hex');
    const m = await sharp(bytes).metadata();
    if (!m.width || !m.height) throw new Error('no image size in header');
    return { file, bytes, meta: { path: file.path, size: bytes.length, mtime: file.mtime, width: m.width, height: m.height, hash } };
  } catch (e) {
    return { file, error: (e as Error).message };
  }
}

export async function indexFolders(model: ImageEmbedder, store: VectorStore, roots: string[], opts: IndexOptions = {}): Promise<IndexStats> {
  const batchSize = Math.max(1, opts.batchSize ?? 64);
  const absRoots = roots.map((r) => resolve(r));
  const files = await findImages(absRoots);
  const stats: IndexStats = { files: files.length, unchanged: 0, embedded: 0, reused: 0, deleted: 0, failed: [], batches: 0 };

  const indexed = new Map<string, ImageMeta>();
  const byHash = new Map<string, string>();
  for await (const e of store.entries()) {
    indexed.set(e.id, e.meta);
    byHash.set(e.meta.hash, e.id);
  }

  const work = files.filter((f) => {
    const old = indexed.get(f.path);
    const same = old && old.size === f.size && old.mtime === f.mtime && !opts.rehash;
    if (same) stats.unchanged++;
    return !same;
  });
  const onDisk = new Set(files.map((f) => f.path));
  const stale = new Set([...indexed.keys()].filter((id) => under(id, absRoots) && !onDisk.has(id)));
  const st: RunState = { stats, byHash, indexed, stale };

  // Reading and hashing the next batch overlaps embedding the current one.
  const batches = Array.from({ length: Math.ceil(work.length / batchSize) }, (_, i) => work.slice(i * batchSize, (i + 1) * batchSize));
  let next = batches.length ? Promise.all(batches[0]!.map(prepare)) : undefined;
  let done = 0;
  opts.onProgress?.(0, work.length);
  for (let b = 0; b < batches.length; b++) {
    const items = await next!;
    next = b + 1 < batches.length ? Promise.all(batches[b + 1]!.map(prepare)) : undefined;
    const records = await buildRecords(model, store, items, st);
    if (records.length) {
      await store.upsert(records);
      stats.batches++;
      for (const r of records) byHash.set(r.meta.hash, r.id);
    }
    done += items.length;
    opts.onProgress?.(done, work.length);
  }

  if (stale.size) {
    await store.delete([...stale]);
    stats.deleted = stale.size;
    stats.batches++;
  }
  await store.optimize();
  return stats;
}

/** Per-run state the batches share. */
interface RunState {
  stats: IndexStats;
  /** A content hash -> an id holding it (the vector is read back from the store, keyed by its actual hash). */
  byHash: Map<string, string>;
  indexed: Map<string, ImageMeta>;
  /** Ids to delete at the end. */
  stale: Set<string>;
}

/** Turn one batch of prepared files into records: reuse vectors by content hash, embed the rest once each. */
async function buildRecords(model: ImageEmbedder, store: VectorStore, items: Prepared[], st: RunState): Promise<VectorRecord[]> {
  type Good = Prepared & { meta: ImageMeta };
  const good: Good[] = [];
  for (const it of items) {
    if (it.meta) good.push(it as Good);
    else fail(it.file.path, it.error!, st);
  }
  const vectors = new Map<string, Float32Array>();
  // Content already in the index (this path touched, or a copy/rename of another path): fetch, don't embed.
  const known = [...new Set(good.map((g) => st.byHash.get(g.meta.hash)).filter((id): id is string => id !== undefined))];
  for (const r of known.length ? await store.get(known) : []) vectors.set(r.meta.hash, r.vector);
  // One model run per distinct new content, even when several files in the batch share it.
  const toEmbed = new Map<string, Good>();
  for (const g of good) if (!vectors.has(g.meta.hash) && !toEmbed.has(g.meta.hash)) toEmbed.set(g.meta.hash, g);
  const embedList = [...toEmbed.values()];
  if (embedList.length) {
    const res = await model.encodeImages(embedList.map((g) => g.bytes!), { batchSize: embedList.length });
    res.forEach((r, i) => {
      const g = embedList[i]!;
      if (r.embedding) {
        vectors.set(g.meta.hash, r.embedding);
        st.stats.embedded++;
      } else {
        // The model's message names the buffer; name the file instead.
        fail(g.file.path, (r.error ?? 'no embedding').replace(`<buffer ${i}>`, g.file.path), st);
      }
    });
  }
  const records: VectorRecord[] = [];
  for (const g of good) {
    const v = vectors.get(g.meta.hash);
    if (!v) continue; // failed above
    records.push({ id: g.file.path, vector: v, meta: g.meta });
    if (toEmbed.get(g.meta.hash) !== g) st.stats.reused++;
  }
  return records;
}

/** A file that cannot be indexed is reported, and an older entry for its path (now wrong) is removed at the end. */
function fail(path: string, error: string, st: RunState): void {
  st.stats.failed.push({ path, error });
  if (st.indexed.has(path)) st.stale.add(path);
}

/** What one queued batch did (a queue worker's job result). */
export interface FilesStats {
  files: number;
  embedded: number;
  reused: number;
  failed: { path: string; error: string }[];
}

/**
 * Embed and upsert one given list of files (a queue job): no listing, no deletions, one atomic upsert keyed by
 * path, so running the same list twice (a redelivered job) writes the same rows again and adds none. A file
 * gone or unreadable by now is reported in `failed`.
 */
export async function indexFiles(model: ImageEmbedder, store: VectorStore, paths: string[]): Promise<FilesStats> {
  const stats: IndexStats = { files: paths.length, unchanged: 0, embedded: 0, reused: 0, deleted: 0, failed: [], batches: 0 };
  const found = new Map<string, FoundFile>();
  for (const p of paths) {
    // Job data is input: only absolute paths, each a file looked at by itself (a folder is never walked).
    if (!isAbsolute(p)) {
      stats.failed.push({ path: p, error: 'not an absolute path' });
      continue;
    }
    // Stat now, not at enqueue time: the row must describe the bytes that were embedded.
    const st = await stat(p).catch(() => undefined);
    if (st?.isFile()) found.set(p, { path: p, size: st.size, mtime: st.mtimeMs });
    else stats.failed.push({ path: p, error: 'no longer there (or not a file)' });
  }
  const st: RunState = { stats, byHash: new Map(), indexed: new Map(), stale: new Set() };
  const records = await buildRecords(model, store, await Promise.all([...found.values()].map(prepare)), st);
  if (records.length) await store.upsert(records);
  return { files: paths.length, embedded: stats.embedded, reused: stats.reused, failed: stats.failed };
}
