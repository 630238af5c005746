// The fleet, at the size issue 16 asks for: 2,000 generated images, `clip index --queue --wait` enqueuing them,
// three `clip worker`s on PGlite + redis-server, one SIGKILLed at a random moment mid-run and one started late.
// Every image must be indexed exactly once, with the vectors a single-process `clip index` computes, and the two
// indexes must answer searches identically. The enqueuer runs under a pseudo-terminal (util-linux `script`) so
// that its one progress bar for the whole fleet is drawn and can be checked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pgClient from 'pg';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { startPglite, type PgServer } from './pglite.js';
import { startRedis, SKIP_REDIS, type RedisServer } from './redis.js';
import { ClipProcesses } from './clip-process.js';
import { ExactStore } from '../src/search/exact-store.js';
import { PgvectorStore } from '../src/search/pg-store.js';
import { BACKOFF_MS, JOB_ATTEMPTS, QUEUE_NAME } from '../src/search/queue.js';
import { rng, writePatternPngs } from '../src/search/synthetic.js';

const run = promisify(execFile);
const MODEL = fixture('hf-clip-tiny');
const N = Number(process.env.CLIP_FLEET_IMAGES ?? 2000);
const BATCH = 16;
// Far above the slowest batch here (measured up to 2.5 s at load average 12 on 2 cores; well under a second idle), and
// short enough that the killed worker's job is re-run within seconds.
const LOCK_MS = 10_000;
const haveScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = SKIP_FIXTURES || SKIP_REDIS || (!haveScript && 'util-linux `script` is not installed (it gives the enqueuer a terminal)');

