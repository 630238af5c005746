// Server replicas on one Postgres: `clip index --db postgres://...` writes the index, two `clip serve` processes
// read it, and they answer every /search identically (they hold no index state of their own), including rows
// written after they started. Postgres here is PGlite behind pglite-server, started and stopped by this test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { startPglite, type PgServer } from './pglite.js';

const run = promisify(execFile);
const MODEL = fixture('hf-clip-tiny');
const IMAGES = ['astronaut.png', 'camera.png', 'coffee.png', 'horse.png', 'flower.jpg', 'china.jpg'];
let pg: PgServer | undefined;
let tmp = '';
const children: ChildProcess[] = [];

before(async () => {
  if (SKIP_FIXTURES) return;
  tmp = mkdtempSync(join(tmpdir(), 'clip-replicas-'));
  pg = await startPglite();
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function index(dir: string): Promise<{ count: number; embedded: number }> {
  const { stdout } = await run(process.execPath, [CLIP_BIN, 'index', dir, '--db', pg!.url, '--model', MODEL, '--no-cache', '--json']);
  return JSON.parse(stdout);
}

function serve(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLIP_BIN, 'serve', '--model', MODEL, '--no-cache', '--db', pg!.url, '--host', '127.0.0.1', '--port', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      const at = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (at) resolve({ port: Number(at[1]), child });
    });
    child.on('exit', (code) => reject(new Error(`clip serve exited (${code}): ${stderr}`)));
    setTimeout(() => reject(new Error(`clip serve did not start in 60 s: ${stderr}`)), 60_000).unref();
  });
}

async function search(port: number, body: object): Promise<{ results: { id: string; score: number }[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

test('two clip serve replicas on one Postgres answer /search identically, and both see rows indexed later', { skip: SKIP_FIXTURES, timeout: 180_000 }, async () => {
  const dir = join(tmp, 'photos');
  mkdirSync(dir);
  for (const f of IMAGES.slice(0, 5)) copyFileSync(fixture('common', 'images', f), join(dir, f));
  assert.deepEqual(await index(dir).then((r) => [r.count, r.embedded]), [5, 5]);

  const [a, b] = await Promise.all([serve(), serve()]);
  const health = await Promise.all([a, b].map(async (r) => (await fetch(`http://127.0.0.1:${r.port}/health`)).text()));
  for (const h of health) {
    assert.equal(JSON.parse(h).index.count, 5);
    assert.equal(JSON.parse(h).index.kind, 'postgres');
    assert.doesNotMatch(h, /postgres:postgres@/, 'the URL password is not shown'); // ours is "postgres"
  }

  const queries: object[] = [
    { query: 'a photo of a horse', k: 3 },
    { query: 'a cup of coffee', k: 10 },
    { query: '"a camera" + "a flower" - "a person"', k: 5 },
    { image: readFileSync(fixture('common', 'images', 'horse.png')).toString('base64'), k: 4 },
  ];
  // Both replicas at once: their queries interleave on the one server.
  const answers = await Promise.all(queries.flatMap((q) => [search(a.port, q), search(b.port, q)]));
  for (let i = 0; i < queries.length; i++) {
    const [x, y] = [answers[2 * i]!, answers[2 * i + 1]!];
    assert.deepEqual(x, y, `replicas differ on ${JSON.stringify(queries[i]).slice(0, 80)}`);
    assert.equal(x.results.length, Math.min(5, (queries[i] as { k: number }).k));
  }
  const byImage = answers[6]!.results[0]!;
  assert.equal(byImage.id, join(dir, 'horse.png'));
  assert.ok(byImage.score > 0.999, `an indexed image finds itself (score ${byImage.score})`);

  // A sixth image, indexed while they run: the next query on either replica finds it.
  copyFileSync(fixture('common', 'images', IMAGES[5]!), join(dir, IMAGES[5]!));
  assert.deepEqual(await index(dir).then((r) => [r.count, r.embedded]), [6, 1]);
  const q = { image: readFileSync(fixture('common', 'images', IMAGES[5]!)).toString('base64'), k: 6 };
  const [x, y] = await Promise.all([search(a.port, q), search(b.port, q)]);
  assert.deepEqual(x, y);
  assert.equal(x.results.length, 6);
  assert.equal(x.results[0]!.id, join(dir, IMAGES[5]!));

  for (const c of [a.child, b.child]) {
    const exited = new Promise((resolve) => c.once('exit', resolve));
    process.kill(c.pid!, 'SIGTERM');
    await exited;
  }
});
