// Re-check cached blobs against their own names: sha256 for LFS blobs, the git blob sha1 for small files.
// Used on request (verify: true) because hashing gigabytes on every load would cost seconds.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { COMMIT_RE, SHA256_RE } from './cache.js';

async function digest(path: string, kind: 'sha256' | 'git'): Promise<string> {
  const h = createHash(kind === 'git' ? 'sha1' : 'sha256');
  if (kind === 'git') h.update(`blob ${(await stat(path)).size}\0`);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
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
    const kind = SHA256_RE.test(name) ? 'sha256' : COMMIT_RE.test(name) ? 'git' : undefined;
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