let tmp = '';
let dir = '';
let paths: string[] = [];
let pg: PgServer | undefined;
let redis: RedisServer | undefined;
const procs = new ClipProcesses();

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'clip-fleet-'));
  dir = join(tmp, 'photos');
  [pg, redis, paths] = await Promise.all([startPglite(), startRedis(tmp), writePatternPngs(dir, N, { seed: 21, size: 16, prefix: 'f' })]);
});
after(async () => {
  procs.killAll();
  await redis?.stop();
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const jobsDone = (stderr: string) => (stderr.match(/clip worker: job [0-9a-f]+: /g) ?? []).length;
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

test(`fleet: ${N} images, 3 workers (one SIGKILLed mid-run, one started late): each indexed exactly once, vectors and search equal to one process`, { skip, timeout: 600_000 }, async (t) => {
  const seed = Number(process.env.CLIP_FLEET_SEED ?? Date.now() % 100_000);
  const rand = rng(seed);
  const killAfterMs = Math.floor(rand() * 3000);
  t.diagnostic(`seed ${seed} (CLIP_FLEET_SEED to repeat): worker a is killed ${killAfterMs} ms after its first job`);
  const worker = () => procs.run(['worker', '--queue', redis!.url, '--db', pg!.url, '--model', MODEL, '--no-cache', '--lock-ms', String(LOCK_MS)]);

  const [a, b] = [worker(), worker()];
  // The enqueuer under a pseudo-terminal: stdout and stderr arrive together, the bar as \r-separated frames.
  const cmd = [process.execPath, CLIP_BIN, 'index', dir, '--queue', redis!.url, '--db', pg!.url, '--batch-size', String(BATCH), '--wait', '--json'].map(sh).join(' ');
  const enqueuer = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tty = '';
  enqueuer.stdout!.on('data', (d: Buffer) => { tty += d; });
  enqueuer.stderr!.resume();
  const enqueued = new Promise<number | null>((resolve) => enqueuer.once('exit', resolve));

  // Kill a at a random moment once it is working; start c once b has done a few jobs.
  await a.lines(/clip worker: job [0-9a-f]+: /);
  await new Promise((r) => setTimeout(r, killAfterMs));
  const aJobs = jobsDone(a.stderr());
  const killedMidRun = enqueuer.exitCode === null;
  process.kill(a.child.pid!, 'SIGKILL');
  await a.out;
  while (jobsDone(b.stderr()) < 5 && b.child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  const c = worker();
  const code = await enqueued;
  assert.equal(code, 0, tty);
  t.diagnostic(`worker a finished ${aJobs} jobs before SIGKILL`);

  // One bar for the whole fleet: frames of the same total, never going back, ending complete.
  const frames = [...tty.matchAll(/indexing \(workers\) \S+ (\d+)\/(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
  assert.ok(frames.length >= 2, `progress frames: ${JSON.stringify(tty.slice(0, 300))}`);
  assert.ok(frames.every(([, total]) => total === N), 'every frame counts the whole run');
  assert.ok(frames.every(([done], i) => i === 0 || done >= frames[i - 1]![0]), 'progress never goes back');
  assert.deepEqual(frames.at(-1), [N, N]);
  assert.equal(tty.match(/[█░]{24}/g)!.length, frames.length, 'no other bar');
  const stats = JSON.parse(tty.slice(tty.lastIndexOf('{"db"')).trim());
  assert.deepEqual([stats.files, stats.queued, stats.jobs, stats.failed.length, stats.failedJobs.length], [N, N, Math.ceil(N / BATCH), 0, 0]);
  assert.ok(killedMidRun, 'worker a was killed before the run ended');

  // The queue: every job completed, none failed; jobs carry their retries with backoff; the slowest batch
  // (including the re-run of a's job) stayed well inside the lock.
  const conn = new Redis(redis!.url, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE_NAME, { connection: conn as never });
  assert.deepEqual(await queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed'), { completed: stats.jobs, failed: 0, active: 0, wait: 0, delayed: 0 });
  const done = await queue.getCompleted(0, -1);
  assert.deepEqual(done[0]!.opts.backoff, { type: 'exponential', delay: BACKOFF_MS });
  assert.equal(done[0]!.opts.attempts, JOB_ATTEMPTS);
  const slowest = Math.max(...done.map((j) => j.finishedOn! - j.processedOn!));
  t.diagnostic(`slowest batch ${slowest} ms (lock ${LOCK_MS} ms); ${done.filter((j) => j.attemptsStarted > 1 || j.stalledCounter > 0).length} jobs re-run after the kill`);
  await queue.close();
  await conn.quit();

  // Exactly once: one row per image, every content hash once.
  const db = new pgClient.Client({ connectionString: pg!.url });
  await db.connect();
  const counts = (await db.query('SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, count(DISTINCT content_hash)::int AS hashes FROM clip_images')).rows[0];
  await db.end();
  assert.deepEqual(counts, { n: N, ids: N, hashes: N });
  const shared = await PgvectorStore.open(pg!.url, undefined, { efSearch: 400 });
  const rows = new Map<string, Float32Array>();
  for await (const batch of shared.scan()) for (const r of batch) rows.set(r.id, r.vector);
  assert.deepEqual([...rows.keys()].sort(), [...paths].sort());

  // The same vectors as one process indexing the folder alone (in the same batches of 16).
  const local = join(tmp, 'local.clipvec');
  await run(process.execPath, [CLIP_BIN, 'index', dir, '--db', local, '--model', MODEL, '--no-cache', '--batch-size', String(BATCH)]);
  const ref = await ExactStore.open(local);
  assert.equal(await ref.count(), N);
  let maxDiff = 0;
  for (const r of await ref.get(paths)) {
    const v = rows.get(r.id)!;
    for (let j = 0; j < v.length; j++) maxDiff = Math.max(maxDiff, Math.abs(r.vector[j]! - v[j]!));
  }
  t.diagnostic(`max |fleet - single process| = ${maxDiff}`);
  assert.ok(maxDiff <= 1e-6, `vectors differ from a single-process index by up to ${maxDiff}`);

  // Search: the same answers from both indexes, through the CLI and for a set of image queries.
  const search = async (where: string) => JSON.parse((await run(process.execPath, [CLIP_BIN, 'search', 'a photo of a striped pattern', '--db', where, '--model', MODEL, '--no-cache', '--k', '10', '--json'])).stdout) as { path: string; score: number }[];
  const [viaPg, viaLocal] = await Promise.all([search(pg!.url), search(local)]);
  assert.deepEqual(viaPg.map((h) => h.path), viaLocal.map((h) => h.path));
  for (const [i, h] of viaPg.entries()) assert.ok(Math.abs(h.score - viaLocal[i]!.score) < 1e-6);
  for (let q = 0; q < 20; q++) {
    const probe = rows.get(paths[Math.floor(rand() * N)]!)!;
    const [x, y] = await Promise.all([shared.search(probe, 10), ref.search(probe, 10)]);
    assert.deepEqual(x.map((h) => h.id), y.map((h) => h.id), `query ${q}`);
  }
  await ref.close();
  await shared.close();

  for (const w of [b, c]) {
    process.kill(w.child.pid!, 'SIGTERM');
    assert.equal((await w.out).code, 0);
  }
});
