// Distributed indexing, end to end with real engines: Debian's redis-server (started here on a free loopback
// port, in a temp dir, without persistence) as the BullMQ queue, PGlite behind pglite-server as the shared
// Postgres. One worker is killed with SIGKILL mid-run and another starts late; every image must end up indexed
// exactly once, with the vectors a single-process `clip index` computes, and `clip index --queue --wait` must
// see the whole fleet's work through.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pgClient from 'pg';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { startPglite, type PgServer } from './pglite.js';
import { startRedis, SKIP_REDIS, type RedisServer } from './redis.js';
import { ClipProcesses } from './clip-process.js';
import { ExactStore } from '../src/search/exact-store.js';
import { PgvectorStore } from '../src/search/pg-store.js';
import { QUEUE_NAME } from '../src/search/queue.js';
import { writePatternPngs } from '../src/search/synthetic.js';

const MODEL = fixture('hf-clip-tiny');
const N = 48;
const skip = SKIP_FIXTURES || SKIP_REDIS;

let tmp = '';
let pg: PgServer | undefined;
let redis: RedisServer | undefined;
let redisUrl = '';
const procs = new ClipProcesses();

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'clip-queue-'));
  pg = await startPglite();
  redis = await startRedis(tmp);
  redisUrl = redis.url;
});
after(async () => {
  procs.killAll();
  await redis?.stop();
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const clip = (args: string[]) => procs.run(args);

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

test('queue: a job that keeps failing lands in the failed list with its reason; clip queue status lists it, clip queue retry re-runs it', { skip, timeout: 180_000 }, async () => {
  const q = `${redisUrl}/1`; // a Redis database of its own: counts start at zero
  const dir = join(tmp, 'retry');
  const [ok0, ok1] = await writePatternPngs(dir, 2, { seed: 9, size: 24, prefix: 'ok' });
  const [poison] = await writePatternPngs(dir, 1, { seed: 10, size: 24, prefix: 'poison' });
  const w = clip(['worker', '--queue', q, '--db', pg!.url, '--model', MODEL, '--no-cache']);
  await w.lines(/clip worker: ready/);
  // The store refuses the poisoned file's row, as a full disk or a broken server would: every attempt fails.
  const c = new pgClient.Client({ connectionString: pg!.url });
  c.on('error', () => {}); // the server stops at the end of the file, maybe before a failed test ends this client
  await c.connect();
  await c.query("ALTER TABLE clip_images ADD CONSTRAINT no_poison CHECK (path NOT LIKE '%/poison%')");

  const index = clip(['index', dir, '--queue', q, '--db', pg!.url, '--batch-size', '2', '--attempts', '2', '--wait', '--json']);
  const res = await index.out;
  assert.equal(res.code, 3, res.stderr);
  const stats = JSON.parse(res.stdout);
  assert.equal(stats.jobs, 2);
  assert.equal(stats.failedJobs.length, 1, JSON.stringify(stats));
  const poisonJob: string = stats.failedJobs[0].id;
  assert.match(stats.failedJobs[0].reason, /no_poison/);
  assert.match(res.stderr, new RegExp(`job ${poisonJob} failed: .*no_poison.*clip queue retry`));

  // Malformed job data (anyone with access to Redis can enqueue): failed at once, not retried.
  const conn = new Redis(q, { maxRetriesPerRequest: null });
  const raw = new Queue(QUEUE_NAME, { connection: conn as never });
  await raw.add('embed', { files: [{ path: 'photos/relative.png', size: 1, mtime: 1 }] } as never, { jobId: 'malformed', attempts: 5 });
  await raw.add('embed', { files: [{ path: '/', size: 1, mtime: 1 }] } as never, { jobId: 'root-folder', attempts: 5 });
  const status = async () => JSON.parse((await clip(['queue', 'status', '--queue', q, '--json']).out).stdout);
  let s = await status();
  for (let i = 0; i < 100 && s.counts.failed + s.counts.completed < 4; i++) {
    await new Promise((r) => setTimeout(r, 100));
    s = await status();
  }
  assert.deepEqual(s.counts, { waiting: 0, active: 0, delayed: 0, completed: 2, failed: 2 });
  const byId = new Map(s.failed.map((j: { id: string }) => [j.id, j]));
  assert.deepEqual([...byId.keys()].sort(), ['malformed', poisonJob].sort());
  assert.deepEqual(byId.get(poisonJob), { ...byId.get(poisonJob) as object, attempts: 2, files: 1, first: poison });
  assert.match((byId.get(poisonJob) as { reason: string }).reason, /violates check constraint "no_poison"/);
  assert.match((byId.get('malformed') as { reason: string }).reason, /files\[0\]\.path must be an absolute path/);
  assert.equal((byId.get('malformed') as { attempts: number }).attempts, 1);
  // A job naming a folder is not a walk of that folder: its one "file" is reported, the job completes.
  const rootJob = await raw.getJob('root-folder');
  assert.deepEqual(rootJob!.returnvalue.failed, [{ path: '/', error: 'no longer there (or not a file)' }]);
  await raw.close();
  await conn.quit();
  const shown = await clip(['queue', 'status', '--queue', q]).out;
  assert.match(shown.stdout, /0 waiting, 0 active, 0 delayed \(retrying\), 2 completed, 2 failed/);
  assert.match(shown.stdout, new RegExp(`${poisonJob}\\s+2\\s+.*poison0000\\.png\\s+.*no_poison`));

  // Fixed at the source, the job is retried by id and goes through; an unknown id is reported.
  await c.query('ALTER TABLE clip_images DROP CONSTRAINT no_poison');
  await c.end();
  const retried = await clip(['queue', 'retry', poisonJob, 'no-such-job', '--queue', q, '--json']).out;
  assert.equal(retried.code, 3);
  assert.deepEqual(JSON.parse(retried.stdout), { retried: [poisonJob], notRetried: [{ id: 'no-such-job', reason: 'no such job' }] });
  for (let i = 0; i < 100 && (s = await status()).counts.completed < 3; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(s.counts, { waiting: 0, active: 0, delayed: 0, completed: 3, failed: 1 });
  const shared = await PgvectorStore.open(pg!.url);
  assert.deepEqual((await shared.get([ok0!, ok1!, poison!])).map((r) => r.id).sort(), [ok0, ok1, poison].sort());
  await shared.close();

  process.kill(w.child.pid!, 'SIGTERM');
  assert.equal((await w.out).code, 0);
});
