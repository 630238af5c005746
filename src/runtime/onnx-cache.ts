// On-disk cache of the ONNX models we build from checkpoint weights. Building a tower (read, convert and
// transpose every weight, then serialize) costs more than creating its ORT session; with a cached file ORT
// reads the model itself and no JS copy of the weights is ever made.
//
// One file per (code, tower, build options, checkpoint files, tower config): `<tower>-<sha256>.onnx` under
// `$CLIP_CACHE/onnx` (see io/cache-root.ts). Files are written to a temporary name and renamed into place,
// and each ends with a metadata entry holding its own key, so a truncated or foreign file is recognized and
// rebuilt. Nothing is evicted automatically: `clearOnnxCache()` (or deleting the folder) empties it.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Graph } from '../graph/graph.js';
import { onnxTrailer, writeOnnxModel } from '../graph/onnx.js';
import { clipCacheRoot } from '../io/cache-root.js';
import type { TowerSource } from '../models/checkpoint.js';

/** Bump when what a cached file means changes in a way the code fingerprint below would not catch. */
export const ONNX_CACHE_FORMAT = 1;

const KEY_PROP = 'clip-ts.cache-key';

export type Tower = 'image' | 'text';

export interface OnnxCacheEvent {
  tower: Tower;
  /**
   * hit: the session was created from a cached file; miss: the tower is being built; write: the built model
   * was stored; invalid: an entry was incomplete or ORT refused it, so it was deleted (and the tower rebuilt);
   * skip: the built model could not be stored (over protobuf's 2 GiB limit, or the cache is not writable).
   */
  event: 'hit' | 'miss' | 'write' | 'invalid' | 'skip';
  path: string;
  reason?: string;
}

/** `$CLIP_ONNX_CACHE_DIR`, else `$CLIP_CACHE/onnx` (see clipCacheRoot). */
export function onnxCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLIP_ONNX_CACHE_DIR || join(clipCacheRoot(env), 'onnx');
}

/**
 * An explicit option wins, then CLIP_ONNX_CACHE (0/false/off/no, 1/true/on/yes). The default is on, except
 * under `node --test` (NODE_TEST_CONTEXT is set in its workers and the processes they spawn): test suites
 * build many throwaway checkpoints, and entries are never evicted, so they must not land in the user's cache.
 */
export function onnxCacheEnabled(option?: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (option !== undefined) return option;
  const v = env.CLIP_ONNX_CACHE?.trim().toLowerCase();
  if (v && ['0', 'false', 'off', 'no'].includes(v)) return false;
  if (v && ['1', 'true', 'on', 'yes'].includes(v)) return true;
  return !env.NODE_TEST_CONTEXT;
}

let codeHash: string | undefined;

/**
 * The compiled code that shapes a graph (readers, graph IR and serializer, towers, quantization, and
 * clip-model, which picks the dtype transforms): editing a tower must not serve graphs built by the old one.
 * About 40 small files, read once per process (a few ms).
 */
function codeFingerprint(): string {
  if (codeHash) return codeHash;
  const self = fileURLToPath(import.meta.url);
  const src = join(dirname(self), '..');
  const h = createHash('sha256');
  const code = (n: string) => /\.[cm]?[jt]s$/.test(n) && !n.endsWith('.d.ts');
  const add = (p: string, rel: string) => h.update(`${rel}\0`).update(readFileSync(p)).update('\0');
  const walk = (dir: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) walk(p, `${rel}/${n}`);
      else if (code(n)) add(p, `${rel}/${n}`);
    }
  };
  for (const d of ['io', 'graph', 'models']) walk(join(src, d), d);
  const model = join(dirname(self), `clip-model${extname(self)}`);
  if (existsSync(model)) add(model, 'runtime/clip-model');
  return (codeHash = h.digest('hex'));
}

export interface CacheEntry {
  key: string;
  path: string;
}

/**
 * The cache entry for a built tower, or undefined when a source file cannot be stat'ed. Source files are
 * fingerprinted by path, size and mtime, not hashed: hashing the weights would cost as much as building.
 */
export function onnxCacheEntry(tower: Tower, source: TowerSource, build: Record<string, unknown>, dir = onnxCacheDir()): CacheEntry | undefined {
  const files: { path: string; size: number; mtimeMs: number }[] = [];
  for (const path of source.files) {
    try {
      const st = statSync(path);
      files.push({ path, size: st.size, mtimeMs: st.mtimeMs });
    } catch {
      return undefined;
    }
  }
  const key = createHash('sha256')
    .update(JSON.stringify({ format: ONNX_CACHE_FORMAT, code: codeFingerprint(), tower, build, files, config: source.config }))
    .digest('hex');
  return { key, path: join(dir, `${tower}-${key}.onnx`) };
}

/** True when the file at `path` is a whole entry for `key`: it ends with the metadata written last. */
export function isCompleteEntry(entry: CacheEntry): boolean {
  const trailer = onnxTrailer({ [KEY_PROP]: entry.key });
  let fd: number | undefined;
  try {
    fd = openSync(entry.path, 'r');
    const size = fstatSync(fd).size;
    if (size <= trailer.length) return false;
    const tail = Buffer.alloc(trailer.length);
    if (readSync(fd, tail, 0, tail.length, size - tail.length) !== tail.length) return false;
    return tail.equals(trailer);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Serialize `g` into the entry (temporary file, then rename: readers never see a partial file, and two
 * processes storing the same entry both leave a whole one). Returns why it was not stored, or undefined.
 */
export function writeCacheEntry(entry: CacheEntry, g: Graph): string | undefined {
  const tmp = `${entry.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    mkdirSync(dirname(entry.path), { recursive: true });
    if (!writeOnnxModel(g, tmp, { [KEY_PROP]: entry.key })) return 'model is over the 2 GiB protobuf limit';
    renameSync(tmp, entry.path);
    return undefined;
  } catch (e) {
    rmSync(tmp, { force: true });
    return (e as Error).message;
  }
}

export function removeCacheEntry(entry: CacheEntry): void {
  rmSync(entry.path, { force: true });
}

export interface OnnxCacheUsage {
  dir: string;
  files: number;
  bytes: number;
}

export function onnxCacheUsage(dir = onnxCacheDir()): OnnxCacheUsage {
  let files = 0;
  let bytes = 0;
  if (existsSync(dir)) {
    for (const n of readdirSync(dir)) {
      try {
        const st = statSync(join(dir, n));
        if (st.isFile()) {
          files++;
          bytes += st.size;
        }
      } catch {
        // removed meanwhile
      }
    }
  }
  return { dir, files, bytes };
}

/** Delete every cached model (and leftover temporary files); returns what was freed. */
export function clearOnnxCache(dir = onnxCacheDir()): OnnxCacheUsage {
  const usage = onnxCacheUsage(dir);
  rmSync(dir, { recursive: true, force: true });
  return usage;
}
