// The web page's files. They live in src/web as plain HTML/CSS/JS (no build step), and tsc copies no
// non-TS files, so they are read from the source folder: from dist/src/server/ that is ../../../src/web/.
// The package ships src/ (there is no "files" allow-list), so the same path works when installed.
// Only a fixed list of names is served, so no request path ever reaches the file system.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** src/web when running compiled (dist/src/server) or from source (src/server). */
export function webDir(): string {
  const candidates = [resolve(here, '..', '..', '..', 'src', 'web'), resolve(here, '..', 'web')];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!found) throw new Error(`web page files not found (looked in ${candidates.join(', ')})`);
  return found;
}

const FILES: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

export interface StaticFile {
  route: string;
  type: string;
  body: Buffer;
}

/** Read once at start-up: a few kilobytes, and a missing file fails the start, not a later request. */
export function loadWebFiles(dir = webDir()): StaticFile[] {
  return Object.entries(FILES).map(([route, [name, type]]) => ({ route, type, body: readFileSync(join(dir, name)) }));
}
