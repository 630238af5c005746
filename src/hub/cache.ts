// The Hugging Face hub cache layout, shared with huggingface_hub (Python), hf-hub (Rust) and @huggingface/hub:
//   <cache>/models--org--name/blobs/<etag>          file contents, named by sha256 (LFS) or git blob sha
//   <cache>/models--org--name/refs/<revision>       the commit hash a branch/tag last resolved to
//   <cache>/models--org--name/snapshots/<commit>/…  relative symlinks into ../../blobs
//   <cache>/models--org--name/.no_exist/<commit>/…  empty markers for files known to be absent
//   <cache>/.locks/models--org--name/<etag>.lock
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { HubError } from './errors.js';

export const COMMIT_RE = /^[0-9a-f]{40}$/;
export const SHA256_RE = /^[0-9a-f]{64}$/;

export const repoFolderName = (repo: string) => `models--${repo.split('/').join('--')}`;

/** A path inside the repo that stays inside it once joined (file names come from the hub's listing). */
export function checkRelPath(p: string, what: string): string {
  const parts = p.split('/');
  if (!p || p.startsWith('/') || p.includes('\\') || p.includes('\0') || parts.some((x) => x === '' || x === '.' || x === '..')) {
    throw new HubError(`refusing unsafe ${what} "${p}"`, 'invalid');
  }
  return p;
}

const tmpName = (p: string) => `${p}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/** Write through a temporary name and rename, so readers never see a partial file. */
export async function writeAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export class RepoCache {
  readonly root: string;
  constructor(readonly cacheDir: string, readonly repo: string) {
    this.root = join(cacheDir, repoFolderName(repo));
  }

  blob(etag: string): string {
    // Etags name files: accept only what a hash (or a plain token) looks like.
    if (!/^[\w.-]+$/.test(etag) || etag.startsWith('.')) throw new HubError(`unusable ETag "${etag}" from the hub for ${this.repo}`, 'invalid');
    return join(this.root, 'blobs', etag);
  }
  snapshot(commit: string): string {
    return join(this.root, 'snapshots', commit);
  }
  lock(etag: string): string {
    return join(this.cacheDir, '.locks', repoFolderName(this.repo), `${etag}.lock`);
  }
  noExist(commit: string, file: string): string {
    return join(this.root, '.no_exist', commit, file);
  }

  /** Commit hash for a revision: itself when it is one, else refs/<revision> if cached. */
  commitFor(revision: string): string | undefined {
    if (COMMIT_RE.test(revision)) return revision;
    try {
      const c = readFileSync(join(this.root, 'refs', checkRelPath(revision, 'revision')), 'utf8').trim();
      return COMMIT_RE.test(c) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision !== commit) await writeAtomic(join(this.root, 'refs', checkRelPath(revision, 'revision')), commit);
  }

  async markMissing(commit: string, files: string[]): Promise<void> {
    for (const f of files) {
      const p = this.noExist(commit, f);
      if (!existsSync(p)) await writeAtomic(p, '');
    }
  }

  /**
   * snapshots/<commit>/<file> -> ../../blobs/<etag> (relative, so the cache can move). Where symlinks fail
   * (Windows without developer mode, some network filesystems) the blob is copied instead, as huggingface_hub
   * does. Built under a temporary name and renamed over, so the path is never half there.
   */
  async link(commit: string, file: string, etag: string, useSymlinks = true): Promise<string> {
    const dst = join(this.snapshot(commit), checkRelPath(file, 'file name'));
    const src = this.blob(etag);
    await mkdir(dirname(dst), { recursive: true });
    const tmp = tmpName(dst);
    try {
      if (!useSymlinks) throw new Error('symlinks disabled');
      await symlink(relative(dirname(dst), src), tmp);
    } catch {
      await rm(tmp, { force: true });
      await copyFile(src, tmp);
    }
    await rename(tmp, dst);
    return dst;
  }
}
