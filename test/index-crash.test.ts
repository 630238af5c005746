// `clip index` killed with SIGKILL at 20 random moments while indexing 2,000 images: after every kill the
// index holds each image at most once with the right content hash, nothing committed is embedded again,
// and the finished index answers queries exactly like one built in a single uninterrupted run.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { openStore } from '../src/search/open.js';
import { embedQuery } from '../src/search/query.js';
import type { VectorStore } from '../src/search/store.js';
import { rng, writePatternPngs } from '../src/search/synthetic.js';

const N = 2000;
const KILLS = 20;
/** CLIP_CRASH_STORE=exact runs the same scenario against the ExactStore log file. */
const KIND = process.env.CLIP_CRASH_STORE === 'exact' ? 'exact' : 'lance';
const TMP = mkdtempSync(join(tmpdir(), 'clip-crash-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const dbPath = (name: string) => join(TMP, KIND === 'exact' ? `${name}.clipvec` : name);

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Start `clip index`; SIGKILL it after `killAfterMs` if it is still running. */
function indexRun(cli: string, dir: string, db: string, killAfterMs?: number): Promise<Run> {
  const child = spawn(process.execPath, [cli, 'index', dir, '--model', fixture('hf-clip-tiny'), '--db', db, '--batch-size', '32', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((res) => child.on('exit', (code, signal) => {
    clearTimeout(timer);
    res({ code, signal, stdout, stderr });
  }));
}

/** Every stored entry is a real file with the right hash, and no id appears twice; returns the ids. */
async function checkConsistent(store: VectorStore, hashes: Map<string, string>): Promise<Set<string>> {
  const seen = new Set<string>();
  let rows = 0;
  for await (const e of store.entries()) {
    rows++;
    assert.ok(!seen.has(e.id), `duplicate entry ${e.id}`);
    seen.add(e.id);
    assert.equal(e.meta.hash, hashes.get(e.id), `hash of ${e.id}`);
  }
  assert.equal(await store.count(), rows);
  return seen;
}

test(`clip index survives ${KILLS} SIGKILLs at random moments (${KIND} store)`, { skip: SKIP_FIXTURES, timeout: 300_000 }, async (t) => {
  const t0 = Date.now();
  const dir = join(TMP, 'images');
  const paths = await writePatternPngs(dir, N, { seed: 3 });
  const hashes = new Map(paths.map((p) => [p, createHash('sha256').update(readFileSync(p)).digest('hex')]));
  const cli = CLIP_BIN;
  const genMs = Date.now() - t0;

  let t1 = Date.now();
  const ref = await indexRun(cli, dir, dbPath('ref'));
  assert.equal(ref.code, 0, ref.stderr);
  assert.equal(JSON.parse(ref.stdout).embedded, N);
  const refMs = Date.now() - t1;
  // A rerun with nothing to do: start-up, scan and optimize only. Its length sets the kill window below.
  t1 = Date.now();
  const noop = await indexRun(cli, dir, dbPath('ref'));
  assert.equal(JSON.parse(noop.stdout).embedded, 0);
  const noopMs = Date.now() - t1;

  const db = dbPath('crash');
  const rand = rng(20240601);
  let done = 0;
  let killed = 0;
  let progressed = 0;
  t1 = Date.now();
  // Kill delays: uniform over a no-op run's length plus twice this round's share of the remaining work (timed
  // by the uninterrupted run), so rounds land in start-up, scanning, mid-batch embedding and commits, and,
  // once everything is in, in the scan and the final optimize.
  for (let k = 0; k < KILLS; k++) {
    const share = (refMs * (N - done)) / N / (KILLS - k);
    const r = await indexRun(cli, dir, db, Math.floor(rand() * (noopMs + 2 * share)));
    if (r.signal === 'SIGKILL') killed++;
    else assert.equal(r.code, 0, r.stderr);
    if (!existsSync(db)) continue; // killed before creating the store
    // A kill between LanceDB creating the directory and committing the empty table leaves a directory with
    // no table: that reads as "no index" (and the next run creates it), which is only right while nothing was in.
    const store = await openStore(db).catch((e: Error) => {
      if (/^no index at/.test(e.message) && done === 0) return undefined;
      throw e;
    });
    if (!store) continue;
    const ids = await checkConsistent(store, hashes);
    await store.close();
    assert.ok(ids.size >= done, `index shrank from ${done} to ${ids.size}`);
    if (ids.size > done) progressed++;
    done = ids.size;
  }
  const killMs = Date.now() - t1;

  t1 = Date.now();
  const fin = await indexRun(cli, dir, db);
  assert.equal(fin.code, 0, fin.stderr);
  const stats = JSON.parse(fin.stdout);
  // Work that committed before a kill is never redone: the last run embeds exactly what was missing.
  assert.equal(stats.embedded, N - done);
  assert.equal(stats.unchanged, done);
  const finMs = Date.now() - t1;

  const crashed = await openStore(db);
  const reference = await openStore(dbPath('ref'));
  try {
    const ids = await checkConsistent(crashed, hashes);
    assert.equal(ids.size, N);
    assert.deepEqual([...ids].sort(), [...paths].sort());
    // Same vectors as the uninterrupted run (batch composition differed, so allow float noise)...
    const sample = paths.filter((_, i) => i % 97 === 0);
    const a = await crashed.get(sample);
    const b = new Map((await reference.get(sample)).map((r) => [r.id, r.vector]));
    for (const r of a) r.vector.forEach((x, i) => assert.ok(Math.abs(x - b.get(r.id)![i]!) < 1e-5, `${r.id}[${i}]`));
    // ...and the same answers.
    const model = await ClipModel.load(fixture('hf-clip-tiny'));
    const queries = [...paths.filter((_, i) => i % 401 === 0).map((p) => [{ sign: 1 as const, kind: 'image' as const, value: p }]),
      [{ sign: 1 as const, kind: 'text' as const, value: 'a checkerboard' }, { sign: -1 as const, kind: 'text' as const, value: 'noise' }]];
    for (const terms of queries) {
      const q = await embedQuery(model, terms);
      const x = await crashed.search(q, 10);
      const y = await reference.search(q, 10);
      assert.deepEqual(x.map((h) => h.id), y.map((h) => h.id), terms[0]!.value);
      x.forEach((h, i) => assert.ok(Math.abs(h.score - y[i]!.score) < 1e-5));
      if (terms[0]!.kind === 'image') assert.equal(x[0]!.id, terms[0]!.value);
    }
    await model.release();
  } finally {
    await crashed.close();
    await reference.close();
  }
  assert.ok(killed >= KILLS / 2, `only ${killed} of ${KILLS} runs were still running when killed`);
  assert.ok(progressed >= 3, `only ${progressed} killed runs committed anything`);
  t.diagnostic(`images ${genMs} ms, uninterrupted run ${refMs} ms, no-op rerun ${noopMs} ms, ${KILLS} kill/rerun rounds ${killMs} ms (${killed} killed, ` +
    `${progressed} made progress, ${done} of ${N} indexed before the final run), final run ${finMs} ms, total ${Date.now() - t0} ms`);
});
