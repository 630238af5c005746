// The on-disk cache of built tower ONNX: stores one file per tower, serves later loads without building,
// keys on dtype and the weights file's content (not its mtime), and survives damaged entries. CLIP_CACHE points at a temporary
// folder so the user's cache is never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync,
  utimesSync, writeFileSync, writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipModel, type LoadOptions } from '../src/runtime/clip-model.js';
import { clearOnnxCache, isCompleteEntry, onnxCacheEnabled, onnxCacheUsage, type OnnxCacheEvent } from '../src/runtime/onnx-cache.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

test('the cache is on by default, off under node --test, and options override the environment', () => {
  assert.equal(onnxCacheEnabled(undefined, {}), true);
  assert.equal(onnxCacheEnabled(undefined, { NODE_TEST_CONTEXT: 'child-v8' }), false);
  assert.equal(onnxCacheEnabled(undefined, { NODE_TEST_CONTEXT: 'child-v8', CLIP_ONNX_CACHE: '1' }), true);
  assert.equal(onnxCacheEnabled(undefined, { CLIP_ONNX_CACHE: '0' }), false);
  assert.equal(onnxCacheEnabled(true, { CLIP_ONNX_CACHE: '0' }), true);
  assert.equal(onnxCacheEnabled(false, {}), false);
});

test('built towers are cached on disk, reused, invalidated and repaired', { skip: SKIP_FIXTURES }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'clip-onnx-cache-'));
  const saved = { CLIP_CACHE: process.env.CLIP_CACHE, CLIP_ONNX_CACHE: process.env.CLIP_ONNX_CACHE };
  try {
    // A private copy of the checkpoint: the test changes its weights file's mtime.
    const model = join(tmp, 'model');
    mkdirSync(model);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) {
      copyFileSync(fixture('hf-clip-tiny', f), join(model, f));
    }
    process.env.CLIP_CACHE = join(tmp, 'cache');
    // The default (no `cache` option) is what users get; the test runner's own default is off.
    process.env.CLIP_ONNX_CACHE = '1';
    const dir = join(tmp, 'cache', 'onnx');
    const files = () => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort() : []);
    const images = [fixture('common', 'images', 'astronaut.png'), fixture('common', 'images', 'coffee.png')];
    const texts = ['a photo of an astronaut', 'a cup of coffee'];

    const run = async (opts: LoadOptions = {}) => {
      const events: OnnxCacheEvent[] = [];
      const m = await ClipModel.load(model, { threads: 1, ...opts, onCache: (e) => events.push(e) });
      const img = (await m.encodeImages(images)).map((r) => r.embedding!);
      const txt = await m.encodeTexts(texts);
      await m.release();
      return { events: events.map((e) => `${e.tower}:${e.event}`), paths: events.map((e) => e.path), hits: m.cacheHits, img, txt };
    };
    const same = (a: Float32Array[], b: Float32Array[]) =>
      assert.deepEqual(a.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)), b.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)));

    // cache: false reads and writes nothing: the reference embeddings.
    const ref = await run({ cache: false });
    assert.deepEqual(ref.events, []);
    assert.deepEqual(files(), []);

    const first = await run();
    assert.deepEqual(first.events, ['image:miss', 'image:write', 'text:miss', 'text:write']);
    assert.equal(first.hits, 0);
    assert.equal(files().length, 2);
    assert.ok(files().every((f) => /^(image|text)-[0-9a-f]{64}\.onnx$/.test(f)), files().join());
    same(first.img, ref.img);
    same(first.txt, ref.txt);

    // A new model hits both entries without building (a build would report a miss) and gives the same bits.
    const second = await run();
    assert.deepEqual(second.events, ['image:hit', 'text:hit']);
    assert.equal(second.hits, 2);
    same(second.img, ref.img);
    same(second.txt, ref.txt);
    const [imageEntry, textEntry] = [second.paths[0]!, second.paths[1]!];

    // Another dtype is another graph: new entries beside the fp32 ones.
    const int8 = await run({ dtype: 'int8' });
    assert.deepEqual(int8.events, ['image:miss', 'image:write', 'text:miss', 'text:write']);
    assert.equal(files().length, 4);
    assert.equal((await run({ dtype: 'int8' })).hits, 2);

    // Touching the weights file (new mtime and ctime) makes it hashed again; the content is the same: a hit.
    const w = join(model, 'model.safetensors');
    const later = new Date(statSync(w).mtimeMs + 5000);
    utimesSync(w, later, later);
    const touched = await run();
    assert.deepEqual(touched.events, ['image:hit', 'text:hit']);
    assert.deepEqual(touched.paths, [imageEntry, textEntry]);
    assert.equal(files().length, 4);
    same(touched.img, ref.img);

    // A truncated entry (e.g. a copy cut short) is recognized, deleted and rebuilt in place.
    const img = touched.paths[0]!;
    truncateSync(img, Math.floor(statSync(img).size / 2));
    const repaired = await run();
    assert.deepEqual(repaired.events, ['image:invalid', 'image:miss', 'image:write', 'text:hit']);
    assert.ok(isCompleteEntry({ path: img, key: /-([0-9a-f]{64})\.onnx$/.exec(img)![1]! }));
    same(repaired.img, ref.img);

    // A whole-looking entry that ORT refuses (damaged header, intact end) is deleted and rebuilt too.
    const fd = openSync(img, 'r+');
    writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, 0);
    closeSync(fd);
    const refused = await run();
    assert.deepEqual(refused.events, ['image:invalid', 'image:miss', 'image:write', 'text:hit']);
    same(refused.img, ref.img);
    assert.equal((await run()).hits, 2);

    // cache: false (and CLIP_ONNX_CACHE=0) neither read nor write.
    const before = files();
    process.env.CLIP_ONNX_CACHE = '0';
    utimesSync(w, new Date(later.getTime() + 5000), new Date(later.getTime() + 5000));
    assert.deepEqual((await run()).events, []);
    process.env.CLIP_ONNX_CACHE = '1';
    assert.deepEqual((await run({ cache: false })).events, []);
    assert.deepEqual(files(), before);

    assert.equal(onnxCacheUsage().files, 4);
    assert.ok(onnxCacheUsage().bytes > 0);
    assert.equal(clearOnnxCache().files, 4);
    assert.deepEqual(files(), []);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});


