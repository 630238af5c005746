// Soak: 200 concurrent clients for CLIP_SOAK_SECONDS (default 60) against a real `clip serve`-style server in a
// child process, over loopback only, with a mix of valid and invalid requests. Passes when the server never
// dies or answers 5xx, every bad request gets its 4xx, and its memory stays bounded (see MEMORY below).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';

const SECONDS = Number(process.env.CLIP_SOAK_SECONDS ?? 60);
const CLIENTS = 200;
const MAX_IMAGE = 512 << 10;
const MiB = 1 << 20;

/**
 * MEMORY: the server holds at most 64 queued jobs per tower (each an upload of <= 512 KiB, decoded and
 * resized one batch of 16 at a time) and the bodies of at most 200 concurrent requests (<= ~1.7 MiB each,
 * the route body limit). That bounds request-driven memory at roughly 200 x 1.7 MiB + 128 x 0.5 MiB, about
 * 400 MiB, on top of the warmed-up baseline; the fixture images are mostly smaller, so real use is far
 * lower. A leak shows as a trend instead: the last third's peak must not exceed the middle third's by more
 * than LEAK_SLACK (allocator and GC noise).
 */
const GROWTH_LIMIT = 400 * MiB;
const LEAK_SLACK = 64 * MiB;

/** The server process: the real buildServer + an index of the fixture images, on 127.0.0.1 and a free port. */
const childSource = (root: string, dbPath: string) => `
  const imp = (p) => import(${JSON.stringify(pathToFileURL(root).href)} + '/dist/src/' + p);
  const { ClipModel } = await imp('runtime/clip-model.js');
  const { openStore } = await imp('search/open.js');
  const { indexFolders } = await imp('search/indexer.js');
  const { buildServer } = await imp('server/app.js');
  const model = await ClipModel.load(${JSON.stringify(fixture('hf-clip-tiny'))});
  const store = await openStore(${JSON.stringify(dbPath)}, { create: { dim: model.dim } });
  await indexFolders(model, store, [${JSON.stringify(fixture('common', 'images'))}]);
  const { app } = await buildServer({ model, store, maxQueue: 64, maxBatch: 16, maxImageBytes: ${MAX_IMAGE} });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(JSON.stringify({ address }) + '\\n');
  process.on('SIGTERM', async () => { await app.close(); await store.close(); await model.release(); process.exit(0); });
`;

/**
 * The server's RSS: from /proc on Linux (works even while the server is too busy to answer), else from its
 * /health over a connection of its own (the clients' pool is always full).
 */
