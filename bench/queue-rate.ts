// One-off measurement for docs/scale.md: jobs/s of the BullMQ queue with N `clip worker`s (the tiny test model,
// PGlite behind pglite-server as the store, Debian's redis-server), N = 1, 2, 3. Not a test.
//   node dist/bench/queue-rate.js [--images 480] [--batch 16] [--workers 1,2,3] [--model DIR]
// Each N gets an empty index and an empty queue; the clock runs from `clip index --queue --wait` starting
// (workers already up, model loaded) to it exiting: enqueue, every job embedded and upserted, results read.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { writePatternPngs } from '../src/search/synthetic.js';
import { CLIP_BIN, fixture } from '../test/fixtures.js';
import { startPglite } from '../test/pglite.js';
import { startRedis } from '../test/redis.js';
import { ClipProcesses } from '../test/clip-process.js';

const { values } = parseArgs({ options: {
  images: { type: 'string', default: '480' }, batch: { type: 'string', default: '16' }, workers: { type: 'string', default: '1,2,3' },
  model: { type: 'string', default: fixture('hf-clip-tiny') },
} });
const M = Number(values.images);
const BATCH = Number(values.batch);
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

const tmp = mkdtempSync(join(tmpdir(), 'clip-qrate-'));
const procs = new ClipProcesses();
const [server, redis] = await Promise.all([startPglite(), startRedis(tmp)]);
const results: Record<string, unknown>[] = [];
try {
  const dir = join(tmp, 'img');
  await writePatternPngs(dir, M, { seed: 3, size: 16, prefix: 'q' });
  log(`${M} images, batches of ${BATCH}, ${availableParallelism()} cores`);
  for (const n of values.workers.split(',').map(Number)) {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    await c.query('DROP TABLE IF EXISTS clip_images, clip_store, clip_schema_version');
    await c.end();
    const r = new Redis(redis.url);
    await r.flushdb();
    await r.quit();
    const workers = Array.from({ length: n }, () => procs.run(['worker', '--queue', redis.url, '--db', server.url, '--model', values.model, '--no-cache']));
    await Promise.all(workers.map((w) => w.lines(/clip worker: ready/)));
    const load0 = loadavg()[0]!;
    const t0 = performance.now();
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [CLIP_BIN, 'index', dir, '--queue', redis.url, '--db', server.url, '--batch-size', String(BATCH), '--wait', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      child.stdout.on('data', (d: Buffer) => { s += d; });
      child.once('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`clip index exited ${code}`))));
    });
    const secs = (performance.now() - t0) / 1000;
    const stats = JSON.parse(out);
    const row = { workers: n, jobs: stats.jobs, images: stats.embedded, seconds: +secs.toFixed(1), jobsPerS: +(stats.jobs / secs).toFixed(2), imagesPerS: +(stats.embedded / secs).toFixed(1), loadAvg1m: [+load0.toFixed(1), +loadavg()[0]!.toFixed(1)] };
    results.push(row);
    log(JSON.stringify(row));
    for (const w of workers) {
      process.kill(w.child.pid!, 'SIGTERM');
      await w.out;
    }
  }
} finally {
  procs.killAll();
  await redis.stop();
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify({ images: M, batch: BATCH, cores: availableParallelism(), results }) + '\n');
