// What the hub cache holds, for `clip models`: repos, their cached revisions (with the refs naming them),
// file counts and sizes. Reads only; every model repo is listed, whichever tool downloaded it.
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COMMIT_RE } from './cache.js';

export interface CachedRevision {
  commit: string;
  /** Branches/tags whose ref points here (main, v1.0, refs/pr/1). */
  refs: string[];
  files: number;
  /** Bytes of the files as a loader sees them. */
  size: number;
}

export interface CachedRepo {
  repo: string;
  path: string;
  /** Bytes on disk: each blob once, plus snapshot copies where symlinks were unavailable. */
  size: number;
  /** Bytes of unfinished downloads (blobs/*.incomplete). */
  partial: number;
  revisions: CachedRevision[];
}

function walk(dir: string, rel = ''): string[] {
  let list;
  try {
    list = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return list.flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), `${rel}${e.name}/`) : [`${rel}${e.name}`]));
}

// Follows links; a dangling one counts as absent.
const sizeOf = (p: string) => statSync(p, { throwIfNoEntry: false })?.size ?? 0;

function scanRepo(path: string, repo: string): CachedRepo {
  const refs = walk(join(path, 'refs')).map((n) => [n, readFileSync(join(path, 'refs', n), 'utf8').trim()] as const);
  let size = 0;
  let partial = 0;
  for (const b of walk(join(path, 'blobs'))) {
    if (b.endsWith('.incomplete')) partial += sizeOf(join(path, 'blobs', b));
    else size += sizeOf(join(path, 'blobs', b));
  }
  const commits = walk(join(path, 'snapshots')).map((f) => f.split('/')[0]!).filter((c, i, a) => COMMIT_RE.test(c) && a.indexOf(c) === i);
  const revisions = commits.map((commit) => {
    const dir = join(path, 'snapshots', commit);
    const files = walk(dir).filter((f) => statSync(join(dir, f), { throwIfNoEntry: false }));
    let bytes = 0;
    for (const f of files) {
      const n = sizeOf(join(dir, f));
      bytes += n;
      if (!lstatSync(join(dir, f)).isSymbolicLink()) size += n;
    }
    return { commit, refs: refs.filter(([, c]) => c === commit).map(([n]) => n), files: files.length, size: bytes };
  });
  return { repo, path, size, partial, revisions };
}

/** Model repos in the cache, sorted by id. */
export function scanCache(cacheDir: string): CachedRepo[] {
  let names: string[];
  try {
    names = readdirSync(cacheDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith('models--'))
    .sort()
    .map((n) => scanRepo(join(cacheDir, n), n.slice('models--'.length).split('--').join('/')));
}