async function rssOf(pid: number, port: number, agent: Agent): Promise<number> {
  const proc = `/proc/${pid}/status`;
  if (existsSync(proc)) return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(proc, 'utf8'))![1]) * 1024;
  return JSON.parse((await send(agent, port, 'GET', '/health')).body.toString()).memory.rssBytes;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function send(agent: Agent, port: number, method: string, path: string, body?: Buffer | string, type?: string, extra?: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...extra };
    if (body !== undefined) {
      headers['content-type'] = type ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error('request timed out after 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

type Kind = { name: string; weight: number; expect: number[]; make: () => [string, string, (Buffer | string)?, string?, Record<string, string>?] };

function kinds(images: { name: string; bytes: Buffer }[], ids: string[]): Kind[] {
  const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
  const word = () => pick(['cat', 'dog', 'rocket', 'coffee', 'horse', 'astronaut', 'flower', 'camera', 'beach', 'night']);
  const imgType = (n: string) => (n.endsWith('.jpg') ? 'image/jpeg' : 'image/png');
  const ok = [200, 429]; // 429 is the bounded queue doing its job under 200 clients
  const junk = Buffer.alloc(600 << 10, 7);
  return [
    { name: 'embed-text', weight: 10, expect: ok, make: () => ['POST', '/embed/text', JSON.stringify({ texts: [`a photo of a ${word()}`, word()] })] },
    { name: 'embed-image', weight: 6, expect: ok, make: () => { const i = pick(images); return ['POST', '/embed/image', i.bytes, imgType(i.name)]; } },
    { name: 'classify', weight: 5, expect: ok, make: () => ['POST', '/classify', JSON.stringify({ image: pick(images).bytes.toString('base64'), labels: [word(), 'x ' + word(), 'y ' + word()], templates: 'photo' })] },
    { name: 'search-text', weight: 10, expect: ok, make: () => ['POST', '/search', JSON.stringify({ query: `"${word()}" + "${word()} at night" - "people"`, k: 1 + Math.floor(Math.random() * 13) })] },
    { name: 'search-image', weight: 4, expect: ok, make: () => { const i = pick(images); return ['POST', '/search?k=5', i.bytes, imgType(i.name)]; } },
    { name: 'thumb', weight: 6, expect: [200], make: () => ['GET', `/thumb?id=${encodeURIComponent(pick(ids))}&size=${pick([64, 128, 256])}`] },
    { name: 'health', weight: 2, expect: [200], make: () => ['GET', '/health'] },
    { name: 'page', weight: 1, expect: [200], make: () => ['GET', pick(['/', '/app.js', '/style.css'])] },
    // Invalid input: each must get its own 4xx, whatever the load.
    { name: 'missing-field', weight: 3, expect: [400], make: () => ['POST', '/embed/text', JSON.stringify({ text: ['typo'] })] },
    { name: 'wrong-type', weight: 3, expect: [400], make: () => ['POST', '/classify', JSON.stringify({ image: 'aGVsbG8=', labels: 'cat' })] },
    { name: 'bad-json', weight: 3, expect: [400], make: () => ['POST', '/search', '{"query": "cat", "k": ', 'application/json'] },
    { name: 'garbage-image', weight: 3, expect: [400], make: () => ['POST', '/embed/image', Buffer.from('not an image at all'), 'image/png'] },
    { name: 'bad-k', weight: 2, expect: [400], make: () => ['POST', '/search', JSON.stringify({ query: 'cat', k: 10_000 })] },
    { name: 'bad-algebra', weight: 2, expect: [400], make: () => ['POST', '/search', JSON.stringify({ query: '"cat" + - "dog"' })] },
    { name: 'oversize-raw', weight: 2, expect: [413], make: () => ['POST', '/embed/image', junk, 'image/png'] },
    { name: 'oversize-b64', weight: 1, expect: [413], make: () => ['POST', '/classify', JSON.stringify({ image: junk.toString('base64'), labels: ['a'] })] },
    { name: 'media-type', weight: 2, expect: [415], make: () => ['POST', '/embed/image', 'hello', 'text/plain'] },
    { name: 'foreign-thumb', weight: 2, expect: [404], make: () => ['GET', `/thumb?id=${encodeURIComponent('/etc/passwd')}`] },
    { name: 'no-route', weight: 1, expect: [404], make: () => ['GET', '/admin'] },
    // Hostile requests (issue 14): a rebinding Host, numbers as texts, more query terms than the queue holds.
    { name: 'foreign-host', weight: 1, expect: [403], make: () => ['POST', '/search', JSON.stringify({ query: 'cat' }), 'application/json', { host: 'evil.example' }] },
    { name: 'number-texts', weight: 1, expect: [400], make: () => ['POST', '/embed/text', JSON.stringify({ texts: [1, 2] })] },
    { name: 'many-terms', weight: 1, expect: [400], make: () => ['POST', '/search', JSON.stringify({ query: Array(400).fill('a').join(' + ') })] },
  ];
}

test(`soak: ${CLIENTS} concurrent clients for ${SECONDS} s`, { skip: SKIP_FIXTURES, timeout: (SECONDS + 120) * 1000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'clip-soak-'));
  let child: ChildProcess | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  try {
    child = spawn(process.execPath, ['--input-type=module', '-e', childSource(REPO_ROOT, join(tmp, 'index.clipvec'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let exited: string | undefined;
    child.on('exit', (code, sig) => (exited = `server exited (code ${code}, signal ${sig})`));
    const address = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (d: Buffer) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line).address);
      });
      child!.on('exit', () => reject(new Error(exited)));
    });
    const port = Number(new URL(address).port);
    assert.equal(new URL(address).hostname, '127.0.0.1');

    const dir = fixture('common', 'images');
    const images = readdirSync(dir).map((name) => ({ name, bytes: readFileSync(join(dir, name)) }));
    const found = JSON.parse((await send(agent, port, 'POST', '/search', JSON.stringify({ query: 'anything', k: 50 }))).body.toString());
    const ids: string[] = found.results.map((r: { id: string }) => r.id);
    assert.ok(ids.length >= 10, `index holds ${ids.length} images`);

    const mix = kinds(images, ids);
    const wheel = mix.flatMap((k) => Array(k.weight).fill(k) as Kind[]);
    const counts = new Map<string, Map<number | string, number>>();
    const failures: string[] = [];
    const note = (kind: string, outcome: number | string) => {
      const m = counts.get(kind) ?? new Map();
      m.set(outcome, (m.get(outcome) ?? 0) + 1);
      counts.set(kind, m);
    };

    const rss: { t: number; bytes: number }[] = [];
    const t0 = Date.now();
    const end = t0 + SECONDS * 1000;
    const sampler = (async () => {
      const own = new Agent({ keepAlive: true, maxSockets: 1 });
      while (Date.now() < end && !exited) {
        try {
          rss.push({ t: (Date.now() - t0) / 1000, bytes: await rssOf(child!.pid!, port, own) });
        } catch { /* the clients see and count any failure */ }
        await new Promise((r) => setTimeout(r, 500));
      }
      own.destroy();
    })();
    const client = async () => {
      while (Date.now() < end && !exited) {
        const k = wheel[Math.floor(Math.random() * wheel.length)]!;
        const [method, path, body, type, extra] = k.make();
        try {
          const r = await send(agent, port, method, path, body, type, extra);
          note(k.name, r.status);
          if (!k.expect.includes(r.status)) failures.push(`${k.name}: ${r.status} ${r.body.toString().slice(0, 200)}`);
          if (r.status === 429 && !(Number(r.headers['retry-after']) >= 1)) failures.push(`${k.name}: 429 without Retry-After`);
        } catch (e) {
          note(k.name, (e as NodeJS.ErrnoException).code ?? 'error');
          failures.push(`${k.name}: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all([...Array.from({ length: CLIENTS }, client), sampler]);

    assert.equal(exited, undefined, 'the server must survive the soak');
    const health = await send(agent, port, 'GET', '/health');
    assert.equal(health.status, 200);
    const h = JSON.parse(health.body.toString());
    assert.equal(h.queue.depth, 0, 'queue drained');

    const total = [...counts.values()].reduce((s, m) => s + [...m.values()].reduce((a, b) => a + b, 0), 0);
    const table = [...counts].map(([k, m]) => `${k.padEnd(14)} ${[...m].map(([s, n]) => `${s}:${n}`).join(' ')}`).join('\n');
    const third = (i: number) => rss.filter((s) => s.t >= (SECONDS * i) / 3 && s.t < (SECONDS * (i + 1)) / 3).map((s) => s.bytes);
    const base = rss[0]?.bytes ?? 0;
    const peak = Math.max(...rss.map((s) => s.bytes));
    const [mid, last] = [Math.max(...third(1)), Math.max(...third(2))];
    const mb = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
    console.log(`soak: ${total} requests in ${SECONDS} s (${(total / SECONDS).toFixed(0)}/s) by ${CLIENTS} clients; batches: text ${h.queue.text.batches} for ${h.queue.text.items} items, image ${h.queue.image.batches} for ${h.queue.image.items}`);
    const timeline = rss.filter((_, i) => i % 20 === 0).map((s) => `${s.t.toFixed(0)}s ${mb(s.bytes)}`).join(', ');
    console.log(`soak: server RSS first ${mb(base)}, peak ${mb(peak)}, middle-third peak ${mb(mid)}, last-third peak ${mb(last)}; ${timeline}\n${table}`);

    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} unexpected outcomes`);
    assert.ok(total > CLIENTS * 2, `only ${total} requests completed`);
    assert.ok(peak - base < GROWTH_LIMIT, `RSS grew ${mb(peak - base)} (limit ${mb(GROWTH_LIMIT)})`);
    assert.ok(third(1).length > 0 && third(2).length > 0, `RSS sampled throughout (${rss.length} samples)`);
    if (SECONDS >= 15) assert.ok(last <= mid + LEAK_SLACK, `RSS still rising: middle third ${mb(mid)}, last third ${mb(last)}`);
  } finally {
    agent.destroy();
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});
