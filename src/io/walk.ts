// The one folder walker (inputs, datasets, caption folders, the indexer), with one policy for all of them:
// hidden entries are skipped (.git, thumbnail caches, macOS `._x.jpg` resource forks that look like images but
// are not); symlinked files and folders are followed like real ones, but each real folder is visited once
// (device + inode), so a link cycle or two links to one folder end the walk instead of looping it; entries are
// visited in name order, so every caller sees the same deterministic list; nesting is bounded.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Deepest folder nesting walked; deeper is refused (no real photo library nests this far). */
export const MAX_WALK_DEPTH = 64;

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Files under `root` for which `keep(rel)` holds (`rel`: the path below root, `/`-separated), as `join(root, rel)`.
 * `maxDepth` stops descending (1 = root's own files only) without error.
 */
export function walkFiles(root: string, keep: (rel: string) => boolean, maxDepth = MAX_WALK_DEPTH): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (dir: string, rel: string, depth: number): void => {
    const st = statSync(dir);
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (depth > MAX_WALK_DEPTH) throw new Error(`${dir}: folders nested more than ${MAX_WALK_DEPTH} deep`);
    let names: string[];
    try {
      names = readdirSync(dir).sort(byName);
    } catch (e) {
      throw new Error(`cannot read folder ${dir}: ${(e as Error).message}`);
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      // statSync follows links; a dangling link or a file gone since readdir is not a file we can use.
      const s = statSync(path, { throwIfNoEntry: false });
      if (s?.isDirectory()) {
        if (depth + 1 < maxDepth) visit(path, r, depth + 1);
      } else if (s?.isFile() && keep(r)) out.push(path);
    }
  };
  visit(root, '', 0);
  return out;
}
