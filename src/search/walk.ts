// Minimal image finder for the indexer: recursive, deterministic order, symlinked directories not followed
// (cycles), hidden directories skipped (.git, .thumbnails caches).
import { readdir, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';

/** What the image decoder reads (src/image/decode.ts): JPEG, PNG, WebP. */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export interface FoundFile {
  path: string;
  size: number;
  mtime: number;
}

export const isImagePath = (p: string) => IMAGE_EXTENSIONS.has(extname(p).toLowerCase());

/** All image files under `roots` (directories or single files), absolute and sorted, each with size and mtime. */
export async function findImages(roots: string[]): Promise<FoundFile[]> {
  const seen = new Map<string, FoundFile>();
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (!e.name.startsWith('.')) await visit(p);
      } else if ((e.isFile() || e.isSymbolicLink()) && isImagePath(p)) {
        await add(p);
      }
    }
  };
  const add = async (p: string) => {
    try {
      const st = await stat(p);
      if (st.isFile()) seen.set(p, { path: p, size: st.size, mtime: st.mtimeMs });
    } catch {
      // Vanished between readdir and stat, or a dangling link: not an image we can index.
    }
  };
  for (const r of roots.map((x) => resolve(x))) {
    const st = await stat(r);
    if (st.isDirectory()) await visit(r);
    else await add(r);
  }
  return [...seen.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
