// What a new user meets first (issue 19): the bundled model says what it is, labels as people type them,
// errors that name the input, the package's version, and jobs and servers that find each other's defaults.
// Uses the bundled model and the example drawings only: needs nothing from ../shared.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { displayWidth, table } from '../src/cli/table.js';
import { labelSetWarning, splitLabels } from '../src/tasks/labels.js';
import { CLIP_BIN, REPO_ROOT } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'clip-first-use-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const PIZZA = join(REPO_ROOT, 'examples', 'pizza.png');
const SUN = join(REPO_ROOT, 'examples', 'sun.png');

function clip(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLIP_BIN, ...args], { encoding: 'utf8', cwd: opts.cwd, env: { ...process.env, ...opts.env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('clip --version prints the package version', () => {
  const r = clip(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
});

test('the bundled model says once what it is and how to get a real one; an explicit model does not', () => {
  const r = clip(['classify', PIZZA, SUN, '--labels', 'pizza,sun', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.match(/bundled demo model emoji-clip/g)?.length, 1, r.stderr);
  assert.match(r.stderr, /--model ViT-B-32/);
  const own = clip(['classify', PIZZA, '--labels', 'pizza,sun', '--json', '--model', join(REPO_ROOT, 'models', 'emoji-clip')]);
  assert.equal(own.code, 0, own.stderr);
  assert.doesNotMatch(own.stderr, /bundled demo model/);
});

test('labels: \\, and --label keep commas, full-width commas split, one label warns', () => {
  assert.deepEqual(splitLabels('a\\, b,c'), ['a, b', 'c']);
  assert.deepEqual(splitLabels('披萨，狗，猫'), ['披萨', '狗', '猫']);
  assert.deepEqual(splitLabels(' x ,, y\\\\'), ['x', 'y\\']);
  assert.equal(labelSetWarning(['a', 'b']), undefined);
  assert.match(labelSetWarning(['a'])!, /always 1\.0/);

  const r = clip(['classify', PIZZA, '--labels', 'pizza\\, with cheese,sun', '--label', 'red, heart', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(Object.keys(JSON.parse(r.stdout)[0].scores), ['pizza, with cheese', 'sun', 'red, heart']);
  const zh = clip(['classify', PIZZA, '--labels', '披萨，狗，猫', '--json']);
  assert.deepEqual(Object.keys(JSON.parse(zh.stdout)[0].scores), ['披萨', '狗', '猫']);
  const one = clip(['classify', PIZZA, '--labels', 'pizza', '--json']);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stderr, /warning: one label \("pizza"\): a softmax over one label is always 1\.0/);
  const dup = clip(['classify', PIZZA, '--labels', 'sun,sun']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /label "sun" is given twice/);
});

test('tables align CJK columns by display width', () => {
  assert.equal(displayWidth('披萨'), 4);
  assert.equal(displayWidth('pizza'), 5);
  const lines = table(['label', 'score'], [['披萨', '0.9'], ['pizza', '0.1']]).split('\n');
  const col = lines.map((l) => displayWidth(l.slice(0, l.lastIndexOf(' ') + 1)));
  assert.deepEqual(new Set(col).size, 1, lines.join('\n'));
});

test('errors name the input: --labels-file, clip index, clip embed with nothing to embed, eval template sets', () => {
  const lf = clip(['classify', PIZZA, '--labels-file', join(tmp, 'nosuch.txt')]);
  assert.equal(lf.code, 1);
  assert.equal(lf.stderr.trim(), `clip: --labels-file ${join(tmp, 'nosuch.txt')}: no such file`);
  const ix = clip(['index', join(tmp, 'nosuchdir'), '--db', join(tmp, 'x.clipvec')]);
  assert.equal(ix.code, 1);
  assert.equal(ix.stderr.trim(), `clip: ${join(tmp, 'nosuchdir')}: no such file or folder to index`);
  const em = clip(['embed']);
  assert.equal(em.code, 1);
  assert.match(em.stderr, /nothing to embed: give --image FILE or --text TEXT/);
  assert.equal(em.stdout, '');
  const help = clip(['eval', 'zeroshot', '--help']);
  assert.match(help.stdout.replace(/\s+/g, ' '), /built-in set \(label, plain, photo, ensemble, zh\)/);
  assert.doesNotMatch(help.stdout, /ensemble7/);
});

test('embed --out: the bundled model is recorded by name, so the same job resumes from another directory', () => {
  const a = join(tmp, 'cwd-a');
  const b = join(tmp, 'cwd-b');
  mkdirSync(a);
  mkdirSync(b);
  const list = join(tmp, 'inputs.txt');
  writeFileSync(list, `${PIZZA}\n${join(tmp, 'missing.png')}\n`);
  const out = join(tmp, 'emb.jsonl');
  const first = clip(['embed', '--input', `list:${list}`, '--out', out], { cwd: a });
  assert.equal(first.code, 3, first.stderr); // the missing image fails; the progress log stays for a retry
  assert.match(readFileSync(`${out}.progress`, 'utf8').split('\n')[0]!, /"model":"emoji-clip"/);
  const again = clip(['embed', '--input', `list:${list}`, '--out', out], { cwd: b });
  assert.equal(again.code, 3, again.stderr);
  assert.match(again.stderr, /1 done before/);
  writeFileSync(list, `${PIZZA}\n${SUN}\n`);
  const done = clip(['embed', '--input', `list:${list}`, '--out', out], { cwd: b });
  assert.equal(done.code, 0, done.stderr);
  assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 2);
  assert.match(done.stderr, /1 new, 1 done before/);
});

test('clip serve uses the default index of clip index when no --db is given', { timeout: 120_000 }, async () => {
  const env = { XDG_DATA_HOME: join(tmp, 'xdg') };
  const ix = clip(['index', join(REPO_ROOT, 'examples'), '--json'], { env });
  assert.equal(ix.code, 0, ix.stderr);
  const db = JSON.parse(ix.stdout).db as string;
  assert.equal(db, join(tmp, 'xdg', 'clip-ts', 'index.lance'));
  const child = spawn(process.execPath, [CLIP_BIN, 'serve', '--port', '0'], { env: { ...process.env, ...env } });
  let err = '';
  try {
    const line = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        const m = /listening on .*\n/.exec(err);
        if (m) resolve(m[0]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    assert.ok(line.includes(`(index ${db}, 5 images)`), line);
    const base = /listening on (\S+)/.exec(line)![1]!;
    const res = await fetch(`${base}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'pizza', k: 1 }) });
    assert.equal(res.status, 200, await res.clone().text());
  } finally {
    child.kill('SIGTERM');
  }
});

// LanceDB and Arrow are optional peers: a resolve hook makes them missing, as in an app that never installed them.
const HOOK = `export async function resolve(s, c, next) {
  if (/^(@lancedb\\/|apache-arrow)/.test(s)) throw Object.assign(new Error('not installed: ' + s), { code: 'ERR_MODULE_NOT_FOUND' });
  return next(s, c);
}`;
writeFileSync(join(tmp, 'no-lance-hook.mjs'), HOOK);
writeFileSync(join(tmp, 'no-lance.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(tmp, 'no-lance-hook.mjs')).href)});\n`);
const WITHOUT_LANCE = ['--import', pathToFileURL(join(tmp, 'no-lance.mjs')).href];

test('without LanceDB installed: the library imports, clip index says what to install, the exact store works', () => {
  const lib = spawnSync(process.execPath, [...WITHOUT_LANCE, '--input-type=module', '-e',
    `const m = await import(${JSON.stringify(join(REPO_ROOT, 'dist', 'src', 'index.js'))}); const s = await import(${JSON.stringify(join(REPO_ROOT, 'dist', 'src', 'search', 'index.js'))}); console.log(typeof m.ClipModel, typeof s.openStore);`], { encoding: 'utf8' });
  assert.equal(lib.status, 0, lib.stderr);
  assert.equal(lib.stdout.trim(), 'function function');
  const run = (args: string[]) => spawnSync(process.execPath, [...WITHOUT_LANCE, CLIP_BIN, ...args], { encoding: 'utf8' });
  const lance = run(['index', join(REPO_ROOT, 'examples'), '--db', join(tmp, 'nolance.lance')]);
  assert.equal(lance.status, 1);
  assert.match(lance.stderr, /LanceDB store needs the optional packages @lancedb\/lancedb and apache-arrow: `npm i @lancedb\/lancedb apache-arrow@18`, or give --db a path ending in \.clipvec/);
  assert.doesNotMatch(lance.stderr, /bundled demo model/, 'fails before loading the model');
  const exact = run(['index', join(REPO_ROOT, 'examples'), '--db', join(tmp, 'nolance.clipvec'), '--json']);
  assert.equal(exact.status, 0, exact.stderr);
  assert.equal(JSON.parse(exact.stdout).count, 5);
});
