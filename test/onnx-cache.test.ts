// The on-disk cache of built tower ONNX: stores one file per tower, serves later loads without building,
// keys on dtype and the weights file's mtime, and survives damaged entries. CLIP_CACHE points at a temporary
// folder so the user's cache is never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, truncateSync, utimesSync, writeSync, closeSync } from 'node:fs';
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
    const files = () => (existsSync(dir) ? readdirSync(dir).sort() : []);
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

    // Touching the weights file changes the fingerprint: rebuilt under new names.
    const w = join(model, 'model.safetensors');
    const later = new Date(statSync(w).mtimeMs + 5000);
    utimesSync(w, later, later);
    const touched = await run();
    assert.deepEqual(touched.events, ['image:miss', 'image:write', 'text:miss', 'text:write']);
    assert.ok(!touched.paths.includes(imageEntry) && !touched.paths.includes(textEntry));
    assert.equal(files().length, 6);
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

    assert.equal(onnxCacheUsage().files, 6);
    assert.ok(onnxCacheUsage().bytes > 0);
    assert.equal(clearOnnxCache().files, 6);
    assert.deepEqual(files(), []);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});

