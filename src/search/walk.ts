// Image files for the indexer, through the one folder walker (io/walk.ts), each with its size and mtime.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { walkFiles } from '../io/walk.js';
import { IMAGE_EXTENSIONS, isImagePath } from '../image/formats.js';

export { IMAGE_EXTENSIONS, isImagePath };

export interface FoundFile {
  path: string;
  size: number;
  mtime: number;
}

/** All image files under `roots` (directories or single files), absolute and sorted, each with size and mtime. */
export async function findImages(roots: string[]): Promise<FoundFile[]> {
  const seen = new Map<string, FoundFile>();
  const add = async (p: string) => {
    try {
      const st = await stat(p);
      if (st.isFile()) seen.set(p, { path: p, size: st.size, mtime: st.mtimeMs });
    } catch {
      // Vanished since the walk, or a dangling link: not an image we can index.
    }
  };
  for (const r of roots.map((x) => resolve(x))) {
    const st = await stat(r);
    if (st.isDirectory()) for (const p of walkFiles(r, isImagePath)) await add(p);
    else await add(r);
  }
  return [...seen.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
