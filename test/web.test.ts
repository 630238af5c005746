// The search page in a real headless Chromium (Debian's, driven by playwright-core, which downloads no browser):
// the grid it shows must be exactly what the API's /search returns, for a text query and an uploaded image.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ClipModel } from '../src/runtime/clip-model.js';
import { buildServer, type ClipServer } from '../src/server/app.js';
import { openStore } from '../src/search/open.js';
import { indexFolders } from '../src/search/indexer.js';
import type { VectorStore } from '../src/search/store.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));
const SKIP = SKIP_FIXTURES || (CHROMIUM ? false
  : 'Chromium not found (set CHROMIUM_PATH or install it: scripts/ci-deps.sh runs apt-get install chromium)');
// Functions passed to page.waitForFunction/$$eval are serialized and run in the page, so they reach the DOM
// through globalThis (this project compiles without DOM types) and use nothing from this module's scope.
// Headless and quiet: no sandbox (containers), no GPU, and no background traffic of any kind off loopback.
// A name that resolves to our loopback server, as a DNS-rebinding page's name would.
const REBIND = 'rebind.test';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  `--host-resolver-rules=MAP ${REBIND} 127.0.0.1`];

interface Row {
  id: string;
  path: string;
  score: number;
}

/** What the grid shows: per card its id, the path text, the rounded score text, and the full score. */
async function grid(page: Page): Promise<{ id: string; pathText: string; scoreText: string; score: number; thumbOk: boolean }[]> {
  return page.$$eval('#results .result', (cards) => cards.map((el: any) => {
    const img = el.querySelector('img');
    return {
      id: el.dataset.id as string,
      pathText: el.querySelector('.path').textContent as string,
      scoreText: el.querySelector('.score').textContent as string,
      score: Number(el.dataset.score),
      thumbOk: img.complete && img.naturalWidth > 0,
    };
  }));
}

function sameAsApi(shown: Awaited<ReturnType<typeof grid>>, api: Row[], what: string): void {
  assert.equal(shown.length, api.length, `${what}: number of results`);
  shown.forEach((s, i) => {
    assert.equal(s.id, api[i]!.id, `${what} #${i + 1} id`);
    assert.equal(s.pathText, api[i]!.path, `${what} #${i + 1} path`);
    assert.equal(s.scoreText, api[i]!.score.toFixed(4), `${what} #${i + 1} score shown`);
    assert.equal(s.score, api[i]!.score, `${what} #${i + 1} score`);
  });
}

// A skipped describe() is not counted in the runner's "skipped" total, so a missing browser would pass
// unnoticed: a skipped test with the reason makes it show in the summary.
if (SKIP) test('search page in headless Chromium (3 tests)', { skip: SKIP }, () => {});

describe('search page in headless Chromium', { skip: SKIP }, () => {
  let model: ClipModel;
  let store: VectorStore;
  let server: ClipServer;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let tmp: string;
  const shots = mkdtempSync(join(tmpdir(), 'clip-web-shots-'));
  const offLoopback: string[] = [];

  const api = async (path: string, body: Buffer | string, type: string): Promise<Row[]> => {
    const res = await fetch(base + path, { method: 'POST', body, headers: { 'content-type': type } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { results: Row[] }).results;
  };
  const waitForResults = async (before: string) => {
    await page.waitForFunction((prev) => {
      const s = (globalThis as any).document.getElementById('status');
      return s.textContent !== prev && /results for|error/.test(s.className + s.textContent);
    }, before);
    // Thumbnails are part of what the user sees; wait until every one has loaded.
    await page.waitForFunction(() => [...(globalThis as any).document.querySelectorAll('#results img')].every((i: any) => i.complete));
  };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'clip-web-'));
    model = await ClipModel.load(fixture('hf-clip-tiny'));
    store = await openStore(join(tmp, 'index.clipvec'), { create: { dim: model.dim } });
    await indexFolders(model, store, [fixture('common', 'images')]);
    server = await buildServer({ model, store, modelName: 'hf-clip-tiny', storePath: join(tmp, 'index.clipvec') });
    base = await server.app.listen({ host: '127.0.0.1', port: 0 });
    context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1100, height: 900 },
    });
    // Everything the page loads must come from our loopback server; anything else is refused and recorded.
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1' || url.hostname === REBIND) return route.continue();
      offLoopback.push(url.href);
      return route.abort();
    });
    page = await context.newPage();
  });
  after(async () => {
    await context?.close();
    await server?.app.close();
    await store?.close();
    await model?.release();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    console.log(`web: screenshots in ${shots}`);
  });

  test('text search: the grid equals /search', async () => {
    await page.goto(base + '/');
    await page.waitForFunction(() => /images indexed/.test((globalThis as any).document.getElementById('info').textContent));
    assert.match(await page.textContent('#info') ?? '', /hf-clip-tiny \(16-d\) · 1[0-9] images indexed/);
    const query = '"a cat" + "flowers" - "text"';
    await page.fill('#query', query);
    await page.fill('#k', '6');
    const before = (await page.textContent('#status')) ?? '';
    await page.click('#search-btn');
    await waitForResults(before);
    const shown = await grid(page);
    sameAsApi(shown, await api('/search', JSON.stringify({ query, k: 6 }), 'application/json'), 'text');
    assert.ok(shown.every((s) => s.thumbOk), 'every thumbnail loaded');
    await page.screenshot({ path: join(shots, 'text-search.png'), fullPage: true });
  });

  test('image upload search: the grid equals /search with the same bytes', async () => {
    const file = fixture('common', 'images', 'horse.png');
    await page.setInputFiles('#image-file', file);
    assert.equal(await page.isVisible('#query-preview'), true, 'the chosen image is previewed');
    const before = (await page.textContent('#status')) ?? '';
    await page.click('#image-btn');
    await waitForResults(before);
    const shown = await grid(page);
    const want = await api('/search?k=6', readFileSync(file), 'image/png');
    sameAsApi(shown, want, 'image');
    assert.equal(shown[0]!.pathText, file, 'the indexed copy of the query image comes first');
    assert.ok(shown.every((s) => s.thumbOk), 'every thumbnail loaded');
    await page.screenshot({ path: join(shots, 'image-search.png'), fullPage: true });
  });

  test('DNS rebinding: a page whose name resolves to the server gets 403, and so do its API calls', async () => {
    const rebound = new URL(base);
    rebound.hostname = REBIND;
    const res = await page.goto(rebound.href);
    assert.equal(res?.status(), 403);
    assert.match(JSON.parse(await page.textContent('body') ?? '{}').error, /Host "rebind.test:\d+" is not served here/);
    // Script on that origin calling the API (same-origin as far as the browser knows) is refused too.
    const status = await page.evaluate(async () => (await fetch('/search', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"cat"}' })).status);
    assert.equal(status, 403);
    await page.goto(base + '/');
  });

  test('an API error is shown, not swallowed; nothing left loopback', async () => {
    await page.fill('#query', '"unclosed');
    const before = (await page.textContent('#status')) ?? '';
    await page.click('#search-btn');
    await waitForResults(before);
    assert.equal(await page.getAttribute('#status', 'class'), 'error');
    assert.match((await page.textContent('#status')) ?? '', /body\/query: unclosed/);
    assert.equal(await page.locator('#results .result').count(), 0);
    await page.screenshot({ path: join(shots, 'error.png') });
    assert.deepEqual(offLoopback, []);
  });
});
