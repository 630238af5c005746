// What `npm pack` ships and what an install asks of Node (issue 19): no tests, CI, bench or scripts in the
// tarball; nothing locked that refuses this project's Node 20; LanceDB optional; the CUDA download denied.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './fixtures.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));

test('npm pack ships the built library, the bin, the web page, the bundled model, README and LICENSE only', () => {
  // --ignore-scripts: the file list is all this needs; the build has already run for the tests.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
  const top = new Set(files.map((f) => (f.startsWith('dist/src/') ? 'dist/src' : f.startsWith('src/web/') ? 'src/web' : f.split('/')[0])));
  assert.deepEqual([...top].sort(), ['LICENSE', 'README.md', 'bin', 'dist/src', 'models', 'package.json', 'src/web'].sort());
  for (const f of ['bin/clip.js', 'dist/src/index.js', 'dist/src/cli/main.js', 'models/emoji-clip/model.safetensors', 'src/web/index.html']) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
  assert.ok(!files.some((f) => /\.tgz$|^dist\/(test|bench)\/|^(test|bench|scripts|\.ci)\//.test(f)), 'no tests, bench, scripts, CI or tarballs');
});

test('Node 20 is enough: engines, and no locked package that asks for a newer Node', () => {
  assert.equal(pkg.engines.node, '>=20');
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
  const newer = Object.entries(lock.packages as Record<string, { engines?: { node?: string }; version?: string }>)
    .filter(([, p]) => /(>=?|\^|~)\s*(2[1-9]|[3-9]\d)/.test(p.engines?.node ?? ''))
    .map(([k, p]) => `${k}@${p.version} (${p.engines!.node})`);
  assert.deepEqual(newer, []);
});

test('installing clip-ts: LanceDB is an optional peer, onnxruntime-node\'s CUDA download is denied, no unknown npm config', () => {
  for (const name of ['@lancedb/lancedb', 'apache-arrow']) {
    assert.equal(pkg.dependencies[name], undefined, `${name} is not a hard dependency`);
    assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, `${name} is an optional peer`);
  }
  assert.equal(pkg.allowScripts['onnxruntime-node'], false);
  assert.equal(existsSync(join(REPO_ROOT, '.npmrc')), false, 'the old .npmrc key made npm warn "Unknown project config"');
});