test('a checkpoint replaced by another of the same size and mtime is not served the old graph', { skip: SKIP_FIXTURES }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'clip-onnx-stale-'));
  try {
    const model = join(tmp, 'model');
    mkdirSync(model);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) {
      copyFileSync(fixture('hf-clip-tiny', f), join(model, f));
    }
    const w = join(model, 'model.safetensors');
    const original = readFileSync(w);
    const cacheDir = join(tmp, 'cache');
    const images = [fixture('common', 'images', 'astronaut.png')];
    const run = async (cache: boolean) => {
      const events: string[] = [];
      const saved = process.env.CLIP_ONNX_CACHE_DIR;
      process.env.CLIP_ONNX_CACHE_DIR = cacheDir;
      try {
        const m = await ClipModel.load(model, { threads: 1, cache, onCache: (e) => events.push(`${e.tower}:${e.event}`) });
        const img = (await m.encodeImages(images)).map((r) => Array.from(r.embedding!));
        const txt = (await m.encodeTexts(['a photo of an astronaut'])).map((x) => Array.from(x));
        await m.release();
        return { events, img, txt };
      } finally {
        if (saved === undefined) delete process.env.CLIP_ONNX_CACHE_DIR;
        else process.env.CLIP_ONNX_CACHE_DIR = saved;
      }
    };
    // Same size, other weights: both projections negated (sign bits only, so every value stays finite).
    const header = JSON.parse(original.subarray(8, 8 + Number(original.readBigUInt64LE(0))).toString('utf8'));
    const negated = Buffer.from(original);
    for (const name of ['visual_projection.weight', 'text_projection.weight']) {
      const [a, b] = header[name].data_offsets as [number, number];
      for (let i = 8 + Number(original.readBigUInt64LE(0)) + a + 3; i < 8 + Number(original.readBigUInt64LE(0)) + b; i += 4) negated[i]! ^= 0x80;
    }
    assert.equal(negated.length, original.length);
    // Whole milliseconds (what utimes sets from a Date), so the replacement's mtime is exactly the original's.
    const { mtime, atime } = statSync(w);
    utimesSync(w, atime, mtime);
    const mtimeNs = statSync(w, { bigint: true }).mtimeNs;

    const first = await run(true);
    assert.deepEqual(first.events, ['image:miss', 'image:write', 'text:miss', 'text:write']);
    assert.deepEqual((await run(true)).events, ['image:hit', 'text:hit']);

    // Replaced the usual way (written beside, renamed over: a new inode) with the old mtime put back.
    writeFileSync(`${w}.new`, negated);
    renameSync(`${w}.new`, w);
    utimesSync(w, atime, mtime);
    assert.equal(statSync(w).size, original.length);
    assert.equal(statSync(w, { bigint: true }).mtimeNs, mtimeNs);
    const replaced = await run(true);
    assert.deepEqual(replaced.events, ['image:miss', 'image:write', 'text:miss', 'text:write']);
    const fresh = await run(false);
    assert.deepEqual(replaced.img, fresh.img);
    assert.deepEqual(replaced.txt, fresh.txt);
    assert.notDeepEqual(replaced.img, first.img);
    assert.notDeepEqual(replaced.txt, first.txt);

    // Rewritten in place (same inode, same size) and the mtime put back: only ctime tells; still rehashed.
    writeFileSync(w, original);
    utimesSync(w, atime, mtime);
    // A file changed under 2 s ago is hashed but not memoized (see RACY_NS): wait so that this one is.
    await new Promise((ok) => setTimeout(ok, 2100));
    const back = await run(true);
    assert.deepEqual(back.events, ['image:hit', 'text:hit'], 'the original content hits its original entries');
    assert.deepEqual(back.img, first.img);
    assert.deepEqual(back.txt, first.txt);

    // Warm loads trust the memo while dev, inode, size, mtime and ctime all match (so they do not rehash):
    // a memo doctored to another hash for this very file is believed...
    const memo = join(cacheDir, 'sources', `${createHash('sha256').update(w).digest('hex')}.json`);
    const m = JSON.parse(readFileSync(memo, 'utf8'));
    assert.equal(m.sha256, createHash('sha256').update(original).digest('hex'));
    writeFileSync(memo, JSON.stringify({ ...m, sha256: '0'.repeat(64) }));
    assert.deepEqual((await run(true)).events, ['image:miss', 'image:write', 'text:miss', 'text:write']);
    // ...until anything changes the inode's ctime (here a chmod): the file is hashed again.
    chmodSync(w, 0o644);
    assert.deepEqual((await run(true)).events, ['image:hit', 'text:hit']);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
