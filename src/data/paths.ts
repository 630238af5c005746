// Where the prepared benchmark lives. It is rebuilt from packages by `npm run data` and never
// committed, so it sits in the user's cache next to the other clip-ts caches.
import { join } from 'node:path';
import { clipCacheRoot } from '../io/cache-root.js';

export { clipCacheRoot };

export function dataRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(clipCacheRoot(env), 'data');
}

/** Fixed layout under the data root; see the comment at the top of manifests.ts. */
export const layout = (root: string) => ({
  root,
  packages: join(root, 'packages'),
  pkg: (id: string) => join(root, 'packages', id),
  images: (style: string) => join(root, 'images', style),
  manifests: join(root, 'manifests'),
  manifest: (split: string) => join(root, 'manifests', `${split}.jsonl`),
  summary: join(root, 'manifests', 'summary.json'),
  /** Results computed from other steps' outputs (e.g. which drawings look like a Tux Paint stamp). */
  derived: (name: string) => join(root, 'derived', name),
});
