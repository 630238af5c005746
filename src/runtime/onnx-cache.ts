// On-disk cache of the ONNX models we build from checkpoint weights. Building a tower (read, convert and
// transpose every weight, then serialize) costs more than creating its ORT session; with a cached file ORT
// reads the model itself and no JS copy of the weights is ever made.
//
// One file per (code, tower, build options, checkpoint content, tower config): `<tower>-<sha256>.onnx` under
// `$CLIP_CACHE/onnx` (see io/cache-root.ts). Files are written to a temporary name and renamed into place,
// and each ends with a metadata entry holding its own key, so a truncated or foreign file is recognized and
// rebuilt. Nothing is evicted automatically: `clearOnnxCache()` (or deleting the folder) empties it.
import { createHash } from 'node:crypto';
import {
  closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync,
  writeFileSync, type BigIntStats,
} from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Graph } from '../graph/graph.js';
import { onnxTrailer, writeOnnxModel } from '../graph/onnx.js';
import { clipCacheRoot } from '../io/cache-root.js';
import type { TowerSource } from '../models/checkpoint.js';
import { hashFileInto } from '../hub/verify.js';

/** Bump when what a cached file means changes in a way the code fingerprint below would not catch. */
export const ONNX_CACHE_FORMAT = 2;

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

// Source files are keyed on their content, not on path + size + mtime: a checkpoint replaced by one of the
// same size with its mtime kept (cp -p, rsync -t, tar, a careless utimes) would otherwise be served the old
// graph. Hashing 600 MB costs 1-2 s, so each file's sha256 is memoized in a small sidecar
// (<cache>/sources/<sha256 of the path>.json) together with the file's dev, inode, size, mtime and ctime,
// and reused only while all five match. ctime is what makes this safe: no user call can set it, and the
// kernel moves it to "now" on every write, rename onto the path (a new inode, too) and utimes, so a file whose
// mtime was put back still misses its memo and is hashed again. What remains (editing the raw disk, setting
// the system clock back) is not an accident. A warm load thus costs a stat and a small read per source file.
// As git does with "racily clean" files, a file changed less than RACY_NS before it was hashed is not
// memoized: a write within the same timestamp tick as the stat would leave ctime as it was.
const memoDir = (dir: string) => join(dir, 'sources');
const RACY_NS = 2_000_000_000n; // covers filesystems with 1-2 s timestamps (ext3, FAT); ext4/xfs/btrfs tick in ms

/** The stat fields a memo is valid for, exact (nanoseconds, 64-bit inodes) as strings. */
const identity = (st: BigIntStats) =>
  ({ dev: String(st.dev), ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) });

/** Hashes being computed in this process, so the two towers of one checkpoint read its weights once. */
const hashing = new Map<string, Promise<string>>();

const sha256File = async (path: string): Promise<string> => (await hashFileInto(path, createHash('sha256'))).digest('hex');

/** sha256 of a file's content, from its memo when the file is provably the one hashed; undefined if unreadable. */
export async function contentHash(path: string, dir = onnxCacheDir()): Promise<string | undefined> {
  let id: ReturnType<typeof identity>;
  const started = BigInt(Date.now()) * 1_000_000n;
  try {
    id = identity(statSync(path, { bigint: true }));
  } catch {
    return undefined;
  }
  const memo = join(memoDir(dir), `${createHash('sha256').update(path).digest('hex')}.json`);
  try {
    const m = JSON.parse(readFileSync(memo, 'utf8'));
    if (Object.entries(id).every(([k, v]) => m?.[k] === v) && typeof m.sha256 === 'string' && /^[0-9a-f]{64}$/.test(m.sha256)) return m.sha256;
  } catch {
    // no memo yet, or a damaged one: hash
  }
  const inFlight = `${path}\0${JSON.stringify(id)}`;
  let p = hashing.get(inFlight);
  if (!p) {
    p = sha256File(path).finally(() => hashing.delete(inFlight));
    hashing.set(inFlight, p);
  }
  let sha256: string;
  try {
    sha256 = await p;
  } catch {
    return undefined;
  }
  // A file changed while it was read must not be memoized under its old identity.
  try {
    const after = identity(statSync(path, { bigint: true }));
    if (Object.entries(id).some(([k, v]) => after[k as keyof typeof after] !== v)) return sha256;
    if (BigInt(id.ctimeNs) > started - RACY_NS) return sha256;
    mkdirSync(memoDir(dir), { recursive: true });
    const tmp = `${memo}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, JSON.stringify({ path, ...id, sha256 }));
    renameSync(tmp, memo);
  } catch {
    // a read-only cache: hash again next time
  }
  return sha256;
}

/**
 * The cache entry for a built tower, or undefined when a source file cannot be read. Keyed on the sha256 of
 * every source file's content (memoized, see above), not on its path or times.
 */
export async function onnxCacheEntry(tower: Tower, source: TowerSource, build: Record<string, unknown>, dir = onnxCacheDir()): Promise<CacheEntry | undefined> {
  const files: string[] = [];
  for (const path of source.files) {
    const sha256 = await contentHash(path, dir);
    if (sha256 === undefined) return undefined;
    files.push(sha256);
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
