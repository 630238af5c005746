// A damaged exact store (.clipvec): readers skip the bad bytes and serve every valid frame around them, say
// what they skipped, writers never cut valid frames off, and `repair` (`clip index --repair`) quarantines the
// damage. The old reader stopped at the first bad frame (8 of 400 rows) and the next writer truncated there.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { ExactStore } from '../src/search/exact-store.js';
import type { VectorRecord } from '../src/search/store.js';
import { writePatternPngs } from '../src/search/synthetic.js';

const run = promisify(execFile);
const TMP = mkdtempSync(join(tmpdir(), 'clip-damage-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const DIM = 16;
const ROWS = 400;
const PER_FRAME = 8;

function vec(seed: number, dim = DIM): Float32Array {
  const v = Float32Array.from({ length: dim }, (_, j) => Math.sin(seed * 12.9898 + j * 78.233) * 43758.5453 % 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
const rec = (i: number, dim = DIM, prefix = '/elsewhere/r'): VectorRecord => {
  const id = `${prefix}${i}.png`;
  return { id, vector: vec(i, dim), meta: { path: id, size: i, mtime: 2, width: 3, height: 4, hash: `h${i}` } };
};

/** 400 rows, 8 per frame (50 upsert frames after the info frame); returns each frame's [start, end). */
async function build(path: string, dim = DIM, prefix?: string): Promise<[number, number][]> {
  rmSync(path, { force: true });
  const s = await ExactStore.open(path, { dim });
  const frames: [number, number][] = [[8, statSync(path).size]];
  for (let f = 0; f < ROWS / PER_FRAME; f++) {
    const start = statSync(path).size;
    await s.upsert(Array.from({ length: PER_FRAME }, (_, i) => rec(f * PER_FRAME + i, dim, prefix)));
    frames.push([start, statSync(path).size]);
  }
  await s.close();
  return frames;
}

function flip(path: string, offset: number, mask = 0x10): void {
  const b = readFileSync(path);
  b[offset]! ^= mask;
  writeFileSync(path, b);
}

/** Ids of upsert frame f (1-based, as in build's list). */
const frameIds = (f: number) => Array.from({ length: PER_FRAME }, (_, i) => `/elsewhere/r${(f - 1) * PER_FRAME + i}.png`);
const allIds = Array.from({ length: ROWS }, (_, i) => `/elsewhere/r${i}.png`);

async function checkServes(s: ExactStore, missing: Set<string>): Promise<void> {
  assert.equal(await s.count(), ROWS - missing.size);
  const got = await s.get(allIds);
  assert.deepEqual(got.map((r) => r.id), allIds.filter((id) => !missing.has(id)));
  for (const r of got) assert.deepEqual(Array.from(r.vector), Array.from(vec(Number(/r(\d+)\./.exec(r.id)![1]))), r.id);
  // A row stored after the damage is found by search.
  const last = ROWS - 1;
  assert.equal((await s.search(vec(last), 1))[0]!.id, `/elsewhere/r${last}.png`);
}

test('reader: one flipped byte in an early frame costs that frame only, and is reported', async () => {
  const path = join(TMP, 'flip.clipvec');
  // Payload, length field, CRC field of upsert frame 3; and frame 1's first JSON byte.
  const cases: [string, (f: [number, number][]) => number, number][] = [
    ['payload', (f) => f[3]![0] + 200, 3],
    ['length field', (f) => f[3]![0] + 2, 3],
    ['length field, high byte', (f) => f[3]![0] + 3, 3],
    ['checksum field', (f) => f[3]![0] + 5, 3],
    ['op byte', (f) => f[1]![0] + 8, 1],
  ];
  for (const [name, at, bad] of cases) {
    const frames = await build(path);
    flip(path, at(frames));
    const s = await ExactStore.open(path);
    await checkServes(s, new Set(frameIds(bad)));
    const d = s.damage;
    assert.ok(d, `${name}: damage reported`);
    assert.deepEqual(d.regions.map((r) => [r.start, r.end]), [frames[bad]!], name);
    assert.equal(d.bytes, frames[bad]![1] - frames[bad]![0]);
    assert.equal(d.frames, 1 + 50 - 1, `${name}: every other frame read`);
    assert.equal(d.framesAfter, 50 - bad, name);
    await s.close();
  }
});

test('reader: a damaged header frame loses no rows (the rows give the dimension)', async () => {
  const path = join(TMP, 'head.clipvec');
  const frames = await build(path);
  flip(path, frames[0]![0] + 12);
  const s = await ExactStore.open(path);
  assert.equal(s.info.dim, DIM);
  await checkServes(s, new Set());
  assert.deepEqual(s.damage?.regions.map((r) => [r.start, r.end]), [frames[0]]);
  await s.close();
});

test('writer: adding rows to a damaged store keeps every valid frame and the damaged bytes', async () => {
  const path = join(TMP, 'write.clipvec');
  const frames = await build(path);
  flip(path, frames[3]![0] + 200);
  const before = readFileSync(path);
  const w = await ExactStore.open(path);
  await w.upsert([rec(1000), rec(1001), rec(1002)]);
  await w.optimize(); // nothing to compact here, and never while damaged
  await w.close();
  const after = readFileSync(path);
  assert.ok(after.subarray(0, before.length).equals(before), 'the old bytes, damage included, are untouched');
  const r = await ExactStore.open(path);
  assert.equal(await r.count(), ROWS - PER_FRAME + 3);
  assert.deepEqual((await r.get(allIds)).map((x) => x.id), allIds.filter((id) => !frameIds(3).includes(id)));
  assert.equal((await r.search(vec(1001), 1))[0]!.id, '/elsewhere/r1001.png');
  assert.deepEqual(r.damage?.regions.map((g) => [g.start, g.end]), [frames[3]]);
  await r.close();
});

test('writer: compaction is skipped while the store is damaged (it would drop the damaged bytes)', async () => {
  const path = join(TMP, 'compact.clipvec');
  const frames = await build(path);
  flip(path, frames[2]![0] + 100);
  const w = await ExactStore.open(path);
  // 20 rewrites of the 392 readable rows: far more dead entries than live ones, so a sound store would compact.
  for (let k = 0; k < 20; k++) await w.upsert((await w.get(allIds)).map((r) => ({ ...r, vector: vec(k) })));
  const size = statSync(path).size;
  await w.optimize();
  await w.close();
  assert.equal(statSync(path).size, size);
  assert.deepEqual((await ExactStore.open(path)).damage?.regions.map((g) => [g.start, g.end]), [frames[2]]);
});

test('torn tail: cut off by the next writer as before, also behind damage; a complete bad last frame is kept', async () => {
  const path = join(TMP, 'tail.clipvec');
  const frames = await build(path);
  flip(path, frames[5]![0] + 100);
  const size = statSync(path).size;
  // A crashed writer's half frame: its length field promises more bytes than follow.
  appendFileSync(path, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]));
  const r = await ExactStore.open(path);
  assert.equal(await r.count(), ROWS - PER_FRAME);
  assert.deepEqual(r.damage?.regions.map((g) => [g.start, g.end]), [frames[5]], 'the torn tail is no damage');
  await r.upsert([rec(2000)]);
  await r.close();
  const again = await ExactStore.open(path);
  assert.equal(await again.count(), ROWS - PER_FRAME + 1);
  assert.ok(statSync(path).size > size && statSync(path).size < size + 11 + 200, 'the torn bytes were cut, the new frame sits right after');

  // The last frame complete but with a bad checksum: no torn write, so a writer must not cut it.
  const p2 = join(TMP, 'badlast.clipvec');
  const f2 = await build(p2);
  flip(p2, f2[50]![0] + 100);
  const reader = await ExactStore.open(p2);
  assert.equal(await reader.count(), ROWS - PER_FRAME);
  assert.deepEqual(reader.damage?.regions.map((g) => [g.start, g.end]), [f2[50]]);
  const w = await ExactStore.open(p2);
  await w.upsert([rec(3000)]);
  await w.close();
  assert.equal(statSync(p2).size > f2[50]![1], true);
  // The reader opened before the write sees the frame appended after the damage.
  assert.equal(await reader.count(), ROWS - PER_FRAME + 1);
  assert.deepEqual(reader.damage?.regions.map((g) => [g.start, g.end]), [f2[50]]);
});

test('repair: every valid row kept, the damaged bytes in a quarantine file, the store clean', async () => {
  const path = join(TMP, 'repair.clipvec');
  const frames = await build(path);
  flip(path, frames[3]![0] + 200);
  flip(path, frames[40]![0] + 1);
  const original = readFileSync(path);
  const w = await ExactStore.open(path);
  await w.upsert([rec(5000)]);
  await w.close();
  const report = await ExactStore.repair(path);
  assert.equal(report.clean, false);
  assert.equal(report.rows, ROWS - 2 * PER_FRAME + 1);
  const q = report.quarantine!;
  assert.deepEqual(q.regions.map((g) => [g.start, g.end]), [frames[3], frames[40]]);
  assert.equal(q.bytes, frames[3]![1] - frames[3]![0] + frames[40]![1] - frames[40]![0]);
  assert.deepEqual(readdirSync(TMP).filter((f) => f.startsWith('repair.clipvec.')), [q.path.slice(TMP.length + 1)]);
  // The quarantine file: one JSON line naming each region, then the bytes exactly as they were in the store.
  const qbuf = readFileSync(q.path);
  const nl = qbuf.indexOf(10);
  const head = JSON.parse(qbuf.subarray(0, nl).toString());
  assert.equal(head.source, path);
  assert.deepEqual(head.regions.map((g: { at: number }) => g.at), [0, frames[3]![1] - frames[3]![0]]);
  assert.ok(qbuf.subarray(nl + 1).equals(Buffer.concat([original.subarray(...frames[3]!), original.subarray(...frames[40]!)])));

  const s = await ExactStore.open(path);
  assert.equal(s.damage, undefined);
  assert.equal(await s.count(), ROWS - 2 * PER_FRAME + 1);
  assert.equal((await s.get(allIds)).length, ROWS - 2 * PER_FRAME);
  for (const r of await s.get(allIds)) assert.deepEqual(Array.from(r.vector), Array.from(vec(Number(/r(\d+)\./.exec(r.id)![1]))));
  assert.equal((await s.search(vec(5000), 1))[0]!.id, '/elsewhere/r5000.png');
  await s.close();
  // A second repair finds nothing to do and writes nothing.
  const size = statSync(path).size;
  assert.deepEqual(await ExactStore.repair(path), { path, clean: true, rows: ROWS - 2 * PER_FRAME + 1, frames: 2 });
  assert.equal(statSync(path).size, size);
  assert.equal(readdirSync(TMP).filter((f) => f.startsWith('repair.clipvec.')).length, 1);
});

/** A frame with a correct checksum around whatever payload we like. */
function rawFrame(payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(payload.length, 0);
  h.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([h, payload]);
}

test('hostile sizes in frames whose checksums verify: skipped and reported, nothing huge allocated', async () => {
  const path = join(TMP, 'hostile.clipvec');
  const frames = await build(path);
  const good = readFileSync(path);
  const json = (op: number, v: unknown) => Buffer.concat([Buffer.from([op]), Buffer.from(JSON.stringify(v))]);
  const upsertHead = (n: number, jsonLen: number) => {
    const b = Buffer.alloc(9);
    b[0] = 1;
    b.writeUInt32LE(n, 1);
    b.writeUInt32LE(jsonLen, 5);
    return b;
  };
  const hostile = [
    rawFrame(json(0, { dim: 1e9 })), // a second header with an absurd width
    rawFrame(Buffer.concat([upsertHead(0xffffffff, 2), Buffer.from('[]')])), // 4 billion rows announced, none there
    rawFrame(Buffer.concat([upsertHead(1, 0xfffffff0), Buffer.from('[]')])), // a JSON length past the frame
    rawFrame(Buffer.concat([upsertHead(1, 2), Buffer.from('[]'), Buffer.alloc(DIM * 4)])), // a row count the list lacks
    rawFrame(json(2, [1, 2, 3])), // delete of non-ids
    rawFrame(json(9, {})), // unknown frame type
  ];
  const bogusLen = Buffer.alloc(8);
  bogusLen.writeUInt32LE(0xffffffff, 0); // a length field of 4 GiB, then valid frames
  const mid = frames[10]![0];
  const tail = good.subarray(mid);
  writeFileSync(path, Buffer.concat([good.subarray(0, mid), ...hostile, bogusLen, tail]));
  const rss = process.memoryUsage().rss;
  const s = await ExactStore.open(path);
  assert.ok(process.memoryUsage().rss - rss < 200e6, 'no allocation from a size field');
  await checkServes(s, new Set());
  // Each verifying frame is one region; the two upserts whose sizes do not add up are no frames at all, so
  // the scan passes over both to the next thing that verifies.
  const ends = [...hostile, bogusLen].reduce<number[]>((a, h) => [...a, a.at(-1)! + h.length], [mid]);
  assert.deepEqual(s.damage!.regions.map((g) => [g.start, g.end]), [[ends[0], ends[1]], [ends[1], ends[3]], [ends[3], ends[4]], [ends[4], ends[5]], [ends[5], ends[6]], [ends[6], ends[7]]]);
  const regions = s.damage!.regions;
  assert.match(regions[0]!.reason, /dim 1000000000/);
  assert.match(regions[1]!.reason, /sizes do not add up/);
  assert.match(regions[2]!.reason, /1 rows announced, the list has 0/);
  assert.match(regions[3]!.reason, /delete frame/);
  assert.match(regions[4]!.reason, /unknown frame type 9/);
  assert.match(regions[5]!.reason, /length 4294967295 runs past the end/);
  await s.close();
});

// ---- the CLI, with the tiny model ----

test('clip search warns about a damaged index; clip index keeps its valid rows; clip index --repair cleans it', { skip: SKIP_FIXTURES, timeout: 120_000 }, async () => {
  const cli = CLIP_BIN;
  const model = ['--model', fixture('hf-clip-tiny')];
  const db = join(TMP, 'cli.clipvec');
  const dirA = join(TMP, 'imgs-a');
  const dirB = join(TMP, 'imgs-b');
  await writePatternPngs(dirA, 2, { seed: 1, prefix: 'a' });
  const newImages = await writePatternPngs(dirB, 3, { seed: 2, prefix: 'b' });
  // A real index (its header names the model), then 400 more rows outside the indexed folders.
  const first = JSON.parse((await run(process.execPath, [cli, 'index', dirA, ...model, '--db', db, '--json'])).stdout);
  assert.equal(first.count, 2);
  const dim = (await ExactStore.open(db)).info.dim;
  const w = await ExactStore.open(db);
  const frames: [number, number][] = [];
  for (let f = 0; f < ROWS / PER_FRAME; f++) {
    const start = statSync(db).size;
    await w.upsert(Array.from({ length: PER_FRAME }, (_, i) => rec(f * PER_FRAME + i, dim)));
    frames.push([start, statSync(db).size]);
  }
  await w.close();
  flip(db, frames[1]![0] + 300); // the second of the 50 frames: the old reader kept 2 + 8 rows

  const s = await run(process.execPath, [cli, 'search', ...model, '--db', db, '--image', newImages[0]!, '--k', '500', '--json']);
  assert.match(s.stderr, new RegExp(`warning: ${db.replace(/[.\\/]/g, '\\$&')} is damaged: skipped ${frames[1]![1] - frames[1]![0]} unreadable bytes in 1 region: .*offset ${frames[1]![0]} \\(checksum mismatch\\).*clip index --repair`));
  assert.equal(JSON.parse(s.stdout).length, 2 + ROWS - PER_FRAME);

  const i = await run(process.execPath, [cli, 'index', dirA, dirB, ...model, '--db', db, '--json']);
  assert.match(i.stderr, /is damaged: .*stay in place/);
  const stats = JSON.parse(i.stdout);
  assert.equal(stats.embedded, 3);
  assert.equal(stats.count, 2 + ROWS - PER_FRAME + 3, 'every valid old row kept');
  assert.deepEqual(stats.damage.regions.map((g: { start: number; end: number }) => [g.start, g.end]), [frames[1]]);

  const r = await run(process.execPath, [cli, 'index', '--repair', '--db', db]);
  assert.match(r.stdout, new RegExp(`repaired: kept ${2 + ROWS - PER_FRAME + 3} rows .* moved ${frames[1]![1] - frames[1]![0]} unreadable bytes .* to ${db.replace(/[.\\/]/g, '\\$&')}\\.damaged-\\d{8}T\\d{6}Z\\n$`));
  assert.equal(r.stderr, '');
  assert.equal(readdirSync(TMP).filter((f) => f.startsWith('cli.clipvec.damaged-')).length, 1);
  const clean = await ExactStore.open(db);
  assert.equal(clean.damage, undefined);
  assert.equal(await clean.count(), 2 + ROWS - PER_FRAME + 3);
  assert.equal(clean.info.model, fixture('hf-clip-tiny'));
  await clean.close();
  const again = await run(process.execPath, [cli, 'index', dirA, dirB, ...model, '--db', db, '--json']);
  assert.equal(again.stderr, '');
  assert.deepEqual([JSON.parse(again.stdout).unchanged, JSON.parse(again.stdout).count], [5, 2 + ROWS - PER_FRAME + 3]);
  await assert.rejects(run(process.execPath, [cli, 'index', '--repair', '--db', join(TMP, 'nothing.clipvec')]), /no index at/);
});
