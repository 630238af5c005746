// `clip serve`'s HTTP API, through fastify's inject (no sockets): results equal the library's, bad input is a
// 400 naming the field, oversize is a 413, a full queue is a 429, and concurrent requests share model calls.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ClipModel } from '../src/runtime/clip-model.js';
import { buildClassifier, predict } from '../src/tasks/zeroshot.js';
import { BUILTIN_TEMPLATES } from '../src/tasks/templates.js';
import { buildServer, type ServerOptions } from '../src/server/app.js';
import type { EncoderModel } from '../src/server/encoder.js';
import { Batcher, NeverFitsError } from '../src/server/batcher.js';
import { openStore } from '../src/search/open.js';
import { indexFolders } from '../src/search/indexer.js';
import { embedQuery, parseQuery } from '../src/search/query.js';
import type { VectorStore } from '../src/search/store.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose } from './helpers.js';

const IMAGES = fixture('common', 'images');
const img = (name: string) => join(IMAGES, name);
const TOL = 1e-5;

/** The real model, wrapped to count calls and (optionally) hold them at a gate until the test opens it. */
function instrumented(m: ClipModel) {
  const calls = { text: [] as number[], image: [] as number[] };
  let gate: Promise<void> | undefined;
  let open = () => {};
  const model: EncoderModel = {
    dim: m.dim,
    logitScale: m.logitScale,
    encodeTexts: async (texts, o) => {
      calls.text.push(texts.length);
      await gate;
      return m.encodeTexts(texts, o);
    },
    encodeImages: async (inputs, o) => {
      calls.image.push(inputs.length);
      await gate;
      return m.encodeImages(inputs, o);
    },
  };
  return {
    model,
    calls,
    close() {
      gate = new Promise((r) => (open = r));
    },
    open: () => open(),
  };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('Batcher: size and time triggers, per-item errors, all-or-nothing queue bound (no model)', async () => {
  const seen: number[][] = [];
  const b = new Batcher<number, number>({
    maxBatch: 3, maxWaitMs: 200, maxQueue: 5,
    run: async (xs) => {
      seen.push(xs);
      if (xs.includes(-1)) throw new Error('boom');
      return xs.map((x) => (x === 0 ? new Error('zero') : x * 10));
    },
  });
  // Three jobs fill a batch: it runs at once, without waiting out maxWaitMs.
  const t0 = performance.now();
  assert.deepEqual(await b.submitAll([1, 2, 3]), [10, 20, 30]);
  assert.ok(performance.now() - t0 < 150, 'a full batch does not wait');
  // One job waits for company, then runs alone.
  assert.equal(await b.submit(4), 40);
  // An Error output fails only its own job; a throwing run fails the whole batch.
  const [ok, bad] = await Promise.allSettled([b.submit(5), b.submit(0)]);
  assert.deepEqual([ok.status, bad.status], ['fulfilled', 'rejected']);
  await assert.rejects(b.submitAll([7, -1]), /boom/);
  // Six jobs can never fit a queue of five: rejected as a whole (not "retry later"), nothing queued.
  await assert.rejects(b.submitAll([1, 2, 3, 4, 5, 6]), NeverFitsError);
  assert.equal(b.stats.queued, 0);
  assert.deepEqual(seen, [[1, 2, 3], [4], [5, 0], [7, -1]]);
});

describe('clip serve API', { skip: SKIP_FIXTURES }, () => {
  let m: ClipModel;
  let tmp: string;
  let store: VectorStore;
  let lance: VectorStore;
  const servers: { app: { close(): Promise<unknown> } }[] = [];
  const serve = async (o: Partial<ServerOptions> & { model: EncoderModel }) => {
    const s = await buildServer(o);
    servers.push(s);
    return s;
  };
  const json = (url: string, payload: unknown) => ({ method: 'POST' as const, url, payload: payload as object });

  before(async () => {
    m = await ClipModel.load(fixture('hf-clip-tiny'));
    tmp = mkdtempSync(join(tmpdir(), 'clip-serve-'));
    store = await openStore(join(tmp, 'index.clipvec'), { create: { dim: m.dim } });
    const stats = await indexFolders(m, store, [IMAGES]);
    assert.ok(stats.embedded >= 10, `indexed ${stats.embedded} images`);
    // The LanceDB store too, as `clip index` builds it by default.
    lance = await openStore(join(tmp, 'index.lance'), { create: { dim: m.dim } });
    await indexFolders(m, lance, [IMAGES]);
  });
  after(async () => {
    for (const s of servers) await s.app.close();
    await store?.close();
    await lance?.close();
    await m?.release();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('/embed/text equals ClipModel.encodeTexts', async () => {
    const { app } = await serve({ model: m });
    const texts = ['a cat', 'a photo of an astronaut', 'coffee', 'a very long description of a red rocket on a launch pad'];
    const res = await app.inject(json('/embed/text', { texts }));
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    const want = await m.encodeTexts(texts);
    assert.equal(body.dim, m.dim);
    body.embeddings.forEach((e: number[], i: number) => assertClose(e, want[i]!, TOL, texts[i]!));
  });

  test('/embed/image (raw bytes and JSON base64) equals ClipModel.encodeImages', async () => {
    const { app } = await serve({ model: m });
    for (const name of ['astronaut.png', 'chelsea-q90.jpg', 'clip-diagram-rgba.png']) {
      const bytes = readFileSync(img(name));
      const [want] = await m.encodeImages([img(name)]);
      const type = name.endsWith('.jpg') ? 'image/jpeg' : 'image/png';
      const raw = await app.inject({ method: 'POST', url: '/embed/image', payload: bytes, headers: { 'content-type': type } });
      assert.equal(raw.statusCode, 200, raw.body);
      assertClose(raw.json().embedding, want!.embedding!, TOL, `${name} raw`);
      const b64 = await app.inject(json('/embed/image', { image: `data:${type};base64,${bytes.toString('base64')}` }));
      assert.equal(b64.statusCode, 200, b64.body);
      assertClose(b64.json().embedding, want!.embedding!, TOL, `${name} base64`);
    }
  });

  test('/classify equals buildClassifier + predict', async () => {
    const { app } = await serve({ model: m });
    const labels = ['astronaut', 'cat', 'cup of coffee', 'rocket'];
    const bytes = readFileSync(img('chelsea.png'));
    const [emb] = await m.encodeImages([img('chelsea.png')]);
    for (const [templates, list] of [[['a photo of a {}.', 'an image of a {}.'], ['a photo of a {}.', 'an image of a {}.']], ['ensemble', BUILTIN_TEMPLATES.ensemble!]] as const) {
      const want = predict(await buildClassifier(m, labels, [...list]), emb!.embedding!);
      const res = await app.inject(json('/classify', { image: bytes.toString('base64'), labels, templates }));
      assert.equal(res.statusCode, 200, res.body);
      const got = res.json();
      assertClose(labels.map((l) => got.scores[l]), want.probs, TOL, `probs (${String(templates)})`);
      assert.equal(got.label, labels[want.ranking[0]!]);
      assert.deepEqual(got.top.map((t: { label: string }) => t.label), want.ranking.map((i) => labels[i]));
    }
    // Raw bytes with the labels in the query string; no templates means the bare label.
    const want = predict(await buildClassifier(m, labels), emb!.embedding!);
    const raw = await app.inject({ method: 'POST', url: `/classify?labels=${encodeURIComponent(labels.join(','))}`, payload: bytes, headers: { 'content-type': 'image/png' } });
    assert.equal(raw.statusCode, 200, raw.body);
    assertClose(labels.map((l) => raw.json().scores[l]), want.probs, TOL, 'raw probs');
  });

  test('validation errors are 400 with a message naming the field', async () => {
    const { app } = await serve({ model: m, store });
    const png = readFileSync(img('coffee.png')).toString('base64');
    const cases: [string, unknown, RegExp][] = [
      ['/embed/text', {}, /body must have required property 'texts'/],
      ['/embed/text', { texts: [] }, /body\/texts must NOT have fewer than 1 items/],
      ['/embed/text', { texts: ['ok', { a: 1 }] }, /body\/texts\/1 must be string/],
      ['/embed/text', { texts: ['x'.repeat(2001)] }, /body\/texts\/0 must NOT have more than 2000 characters/],
      ['/embed/text', { texts: Array(257).fill('a') }, /body\/texts must NOT have more than 256 items/],
      ['/embed/text', { texts: ['a'], normalise: true }, /body\/normalise is not a known field/],
      ['/embed/image', { image: 'not base64!' }, /body\/image must be base64/],
      ['/embed/image', { image: Buffer.from('hello').toString('base64') }, /body\/image: not a readable image/],
      ['/classify', { image: png }, /body must have required property 'labels'/],
      ['/classify', { image: png, labels: ['a'], templates: ['no placeholder'] }, /body\/templates\/0 must match pattern/],
      ['/classify', { image: png, labels: ['a'], templates: 'nope' }, /body\/templates/],
      ['/classify', { image: png, labels: ['a', 'a'] }, /body\/labels has duplicates/],
      ['/search', { query: 'cat', k: 0 }, /body\/k must be >= 1/],
      ['/search', { query: 'cat', image: png }, /exactly one of query/],
      ['/search', {}, /exactly one of query/],
      ['/search', { query: '"unclosed' }, /body\/query: unclosed/],
      ['/search', { query: 'cat - cat' }, /body\/query: the terms cancel out/],
    ];
    for (const [url, payload, re] of cases) {
      const res = await app.inject(json(url, payload));
      assert.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload).slice(0, 80)} -> ${res.statusCode} ${res.body}`);
      assert.match(res.json().error, re, `${url} ${JSON.stringify(payload).slice(0, 80)}`);
    }
    const badJson = await app.inject({ method: 'POST', url: '/embed/text', payload: '{"texts": [', headers: { 'content-type': 'application/json' } });
    assert.equal(badJson.statusCode, 400);
    const wrongType = await app.inject({ method: 'POST', url: '/embed/image', payload: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(wrongType.statusCode, 415);
    const garbage = await app.inject({ method: 'POST', url: '/embed/image', payload: Buffer.from('GIF89a....'), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(garbage.statusCode, 400);
    const noLabels = await app.inject({ method: 'POST', url: '/classify', payload: readFileSync(img('coffee.png')), headers: { 'content-type': 'image/png' } });
    assert.equal(noLabels.statusCode, 400);
    assert.match(noLabels.json().error, /querystring\/labels is required/);
  });

  test('oversize bodies and images are 413', async () => {
    const { app } = await serve({ model: m, maxImageBytes: 20_000, maxImagePixels: 1_000_000 });
    const big = readFileSync(img('astronaut.png'));
    assert.ok(big.length > 20_000);
    const raw = await app.inject({ method: 'POST', url: '/embed/image', payload: big, headers: { 'content-type': 'image/png' } });
    assert.equal(raw.statusCode, 413, raw.body);
    assert.match(raw.json().error, /limit is 20000/);
    const b64 = await app.inject(json('/classify', { image: big.toString('base64'), labels: ['a'] }));
    assert.equal(b64.statusCode, 413, b64.body);
    // Past the route's body limit fastify stops reading at all.
    const huge = await app.inject({ method: 'POST', url: '/embed/image', payload: Buffer.alloc(200_000), headers: { 'content-type': 'image/png' } });
    assert.equal(huge.statusCode, 413);
    const texts = await app.inject(json('/embed/text', { texts: ['y'.repeat(1_100_000)] }));
    assert.equal(texts.statusCode, 413, 'a 1 MiB+ JSON body');
    // Few bytes, many pixels: refused from the header, before anything decodes it.
    const bomb = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#000' } }).png().toBuffer();
    assert.ok(bomb.length < 20_000);
    const px = await app.inject({ method: 'POST', url: '/embed/image', payload: bomb, headers: { 'content-type': 'image/png' } });
    assert.equal(px.statusCode, 413, px.body);
    assert.match(px.json().error, /1200x1000 pixels/);
  });

  test('a full queue answers 429 with Retry-After, and the queued requests still succeed', async () => {
    const inst = instrumented(m);
    const { app, encoder } = await serve({ model: inst.model, maxQueue: 4, maxTextBatch: 2, maxWaitMs: 1 });
    inst.close();
    const first = app.inject(json('/embed/text', { texts: ['first'] }));
    await until(() => encoder.texts.stats.running === 1, 'the first batch to start');
    const queued = ['q1', 'q2', 'q3', 'q4'].map((t) => app.inject(json('/embed/text', { texts: [t] })));
    await until(() => encoder.texts.stats.queued === 4, 'four queued jobs');
    const health = (await app.inject({ url: '/health' })).json();
    assert.equal(health.queue.depth, 4);
    const full = await app.inject(json('/embed/text', { texts: ['one too many'] }));
    assert.equal(full.statusCode, 429, full.body);
    assert.ok(Number(full.headers['retry-after']) >= 1, `Retry-After: ${full.headers['retry-after']}`);
    assert.match(full.json().error, /queue is full/);
    // A request bigger than the whole queue can never fit: 400, not an endless 429.
    const tooMany = await app.inject(json('/embed/text', { texts: ['a', 'b', 'c', 'd', 'e'] }));
    assert.equal(tooMany.statusCode, 400, tooMany.body);
    inst.open();
    for (const r of [first, ...queued]) assert.equal((await r).statusCode, 200);
    assert.deepEqual(inst.calls.text, [1, 2, 2]);
  });

  test('dynamic batching: concurrent requests share model calls, results unchanged', async (t) => {
    const texts = Array.from({ length: 40 }, (_, i) => `photo number ${i} of a ${['cat', 'dog', 'rocket', 'cup'][i % 4]}`);
    const want = await m.encodeTexts(texts);

    // Deterministic: hold the first call, let 39 requests pile up, release. 1 + ceil(39 / 16) calls.
    const held = instrumented(m);
    const a = await serve({ model: held.model, maxTextBatch: 16, maxWaitMs: 5 });
    held.close();
    const first = a.app.inject(json('/embed/text', { texts: [texts[0]] }));
    await until(() => a.encoder.texts.stats.running === 1, 'the first batch to start');
    const rest = texts.slice(1).map((t) => a.app.inject(json('/embed/text', { texts: [t] })));
    await until(() => a.encoder.texts.stats.queued === 39, 'all requests queued');
    held.open();
    const outs = await Promise.all([first, ...rest]);
    outs.forEach((r, i) => assertClose(r.json().embeddings[0], want[i]!, TOL, `text ${i}`));
    assert.deepEqual(held.calls.text, [1, 16, 16, 7]);

    // Free-running: 40 simultaneous single-text requests and 12 single-image requests.
    const free = instrumented(m);
    const b = await serve({ model: free.model, maxBatch: 16, maxWaitMs: 5 });
    const names = ['astronaut.png', 'camera.png', 'coffee.png', 'horse.png', 'rocket.png', 'flower.jpg'];
    const imgWant = await m.encodeImages(names.map(img));
    const [tOut, iOut] = await Promise.all([
      Promise.all(texts.map((t) => b.app.inject(json('/embed/text', { texts: [t] })))),
      Promise.all([...names, ...names].map((n) => b.app.inject({
        method: 'POST', url: '/embed/image', payload: readFileSync(img(n)), headers: { 'content-type': n.endsWith('.jpg') ? 'image/jpeg' : 'image/png' },
      }))),
    ]);
    tOut.forEach((r, i) => assertClose(r.json().embeddings[0], want[i]!, TOL, `free text ${i}`));
    iOut.forEach((r, i) => assertClose(r.json().embedding, imgWant[i % names.length]!.embedding!, TOL, `free image ${i}`));
    assert.equal(free.calls.text.reduce((s, n) => s + n, 0), 40);
    // Timing-dependent (a 5 ms window), so the bound is loose; the held run above is the exact proof.
    t.diagnostic(`free-running batch sizes: text ${free.calls.text}, image ${free.calls.image}`);
    assert.ok(free.calls.text.length <= 20, `40 text requests took ${free.calls.text.length} model calls: ${free.calls.text}`);
    assert.ok(free.calls.image.length <= 9, `12 image requests took ${free.calls.image.length} model calls: ${free.calls.image}`);
    const health = (await b.app.inject({ url: '/health' })).json();
    assert.equal(health.queue.text.items, 40);
    assert.equal(health.queue.text.batches, free.calls.text.length);
  });

  for (const kind of ['exact', 'lance']) test(`/search by text and by image equals the ${kind} store queried with the library`, async () => {
    const idx = kind === 'exact' ? store : lance;
    const { app } = await serve({ model: m, store: idx, storePath: `index (${kind})` });
    for (const query of ['a cat', '"astronaut" + "rocket" - "coffee"']) {
      const res = await app.inject(json('/search', { query, k: 5 }));
      assert.equal(res.statusCode, 200, res.body);
      const want = await idx.search(await embedQuery(m, parseQuery([query])), 5);
      const got = res.json().results;
      assert.deepEqual(got.map((r: { id: string }) => r.id), want.map((h) => h.id), query);
      assertClose(got.map((r: { score: number }) => r.score), want.map((h) => h.score), TOL, query);
      assert.equal(got[0].thumb, `/thumb?id=${encodeURIComponent(want[0]!.id)}`);
    }
    const bytes = readFileSync(img('horse.png'));
    const res = await app.inject({ method: 'POST', url: '/search?k=3', payload: bytes, headers: { 'content-type': 'image/png' } });
    assert.equal(res.statusCode, 200, res.body);
    const [q] = await m.encodeImages([img('horse.png')]);
    const want = await idx.search(q!.embedding!, 3);
    assert.deepEqual(res.json().results.map((r: { path: string }) => r.path), want.map((h) => h.meta.path));
    assert.equal(res.json().results[0].path, img('horse.png'), 'an indexed image finds itself first');
    const health = (await app.inject({ url: '/health' })).json();
    assert.equal(health.index.count, await idx.count());
  });

  test('/thumb serves indexed images only; no index means 404 with a clear message', async () => {
    const { app } = await serve({ model: m, store });
    const res = await app.inject({ url: `/thumb?id=${encodeURIComponent(img('tall-90x700.png'))}&size=128` });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/jpeg');
    const meta = await sharp(res.rawPayload).metadata();
    assert.ok(meta.height === 128 && meta.width! <= 128, `${meta.width}x${meta.height}`);
    for (const id of ['/etc/passwd', `${IMAGES}/../images/coffee.png`, `${IMAGES}/../../hf-clip-tiny/config.json`]) {
      const r = await app.inject({ url: `/thumb?id=${encodeURIComponent(id)}` });
      assert.equal(r.statusCode, 404, `${id}: ${r.body}`);
      assert.match(r.json().error, /not in the index/);
    }
    assert.equal((await app.inject({ url: '/thumb' })).statusCode, 400);
    // LanceDB looks ids up with SQL; a quote in an id must stay data.
    const viaLance = await serve({ model: m, store: lance });
    assert.equal((await viaLance.app.inject({ url: `/thumb?id=${encodeURIComponent(img('coffee.png'))}` })).statusCode, 200);
    const injected = await viaLance.app.inject({ url: `/thumb?id=${encodeURIComponent("x' OR id <> '")}` });
    assert.equal(injected.statusCode, 404, injected.body);

    const bare = await serve({ model: m });
    for (const r of [await bare.app.inject(json('/search', { query: 'cat' })), await bare.app.inject({ url: '/thumb?id=x' })]) {
      assert.equal(r.statusCode, 404);
      assert.match(r.json().error, /no search index: start the server with --db/);
    }
    const page = await bare.app.inject({ url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /text\/html/);
    assert.equal((await bare.app.inject({ url: '/app.js' })).statusCode, 200);
    assert.equal((await bare.app.inject({ url: '/../package.json' })).statusCode, 404);
  });
});
