// `clip serve` against hostile clients (issue 14): every serve flag reaches the server (through the real CLI),
// only the bound host names are answered, slow clients are cut off, and requests that can never be served
// get a 400 naming the field and the limit before anything is queued (never an endless 429).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ClipModel } from '../src/runtime/clip-model.js';
import { buildServer, type ServerOptions } from '../src/server/app.js';
import { Batcher, NeverFitsError, QueueFullError } from '../src/server/batcher.js';
import type { EncoderModel } from '../src/server/encoder.js';
import { HostPolicy } from '../src/server/hosts.js';
import { openStore } from '../src/search/open.js';
import { indexFolders } from '../src/search/indexer.js';
import type { VectorStore } from '../src/search/store.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';

const IMAGES = fixture('common', 'images');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A real loopback request with any Host/Origin (fetch may not set Host). With `early`, the headers go first
 * and the body only if no answer came within that many ms: a server that refuses by Content-Length answers
 * at once and closes, and a client still writing megabytes then may see the connection reset before it has
 * read the answer (a race of the network, not of the server).
 */
function send(port: number, method: string, path: string, o: { body?: Buffer | string; type?: string; headers?: Record<string, string>; early?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...o.headers };
    if (o.body !== undefined) {
      headers['content-type'] = o.type ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(o.body);
    }
    let answered = false;
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
    // The server may answer (413) and close before it has read an oversize body; the answer is what counts.
    req.on('error', (e) => (answered ? undefined : reject(e)));
    if (o.early === undefined) return req.end(o.body);
    req.flushHeaders();
    setTimeout(() => answered || req.end(o.body), o.early);
  });
}

