// What a blob's name lets us check, shared by downloads (while the bytes stream in) and by re-checks of the
// cache: an LFS file is named by its sha256, a small git-stored file by its git blob sha1, which is
// sha1("blob <size>\0" + content). Re-checking the cache runs on request (verify: true) because hashing
// gigabytes on every load would cost seconds.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { COMMIT_RE, SHA256_RE } from './cache.js';

export type HashKind = 'sha256' | 'git-sha1';

/** The check an ETag (a blob name) allows, or undefined when it is no hash we know. */
export function hashKind(etag: string): HashKind | undefined {
  return SHA256_RE.test(etag) ? 'sha256' : COMMIT_RE.test(etag) ? 'git-sha1' : undefined;
}

export const hashLabel = (k: HashKind) => (k === 'sha256' ? 'sha256' : 'git blob sha1');

/** A hash that digests a file of `size` bytes to its blob name; git's hashes the size before the content. */
export function contentHasher(kind: HashKind, size: number): Hash {
  return kind === 'sha256' ? createHash('sha256') : createHash('sha1').update(`blob ${size}\0`);
}

export async function hashFileInto(path: string, h: Hash): Promise<Hash> {
  // 4 MiB reads: checkpoints are hundreds of MB, and hashing is then bound by the digest, not the reads.
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  return h;
}

async function digest(path: string, kind: HashKind): Promise<string> {
  return (await hashFileInto(path, contentHasher(kind, (await stat(path)).size))).digest('hex');
}

async function* links(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* links(p);
    else if (e.isSymbolicLink()) yield p;
  }
}

/** Removes every link (and its blob) in `snapshotDir` whose blob is missing or does not hash to its name; returns them. */
export async function verifySnapshot(snapshotDir: string): Promise<string[]> {
  const bad: string[] = [];
  for await (const link of links(snapshotDir)) {
    const blob = resolve(dirname(link), await readlink(link));
    const name = basename(blob);
    const kind = hashKind(name);
    if (!kind) continue; // a blob named by some other etag: nothing to compare with
    const ok = await lstat(blob).then(() => digest(blob, kind).then((d) => d === name), () => false);
    if (!ok) {
      await rm(blob, { force: true });
      await rm(link, { force: true });
      bad.push(link.slice(snapshotDir.length + 1));
    }
  }
  return bad;
}
