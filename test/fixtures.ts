// Where the shared reference fixtures live, and a helper that skips (with a message) only when they are absent.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled tests run from dist/test; the repository root is two levels up.
export const REPO_ROOT = resolve(here, '..', '..');
/** The `clip` command as installed (bin/clip.js runs dist/src/cli/main.js). */
export const CLIP_BIN = join(REPO_ROOT, 'bin', 'clip.js');
export const FIXTURES = process.env.CLIP_FIXTURES ?? resolve(REPO_ROOT, '..', 'shared', 'fixtures');
export const HAVE_FIXTURES = existsSync(join(FIXTURES, 'README.md'));
export const SKIP_FIXTURES: string | false = HAVE_FIXTURES ? false : `reference fixtures not found at ${FIXTURES} (../shared is absent)`;
export const fixture = (...p: string[]): string => join(FIXTURES, ...p);
