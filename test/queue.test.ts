// Distributed indexing, end to end with real engines: Debian's redis-server (started here on a free loopback
// port, in a temp dir, without persistence) as the BullMQ queue, PGlite behind pglite-server as the shared
// Postgres. One worker is killed with SIGKILL mid-run and another starts late; every image must end up indexed
// exactly once, with the vectors a single-process `clip index` computes, and `clip index --queue --wait` must
// see the whole fleet's work through.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { startPglite, type PgServer } from './pglite.js';
import { ExactStore } from '../src/search/exact-store.js';
import { PgvectorStore } from '../src/search/pg-store.js';
import { QUEUE_NAME } from '../src/search/queue.js';
import { writePatternPngs } from '../src/search/synthetic.js';

const MODEL = fixture('hf-clip-tiny');
const N = 48;
const haveRedis = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = SKIP_FIXTURES || (!haveRedis && 'redis-server is not installed (scripts/ci-deps.sh installs it)');

let tmp = '';
let pg: PgServer | undefined;
let redis: ChildProcess | undefined;
let redisUrl = '';
const children: ChildProcess[] = [];

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => {
    const port = (s.address() as { port: number }).port;
    s.close(() => resolve(port));
  });
});

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'clip-queue-'));
  pg = await startPglite();
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', tmp, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  redisUrl = `redis://127.0.0.1:${port}`;
  let log = '';
  await new Promise<void>((resolve, reject) => {
    redis!.stdout!.on('data', (d: Buffer) => {
      log += d;
      if (/Ready to accept connections/.test(log)) resolve();
    });
    redis!.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log}`)));
  });
  redis.stdout!.resume();
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
  if (redis?.pid && redis.exitCode === null) {
    const gone = new Promise((r) => redis!.once('exit', r));
    process.kill(redis.pid, 'SIGTERM');
    await gone;
  }
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function clip(args: string[]): { child: ChildProcess; out: Promise<{ code: number | null; stdout: string; stderr: string }>; lines: (re: RegExp) => Promise<void> } {
  const child = spawn(process.execPath, [CLIP_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => { stdout += d; });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d;
    for (const w of [...waiters]) if (w.re.test(stderr)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  });
  const out = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return {
    child, out,
    lines: (re) => new Promise((resolve, reject) => {
      if (re.test(stderr)) return resolve();
      waiters.push({ re, resolve });
      out.then((o) => reject(new Error(`clip ${args[0]} exited (${o.code}) before ${re}: ${o.stderr}`)));
    }),
  };
}

test('queue: 2 workers, one killed with SIGKILL mid-run, one started late: every image indexed exactly once, same vectors as clip index', { skip, timeout: 240_000 }, async () => {
  const dir = join(tmp, 'photos');
  const paths = await writePatternPngs(dir, N, { seed: 5, size: 32 });
  writeFileSync(join(dir, 'broken.png'), 'not a png'); // a bad file is reported, not retried forever

  const worker = (name: string) => clip(['worker', '--queue', redisUrl, '--db', pg!.url, '--model', MODEL, '--no-cache', '--lock-ms', '1500']);
  // The enqueuer waits for the fleet: one progress for all workers, exit code 3 for the bad file.
  const index = clip(['index', dir, '--queue', redisUrl, '--db', pg!.url, '--batch-size', '3', '--wait', '--json']);
  const a = worker('a');
  // Killed right after its first job: it has already taken the next one, whose lock then has to expire.
  await a.lines(/clip worker: job [0-9a-f]+: /);
  process.kill(a.child.pid!, 'SIGKILL');
  await a.out;
  const b = worker('b');
  const res = await index.out;
  assert.equal(res.code, 3, res.stderr);
  const stats = JSON.parse(res.stdout);
  assert.equal(stats.files, N + 1);
  assert.equal(stats.queued, N + 1);
  assert.equal(stats.jobs, Math.ceil((N + 1) / 3));
  assert.deepEqual(stats.failed.map((f: { path: string }) => f.path), [join(dir, 'broken.png')]);
  assert.deepEqual(stats.failedJobs, []);

  const conn = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE_NAME, { connection: conn as never });
  const counts = await queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed');
  await queue.close();
  await conn.quit(); // a connection we pass in is ours to close
  assert.deepEqual(counts, { completed: stats.jobs, failed: 0, active: 0, wait: 0, delayed: 0 });

  // Exactly once: one row per image (ids are unique by schema, so also: no extra rows, none missing).
  const shared = await PgvectorStore.open(pg!.url);
  const rows = new Map<string, Float32Array>();
  for await (const batch of shared.scan()) for (const r of batch) rows.set(r.id, r.vector);
  assert.equal(await shared.count(), N);
  assert.deepEqual([...rows.keys()].sort(), [...paths].sort());

  // The same vectors as one process indexing the folder alone.
  const local = join(tmp, 'local.clipvec');
  const single = await new Promise<number | null>((resolve) => spawn(process.execPath, [CLIP_BIN, 'index', dir, '--db', local, '--model', MODEL, '--no-cache'], { stdio: 'ignore' }).once('exit', resolve));
  assert.equal(single, 3);
  const ref = await ExactStore.open(local);
  for (const r of (await ref.get(paths))) {
    const v = rows.get(r.id)!;
    assert.ok(r.vector.every((x, j) => Math.abs(x - v[j]!) < 1e-5), `${r.id}: vector differs from a single-process index`);
  }
  await ref.close();

  // A second enqueue of the unchanged folder queues nothing but the bad file (not indexed, so not "unchanged").
  const again = clip(['index', dir, '--queue', redisUrl, '--db', pg!.url, '--json']);
  const second = JSON.parse((await again.out).stdout);
  assert.deepEqual([second.unchanged, second.queued], [N, 1]);
  await shared.close();

  process.kill(b.child.pid!, 'SIGTERM');
  assert.equal((await b.out).code, 0);
});
