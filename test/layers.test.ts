// Imports flow one way: a folder of src/ may import only from folders of a lower layer (or from itself).
// The order is the project's layering (io → graph → models → runtime → tasks → train → cli/server); the
// folders that sit beside io (image decoding, tokenizers) share its level above io. The hub sits between
// models and runtime: which files a repo needs is the family registry's answer (models/families).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from './fixtures.js';

export const LAYERS: Record<string, number> = {
  io: 0,
  graph: 1, image: 1, text: 1,
  models: 2,
  hub: 2.5,
  runtime: 3,
  tasks: 4,
  train: 5, search: 5, data: 5,
  server: 6, web: 6,
  cli: 7,
  recipes: 8,
  // src/index.ts and the other entry points at the root of src/ may import anything.
  '.': 9,
};

const SRC = join(REPO_ROOT, 'src');

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (name.endsWith('.ts')) yield p;
  }
}

const folderOf = (file: string): string => {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? '.' : rel[0]!;
};

/** Relative module specifiers of static imports, re-exports and dynamic imports. */
function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"](\.[^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

test('every folder of src/ has a layer', () => {
  const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  for (const f of folders) assert.ok(f in LAYERS, `src/${f} has no layer in test/layers.test.ts`);
});

test('imports flow one way: no folder imports from a higher or equal layer but its own', () => {
  const upward: string[] = [];
  let checked = 0;
  for (const file of sources(SRC)) {
    const from = folderOf(file);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!target.startsWith(SRC)) continue;
      const to = folderOf(target);
      checked++;
      if (to !== from && LAYERS[to]! >= LAYERS[from]!) upward.push(`${relative(REPO_ROOT, file)} (${from}) imports ${spec} (${to})`);
    }
  }
  assert.ok(checked > 100, `only ${checked} imports found: the scanner is broken`);
  assert.deepEqual(upward, []);
});

test('the import scanner sees static, re-exported and dynamic imports', () => {
  const text = "import { a } from './x.js';\nexport { b } from '../y/z.js';\nimport type {\n  C,\n} from '../w.js';\nconst m = await import('../v.js');\nimport 'node:fs';";
  assert.deepEqual(importsOf(text), ['./x.js', '../y/z.js', '../w.js', '../v.js']);
});