/** An incompressible PNG of about `bytes` bytes (random RGB noise). */
async function noisePng(bytes: number): Promise<Buffer> {
  const side = Math.ceil(Math.sqrt(bytes / 3));
  const px = Buffer.alloc(side * side * 3);
  for (let i = 0; i < px.length; i++) px[i] = (Math.random() * 256) | 0;
  return sharp(px, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
}

test('Batcher: a request larger than the whole queue is NeverFits (400), not QueueFull (429)', async () => {
  const b = new Batcher<number, number>({ maxBatch: 2, maxWaitMs: 1, maxQueue: 3, run: async (xs) => xs });
  await assert.rejects(b.submitAll([1, 2, 3, 4]), (e) => e instanceof NeverFitsError && !(e instanceof QueueFullError) && /4 inputs.*at most 3/.test(e.message));
  assert.deepEqual(await b.submitAll([1, 2, 3]), [1, 2, 3]);
});

test('Batcher: a batch stops at maxBatchWeight; an item heavier than that runs alone', async () => {
  const seen: number[][] = [];
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const b = new Batcher<number, number>({
    maxBatch: 16, maxWaitMs: 1, maxQueue: 64, weight: (x) => x, maxBatchWeight: 10,
    run: async (xs) => {
      seen.push(xs);
      if (seen.length === 1) await held;
      return xs;
    },
  });
  const first = b.submit(1);
  while (!seen.length) await new Promise((r) => setTimeout(r, 1));
  const rest = [4, 4, 4, 30, 2, 5, 5].map((x) => b.submit(x));
  release();
  await Promise.all([first, ...rest]);
  assert.deepEqual(seen, [[1], [4, 4], [4], [30], [2, 5], [5]]);
});

test('HostPolicy: loopback, the bound host and listed names; ports ignored; * allows any', () => {
  const p = new HostPolicy('photos.lan', ['Cam.Example', '.example.org']);
  for (const h of ['localhost', 'localhost:8080', '127.0.0.1:1', '[::1]:8080', '[::1]', 'photos.lan:80', 'cam.example', 'example.org', 'a.b.example.org:9']) {
    assert.ok(p.allows(h), h);
  }
  for (const h of ['evil.example', 'evil.example:8080', 'localhost.evil.example', 'notexample.org', 'example.org.evil', '127.0.0.2', 'user@localhost', 'localhost/x', '']) {
    assert.ok(!p.allows(h), h);
  }
  // The address a connection arrived on is served (a 0.0.0.0 bind reached by IP), IPv4-mapped or not.
  const wild = new HostPolicy('0.0.0.0');
  assert.ok(wild.allows('192.168.1.5:8080', '::ffff:192.168.1.5'));
  assert.ok(!wild.allows('192.168.1.6:8080', '::ffff:192.168.1.5'));
  assert.ok(new HostPolicy('::1').allows('[::1]:80'));
  assert.ok(new HostPolicy(undefined, ['*']).allows('anything.at.all'));
  assert.throws(() => new HostPolicy(undefined, ['a b']), /allowed host "a b" is not a host name/);
  assert.match(p.refusal(undefined, undefined) ?? '', /Host header is required/);
  assert.match(p.refusal('localhost', 'null') ?? '', /Origin "null"/);
  assert.match(p.refusal('localhost', 'http://evil.example') ?? '', /Origin "http:\/\/evil.example"/);
  assert.equal(p.refusal('localhost:8080', 'http://localhost:8080'), undefined);
});

describe('clip serve hardening', { skip: SKIP_FIXTURES }, () => {
  let m: ClipModel;
  let tmp: string;
  let store: VectorStore;
  const servers: { app: { close(): Promise<unknown> } }[] = [];
  const serve = async (o: Partial<ServerOptions> = {}) => {
    const s = await buildServer({ model: m, store, ...o });
    servers.push(s);
    return s;
  };
  const json = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    ({ method: 'POST' as const, url, payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: { 'content-type': 'application/json', ...headers } });

  before(async () => {
    m = await ClipModel.load(fixture('hf-clip-tiny'));
    tmp = mkdtempSync(join(tmpdir(), 'clip-harden-'));
    store = await openStore(join(tmp, 'index.clipvec'), { create: { dim: m.dim } });
    await indexFolders(m, store, [IMAGES]);
  });
  after(async () => {
    for (const s of servers) await s.app.close();
    await store?.close();
    await m?.release();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('clip serve (the real CLI) applies every limit flag: --max-image-mb 1 answers 413 to a 3 MB image', { timeout: 120_000 }, async () => {
    const args = [CLIP_BIN, 'serve', '--model', fixture('hf-clip-tiny'), '--no-cache', '--db', join(tmp, 'index.clipvec'),
      '--host', '127.0.0.1', '--port', '0', '--max-image-mb', '1', '--max-queue', '7', '--max-wait-ms', '3', '--batch-size', '4',
      '--request-timeout-ms', '4000', '--max-connections', '40', '--allowed-hosts', 'photos.lan,.example.org'];
    let child: ChildProcess | undefined;
    let stderr = '';
    try {
      child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      const port = await new Promise<number>((resolve, reject) => {
        child!.stderr!.on('data', (d: Buffer) => {
          stderr += d;
          const at = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
          if (at) resolve(Number(at[1]));
        });
        child!.on('exit', (code) => reject(new Error(`clip serve exited (${code}): ${stderr}`)));
        setTimeout(() => reject(new Error(`clip serve did not start in 60 s: ${stderr}`)), 60_000).unref();
      });
      const health = JSON.parse((await send(port, 'GET', '/health')).body);
      assert.equal(health.limits.maxImageBytes, 1 << 20);
      assert.equal(health.limits.maxQueue, 7);
      assert.equal(health.queue.limit, 7);
      assert.equal(health.limits.maxWaitMs, 3);
      assert.equal(health.limits.maxBatch, 4);
      assert.equal(health.limits.requestTimeoutMs, 4000);
      assert.equal(health.limits.maxConnections, 40);
      assert.deepEqual(health.limits.allowedHosts, ['localhost', '127.0.0.1', '[::1]', 'photos.lan', '.example.org']);
      assert.equal(health.index.count, await store.count());

      const big = await noisePng(3_000_000);
      assert.ok(big.length > 2.9e6, `${big.length} bytes`);
      const raw = await send(port, 'POST', '/embed/image', { body: big, type: 'image/png', early: 2000 });
      assert.equal(raw.status, 413, raw.body);
      const b64 = await send(port, 'POST', '/search', { body: JSON.stringify({ image: big.toString('base64') }), early: 2000 });
      assert.equal(b64.status, 413, b64.body);
      // Just over the limit but inside the route's body limit: refused by the image check, which names the limit.
      const over = await noisePng(1.1 * 2 ** 20);
      const overRes = await send(port, 'POST', '/embed/image', { body: over, type: 'image/png' });
      assert.equal(overRes.status, 413, overRes.body);
      assert.match(JSON.parse(overRes.body).error, /the limit is 1048576/);
      const small = await send(port, 'POST', '/embed/image', { body: readFileSync(join(IMAGES, 'coffee.png')), type: 'image/png' });
      assert.equal(small.status, 200, small.body);
      // --max-queue 7: eight texts can never fit.
      const eight = await send(port, 'POST', '/embed/text', { body: JSON.stringify({ texts: 'abcdefgh'.split('') }) });
      assert.equal(eight.status, 400, eight.body);
      assert.match(JSON.parse(eight.body).error, /body\/texts: 8 texts to embed, more than this server's queue holds \(7/);
      // --allowed-hosts
      for (const host of ['photos.lan:8080', 'cam.example.org', `localhost:${port}`]) {
        assert.equal((await send(port, 'POST', '/search', { body: JSON.stringify({ query: 'a cat' }), headers: { host } })).status, 200, host);
      }
      const evil = await send(port, 'POST', '/search', { body: JSON.stringify({ query: 'a cat' }), headers: { host: 'evil.example' } });
      assert.equal(evil.status, 403, evil.body);
    } finally {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child!.once('exit', r));
      }
    }
    assert.match(stderr, /shutting down/);
  });

  test('a foreign Host gets 403 with a JSON error by default; loopback names and allowed hosts get 200', async () => {
    const { app } = await serve();
    const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
    const search = (headers: Record<string, string>) => send(port, 'POST', '/search', { body: JSON.stringify({ query: 'a cat', k: 3 }), headers });
    for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', '127.0.0.1.nip.io']) {
      const r = await search({ host });
      assert.equal(r.status, 403, `${host}: ${r.body}`);
      assert.match(JSON.parse(r.body).error, /Host ".*" is not served here; allowed: localhost, 127.0.0.1, \[::1\]/);
      // Nothing leaks through the other routes either: the page, thumbnails, health, unknown routes.
      for (const path of ['/', '/health', `/thumb?id=${encodeURIComponent(join(IMAGES, 'coffee.png'))}`, '/nope']) {
        assert.equal((await send(port, 'GET', path, { headers: { host } })).status, 403, `${host} ${path}`);
      }
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', '[::1]:1']) {
      const r = await search({ host });
      assert.equal(r.status, 200, `${host}: ${r.body}`);
      assert.equal(JSON.parse(r.body).results.length, 3);
    }
    // A page from another site may not drive the model even blind (no CORS, so it could never read the answer).
    for (const origin of ['http://evil.example', 'null', `http://evil.example:${port}`]) {
      assert.equal((await search({ host: `127.0.0.1:${port}`, origin })).status, 403, origin);
    }
    assert.equal((await search({ host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` })).status, 200);
    assert.equal((await search({ host: `localhost:${port}`, origin: `http://localhost:${port}` })).status, 200);

    const open = await serve({ allowedHosts: ['*'] });
    assert.equal((await open.app.inject({ url: '/health', headers: { host: 'evil.example' } })).statusCode, 200);
    const listed = await serve({ host: '0.0.0.0', allowedHosts: ['photos.lan'] });
    assert.equal((await listed.app.inject({ url: '/health', headers: { host: 'photos.lan:8080' } })).statusCode, 200);
    assert.equal((await listed.app.inject({ url: '/health', headers: { host: 'evil.example' } })).statusCode, 403);
  });

  test('slow clients are cut off: a byte every 200 ms against a 500 ms request timeout', async () => {
    const { app } = await serve({ requestTimeoutMs: 500 });
    const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
    /** Open a raw socket, write `head`, then `drip` every 200 ms; resolves when the server closes it. */
    const loris = (head: string, drip: string) => new Promise<{ ms: number; reply: string }>((resolve) => {
      const t0 = Date.now();
      let reply = '';
      let timer: NodeJS.Timeout | undefined;
      const s: Socket = connect(port, '127.0.0.1', () => {
        if (head) s.write(head);
        if (drip) timer = setInterval(() => s.write(drip), 200);
      });
      s.on('data', (d) => (reply += d));
      s.on('error', () => {});
      s.on('close', () => {
        clearInterval(timer);
        clearTimeout(giveUp);
        resolve({ ms: Date.now() - t0, reply });
      });
      const giveUp = setTimeout(() => s.destroy(), 20_000);
    });
    const cases: [string, string, string][] = [
      ['body', 'POST /embed/text HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"texts":["', 'a'],
      ['headers', 'POST /embed/text HTTP/1.1\r\n', 'X'],
      ['silent', '', ''],
    ];
    const results = await Promise.all(cases.map(([, head, drip]) => loris(head, drip)));
    results.forEach(({ ms, reply }, i) => {
      // Cut at 0.5 s plus Node's check interval; 20 s means it was never cut.
      assert.ok(ms < 5000, `${cases[i]![0]}: held for ${ms} ms`);
      assert.match(reply, /^HTTP\/1\.1 408/, `${cases[i]![0]}: ${reply.slice(0, 60)}`);
    });
    // The server is still fine for a normal request.
    assert.equal((await send(port, 'GET', '/health')).status, 200);
  });

  test('connections beyond maxConnections are refused at accept', async () => {
    const { app } = await serve({ maxConnections: 3 });
    const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
    const open = (): Promise<Socket> => new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    });
    const held = [await open(), await open(), await open()];
    try {
      await new Promise((r) => setTimeout(r, 100)); // let the server accept all three
      const extra = await send(port, 'GET', '/health').then((r) => r.status, (e: Error) => e.message);
      assert.notEqual(extra, 200, 'a fourth connection must not be served');
    } finally {
      for (const s of held) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await send(port, 'GET', '/health')).status, 200, 'served again once connections close');
  });

  test('image batches are bounded by pixels, so concurrent large uploads are not all decoded at once', async () => {
    const sizes: number[] = [];
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const model: EncoderModel = {
      dim: m.dim,
      logitScale: m.logitScale,
      encodeTexts: (texts, o) => m.encodeTexts(texts, o),
      encodeImages: async (inputs, o) => {
        sizes.push(inputs.length);
        if (sizes.length === 1) await held;
        return m.encodeImages(inputs, o);
      },
    };
    // 200x200 = 40,000 pixels each; 100,000 per batch fits two.
    const { app, encoder } = await serve({ model, maxBatch: 16, maxBatchPixels: 100_000 });
    const png = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#2a6' } }).png().toBuffer();
    const up = () => app.inject({ method: 'POST', url: '/embed/image', payload: png, headers: { 'content-type': 'image/png' } });
    const first = up();
    while (encoder.images.stats.running !== 1) await new Promise((r) => setTimeout(r, 2));
    const rest = Array.from({ length: 5 }, up);
    while (encoder.images.stats.queued !== 5) await new Promise((r) => setTimeout(r, 2));
    release();
    for (const r of await Promise.all([first, ...rest])) assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(sizes, [1, 2, 2, 1]);
    assert.equal((await app.inject({ url: '/health' })).json().limits.maxBatchPixels, 100_000);
  });

  test('requests that can never be served are a 400 naming the field and the limit, never a 429', async () => {
    const { app, encoder } = await serve({ maxQueue: 8 });
    // `a + a + ...`: 400 terms in 1,597 characters, inside the 2,000-character limit on a query.
    const terms = (n: number) => Array(n).fill('a').join(' + ');
    const png = readFileSync(join(IMAGES, 'coffee.png')).toString('base64');
    const deepArray = `{"texts":${'['.repeat(300_000)}${']'.repeat(300_000)}}`;
    const deepObject = `{"texts":["a"],"x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`;
    const cases: [string, unknown, RegExp][] = [
      // The repro: 400 query terms on an idle server answered 429 forever.
      ['/search', { query: terms(400) }, /body\/query has 400 terms; the limit is 32/],
      ['/search', { query: terms(33) }, /body\/query has 33 terms; the limit is 32/],
      // Within the term limit but beyond this server's queue of 8.
      ['/search', { query: terms(9) }, /body\/query: 9 texts to embed, more than this server's queue holds \(8/],
      ['/embed/text', { texts: Array(9).fill('a') }, /body\/texts: 9 texts to embed, more than this server's queue holds \(8/],
      ['/classify', { image: png, labels: ['a', 'b', 'c'], templates: ['a {}', 'the {}', 'one {}'] }, /body\/labels x templates: 9 texts/],
      // No type coercion: numbers are not texts, one string is not a list, "5" is not a number.
      ['/embed/text', { texts: [5] }, /body\/texts\/0 must be string/],
      ['/embed/text', { texts: ['a', true] }, /body\/texts\/1 must be string/],
      ['/embed/text', { texts: 'a cat' }, /body\/texts must be array/],
      ['/classify', { image: png, labels: 'cat' }, /body\/labels must be array/],
      ['/search', { query: 42 }, /body\/query must be string/],
      ['/search', { query: 'cat', k: '5' }, /body\/k must be integer/],
      ['/search', { query: 'cat', k: 1e300 }, /body\/k must be <= 200/],
      ['/search', { query: 'cat', k: 2.5 }, /body\/k must be integer/],
      ['/search', { query: ['cat'] }, /body\/query must be string/],
      ['/embed/image', { image: 12345 }, /body\/image must be string/],
      // Deep nesting is refused quickly, not by a stack overflow.
      ['/embed/text', deepArray, /body\/texts\/0 must be string/],
      ['/embed/text', deepObject, /body\/x is not a known field/],
    ];
    for (const [url, payload, re] of cases) {
      const t0 = performance.now();
      const res = await app.inject(json(url, payload));
      const what = `${url} ${(typeof payload === 'string' ? payload : JSON.stringify(payload)).slice(0, 60)}`;
      assert.equal(res.statusCode, 400, `${what} -> ${res.statusCode} ${res.body}`);
      assert.match(res.json().error, re, what);
      assert.ok(performance.now() - t0 < 5000, `${what} took ${performance.now() - t0} ms`);
    }
    // Query strings: numbers are range-checked with the field named, labels are length-checked.
    const raw = readFileSync(join(IMAGES, 'coffee.png'));
    const rawCases: [string, RegExp][] = [
      ['/search?k=0', /querystring\/k must be an integer from 1 to 200/],
      ['/search?k=201', /querystring\/k must be an integer from 1 to 200/],
      ['/search?k=abc', /querystring\/k must match pattern/],
      ['/search?k=1&k=2', /querystring\/k must be string/],
      [`/classify?labels=${'x'.repeat(2001)}`, /querystring\/labels\/0 must NOT have more than 2000 characters/],
      [`/classify?labels=${Array.from({ length: 257 }, (_, i) => `l${i}`).join(',')}`, /querystring\/labels has 257 labels; the limit is 256/],
      ['/classify?labels=a,b,c,d,e,f,g,h,i', /querystring\/labels x templates: 9 texts/],
    ];
    for (const [url, re] of rawCases) {
      const res = await app.inject({ method: 'POST', url, payload: raw, headers: { 'content-type': 'image/png' } });
      assert.equal(res.statusCode, 400, `${url.slice(0, 60)} -> ${res.statusCode} ${res.body}`);
      assert.match(res.json().error, re, url.slice(0, 60));
    }
    for (const [url, re] of [['/thumb?id=x&size=8', /querystring\/size must be an integer from 16 to 512/], ['/thumb?id=x&size=1e3', /querystring\/size must match pattern/]] as const) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 400, res.body);
      assert.match(res.json().error, re);
    }
    // Nothing was queued by any of them, and query-string numbers still work.
    assert.equal(encoder.texts.stats.items + encoder.images.stats.items, 0);
    const ok = await app.inject({ method: 'POST', url: '/search?k=2', payload: raw, headers: { 'content-type': 'image/png' } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().results.length, 2);
    const thumb = await app.inject({ url: `/thumb?id=${encodeURIComponent(join(IMAGES, 'coffee.png'))}&size=32` });
    assert.equal(thumb.statusCode, 200, thumb.body);
    assert.ok((await sharp(thumb.rawPayload).metadata()).width! <= 32);
  });
});
