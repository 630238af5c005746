// Loading models by hub id: a fake hub on 127.0.0.1 serves the fixture checkpoints the way huggingface.co's
// resolve endpoints do (302 to a CDN on another origin, X-Linked-Etag/X-Linked-Size/X-Repo-Commit, Range/206,
// 401/403/404 with X-Error-Code, the api/models listing), and every request is logged so tests can count them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIP_BIN, fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, flat, golden } from './helpers.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { hubConfig } from '../src/hub/config.js';
import { HubError } from '../src/hub/errors.js';
import { hubDownload, parseModelId, resolveModel, type ResolveOptions } from '../src/hub/resolve.js';
import type { DownloadProgress } from '../src/hub/progress.js';
import { loadOptionsFrom } from '../src/cli/model-options.js';
import { writeShardedHfClip } from './sharded-fixture.js';
import { checkClipVocabFiles } from '../src/runtime/clip-vocab.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const isLfs = (f: string) => /\.(safetensors|bin|onnx)$/.test(f);

function listDir(dir: string, rel = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listDir(join(dir, e.name), `${rel}${e.name}/`) : [`${rel}${e.name}`]));
}

interface FakeRepo {
  dir: string;
  sha: string;
  files: string[];
  token?: string;
  gated?: boolean;
}

interface Hit {
  server: 'hub' | 'cdn';
  path: string;
  range?: string;
  auth?: string;
}

class FakeHub {
  readonly log: Hit[] = [];
  readonly repos = new Map<string, FakeRepo>();
  /** file -> bytes: the next CDN response for that file stops after that many bytes (connection closed). */
  readonly cutAfter = new Map<string, number>();
  /** Files served (by the CDN, or the hub for small files) with one byte flipped. */
  readonly corrupt = new Set<string>();
  /** file -> the ETag (X-Linked-Etag for LFS files) the hub sends instead of the content's hash. */
  readonly etagOverride = new Map<string, string>();
  /**
   * file -> how the CDN sends more than the hub announced: 'length' = a Content-Length 1 MB too large (and
   * that many bytes); 'endless' = chunked, up to 256 MB of junk after the content, until the client hangs up.
   */
  readonly overlong = new Map<string, 'length' | 'endless'>();
  /** Files whose size nobody announces: no X-Linked-Size from the hub, a chunked body from the CDN. */
  readonly noSize = new Set<string>();
  /** Bytes the last overlong response had written when its connection closed. */
  overlongSent?: Promise<number>;
  url = '';
  cdnUrl = '';
  private readonly hub = http.createServer((q, s) => this.onHub(q, s));
  private readonly cdn = http.createServer((q, s) => this.onCdn(q, s));
  private readonly bytes = new Map<string, Buffer>();

  add(repo: string, dir: string, extra: Partial<FakeRepo> = {}): FakeRepo {
    const r = { dir, sha: createHash('sha1').update(repo).digest('hex'), files: listDir(dir), ...extra };
    this.repos.set(repo, r);
    return r;
  }

  content(repo: string, file: string): Buffer {
    const key = `${repo}/${file}`;
    if (!this.bytes.has(key)) this.bytes.set(key, readFileSync(join(this.repos.get(repo)!.dir, file)));
    return this.bytes.get(key)!;
  }

  hits(pred: (h: Hit) => boolean = () => true): number {
    return this.log.filter(pred).length;
  }

  async start(): Promise<void> {
    const listen = (s: http.Server) => new Promise<string>((ok) => s.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(s.address() as any).port}`)));
    this.url = await listen(this.hub);
    this.cdnUrl = await listen(this.cdn);
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise((ok) => s.close(ok));
    }
  }

  private hit(server: Hit['server'], q: http.IncomingMessage): URL {
    const u = new URL(q.url!, 'http://x');
    this.log.push({ server, path: decodeURIComponent(u.pathname), range: q.headers.range, auth: q.headers.authorization });
    return u;
  }

  private fail(s: http.ServerResponse, status: number, code: string | undefined, msg: string): void {
    s.writeHead(status, { 'content-type': 'text/plain', ...(code ? { 'x-error-code': code } : {}), 'x-error-message': msg });
    s.end(msg);
  }

  private onHub(q: http.IncomingMessage, s: http.ServerResponse): void {
    const seg = this.hit('hub', q).pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const api = seg[0] === 'api' && seg[1] === 'models' && seg[4] === 'revision';
    const repoId = api ? `${seg[2]}/${seg[3]}` : `${seg[0]}/${seg[1]}`;
    const rev = api ? seg[5] : seg[3];
    if (!api && seg[2] !== 'resolve') return this.fail(s, 404, undefined, 'no such route');
    const r = this.repos.get(repoId);
    if (!r) return this.fail(s, 404, 'RepoNotFound', 'Repository not found');
    if (r.token && q.headers.authorization !== `Bearer ${r.token}`) return this.fail(s, 401, undefined, 'Invalid credentials in Authorization header');
    if (rev !== 'main' && rev !== r.sha) return this.fail(s, 404, 'RevisionNotFound', 'Invalid rev id');
    if (api) {
      s.writeHead(200, { 'content-type': 'application/json' });
      s.end(JSON.stringify({ id: repoId, sha: r.sha, siblings: r.files.map((rfilename) => ({ rfilename })) }));
      return;
    }
    if (r.gated) return this.fail(s, 403, 'GatedRepo', `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it.`);
    const file = seg.slice(4).join('/');
    if (!r.files.includes(file)) return this.fail(s, 404, 'EntryNotFound', `${file} does not exist on "${rev}"`);
    const body = this.content(repoId, file);
    const etag = this.etagOverride.get(file);
    if (isLfs(file)) {
      // The hub's own answer names the LFS object; its ETag is the pointer file's, which must not be used.
      s.writeHead(302, {
        location: `${this.cdnUrl}/${repoId}/${file}?X-Amz-Signature=fake`, 'x-repo-commit': r.sha,
        'x-linked-etag': `"${etag ?? sha256(body)}"`, etag: '"0123456789abcdef0123456789abcdef01234567"',
        ...(this.noSize.has(file) ? {} : { 'x-linked-size': body.length }),
      });
      s.end();
      return;
    }
    const cut = this.cutAfter.get(file);
    this.cutAfter.delete(file);
    this.serve(q, s, this.damaged(file, body), { 'x-repo-commit': r.sha, etag: `"${etag ?? gitSha(body)}"` }, cut);
  }

  private damaged(file: string, body: Buffer): Buffer {
    if (!this.corrupt.has(file)) return body;
    const b = Buffer.from(body);
    b[b.length >> 1]! ^= 0xff;
    return b;
  }

  private sendOverlong(s: http.ServerResponse, body: Buffer, how: 'length' | 'endless'): void {
    const junk = Buffer.alloc(1 << 16, 0x41);
    const limit = how === 'length' ? body.length + (1 << 20) : body.length + (256 << 20);
    let sent = 0;
    this.overlongSent = new Promise((ok) => s.on('close', () => ok(sent)));
    s.writeHead(200, how === 'length' ? { 'content-length': limit } : {});
    const pump = () => {
      while (sent < limit && !s.destroyed) {
        const part = sent === 0 ? body : junk.subarray(0, Math.min(junk.length, limit - sent));
        sent += part.length;
        if (!s.write(part)) return void s.once('drain', pump);
      }
      if (!s.destroyed) s.end();
    };
    pump();
  }

  private onCdn(q: http.IncomingMessage, s: http.ServerResponse): void {
    const seg = this.hit('cdn', q).pathname.split('/').filter(Boolean).map(decodeURIComponent);
    // Presigned URLs carry their own auth; a forwarded hub token is a leak.
    if (q.headers.authorization) return this.fail(s, 400, undefined, 'Authorization header sent to the CDN');
    const file = seg.slice(2).join('/');
    const body = this.damaged(file, this.content(`${seg[0]}/${seg[1]}`, file));
    const over = this.overlong.get(file);
    if (over) return this.sendOverlong(s, body, over);
    if (this.noSize.has(file)) {
      s.writeHead(200, {});
      return void s.end(body);
    }
    const cut = this.cutAfter.get(file);
    this.cutAfter.delete(file);
    this.serve(q, s, body, { etag: '"s3-etag-not-a-sha"' }, cut);
  }

  private serve(q: http.IncomingMessage, s: http.ServerResponse, body: Buffer, headers: http.OutgoingHttpHeaders, cut?: number): void {
    const m = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const part = body.subarray(start);
    s.writeHead(m ? 206 : 200, {
      ...headers, 'content-length': part.length, 'accept-ranges': 'bytes',
      ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (cut === undefined) return void s.end(part);
    s.write(part.subarray(0, cut), () => s.socket?.destroy());
  }
}

const HF = 'org/hf-clip-tiny';
const OPEN_CLIP_TINY = join(REPO_ROOT, 'test', 'goldens', 'open-clip-tiny');
const hub = new FakeHub();
const tmpRoot = mkdtempSync(join(tmpdir(), 'clip-hub-'));
let n = 0;
const freshCache = () => join(tmpRoot, `cache-${n++}`);
// No retry pauses, no progress noise, and none of this machine's HF_* settings or token file.
const opts = (cacheDir: string, o: ResolveOptions = {}): ResolveOptions =>
  ({ endpoint: hub.url, cacheDir, progress: false, retryDelayMs: 0, env: { HF_TOKEN_PATH: join(tmpRoot, 'no-token') }, ...o });
const repoDir = (cache: string, repo = HF) => join(cache, `models--${repo.replace('/', '--')}`);
const blobOf = (cache: string, file: string, repo = HF) => join(repoDir(cache, repo), 'blobs', sha256(hub.content(repo, file)));
const rejectsWith = (p: Promise<unknown>, kind: string, ...res: RegExp[]) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HubError, String(e));
    assert.equal(e.kind, kind, e.message);
    for (const re of res) assert.match(e.message, re);
    return true;
  });

// One cache filled by the first test and read by those after it.
const shared = freshCache();
let sharedDir = '';

before(async () => {
  if (SKIP_FIXTURES) return;
  hub.add(HF, fixture('hf-clip-tiny'));
  hub.add('org/openai-vit-tiny', fixture('openai-vit-tiny'));
  hub.add('org/private-clip', fixture('hf-clip-tiny'), { token: 'sekret' });
  hub.add('org/gated-clip', fixture('hf-clip-tiny'), { gated: true });
  hub.add('org/sharded-clip', writeShardedHfClip(join(tmpRoot, 'sharded-repo')));
  // Hostile indexes: a shard outside the repo's directory, and one the repo does not have.
  hub.add('org/sharded-escape', writeShardedHfClip(join(tmpRoot, 'sharded-escape'), 3, (wm) => { wm['logit_scale'] = '../../../secret.safetensors'; }));
  hub.add('org/sharded-absent', writeShardedHfClip(join(tmpRoot, 'sharded-absent'), 3, (wm) => { wm['logit_scale'] = 'model-00009-of-00009.safetensors'; }));
  // Where OpenAI-layout checkpoints get CLIP's BPE vocabulary from (the real files, in the fixtures).
  hub.add('openai/clip-vit-base-patch32', fixture('common', 'tokenizer-clip'));
  // A LAION alias's repo (open_clip layout), and one whose repo lost that layout.
  hub.add('laion/CLIP-ViT-B-32-laion2B-s34B-b79K', OPEN_CLIP_TINY);
  hub.add('laion/CLIP-ViT-B-16-laion2B-s34B-b88K', fixture('hf-clip-tiny'));
  await hub.start();
});

after(async () => {
  if (!SKIP_FIXTURES) await hub.stop();
  rmSync(tmpRoot, { recursive: true, force: true });
});

test('ids, revisions and aliases parse; bad ids are refused before any request', () => {
  assert.deepEqual(parseModelId('org/name'), { repo: 'org/name', revision: 'main', alias: undefined });
  assert.deepEqual(parseModelId('org/name@v1.0'), { repo: 'org/name', revision: 'v1.0', alias: undefined });
  assert.deepEqual(parseModelId('ViT-B-32'), { repo: 'openai/clip-vit-base-patch32', revision: 'main', alias: 'ViT-B-32' });
  assert.equal(parseModelId('vit-l-14-336').repo, 'openai/clip-vit-large-patch14-336');
  assert.equal(parseModelId('chinese-clip-base').repo, 'OFA-Sys/chinese-clip-vit-base-patch16');
  for (const bad of ['../x', 'a/b/c', 'org--x/y', '/abs/path/missing', 'org/name@../../etc']) assert.throws(() => parseModelId(bad), HubError, bad);
});

test('cache location and offline flag follow HF_HUB_CACHE, HF_HOME and HF_HUB_OFFLINE', () => {
  assert.equal(hubConfig({ env: { HF_HOME: '/h' } }).cacheDir, join('/h', 'hub'));
  assert.equal(hubConfig({ env: { HF_HOME: '/h', HF_HUB_CACHE: '/c' } }).cacheDir, '/c');
  assert.equal(hubConfig({ env: { HF_HUB_OFFLINE: '1' } }).offline, true);
  assert.equal(hubConfig({ env: { HF_HUB_OFFLINE: '0' } }).offline, false);
  assert.equal(hubConfig({ env: { HF_ENDPOINT: 'http://127.0.0.1:9/' } }).endpoint, 'http://127.0.0.1:9');
  assert.equal(hubConfig({ env: { HF_TOKEN: 't' } }).token, 't');
});

test('first load downloads what the family needs into the standard layout', { skip: SKIP_FIXTURES }, async () => {
  const seen: DownloadProgress[] = [];
  sharedDir = await resolveModel(HF, opts(shared, { progress: (p) => seen.push(p) }));
  const repo = hub.repos.get(HF)!;
  const root = repoDir(shared);
  assert.equal(sharedDir, join(root, 'snapshots', repo.sha));
  assert.equal(readFileSync(join(root, 'refs', 'main'), 'utf8'), repo.sha);
  // Configs, tokenizer and safetensors; not the goldens, not the ONNX exports.
  assert.deepEqual(listDir(sharedDir).sort(), ['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json']);
  for (const f of listDir(sharedDir)) {
    const body = hub.content(HF, f);
    const etag = isLfs(f) ? sha256(body) : gitSha(body);
    assert.ok(lstatSync(join(sharedDir, f)).isSymbolicLink(), f);
    assert.equal(readlinkSync(join(sharedDir, f)), `../../blobs/${etag}`, f);
    assert.ok(readFileSync(join(sharedDir, f)).equals(body), f);
  }
  assert.equal(readdirSync(join(root, 'blobs')).filter((b) => b.endsWith('.incomplete')).length, 0);
  assert.ok(existsSync(join(root, '.no_exist', repo.sha, 'vocab.txt')), 'absent files are marked');
  // One listing, one resolve per file, the CDN only for the LFS file, and never with a token.
  assert.equal(hub.hits((h) => h.path.startsWith('/api/')), 1);
  assert.equal(hub.hits((h) => h.server === 'hub' && h.path.includes('/resolve/')), 5);
  assert.deepEqual(hub.log.filter((h) => h.server === 'cdn').map((h) => h.path), [`/${HF}/model.safetensors`]);
  const last = seen.filter((p) => p.file === 'model.safetensors').at(-1)!;
  assert.equal(last.finished, true);
  assert.equal(last.done, hub.content(HF, 'model.safetensors').length);
  assert.equal(last.total, last.done);
  assert.ok(last.rate > 0);
});

test('the second load makes no request', { skip: SKIP_FIXTURES }, async () => {
  const before = hub.log.length;
  assert.equal(await resolveModel(HF, opts(shared)), sharedDir);
  assert.equal(await resolveModel(`${HF}@main`, opts(shared)), sharedDir);
  assert.equal(hub.log.length, before);
});

test('ClipModel loads the resolved snapshot and embeds like the fixture directory', { skip: SKIP_FIXTURES }, async () => {
  const fromHub = await ClipModel.load(await resolveModel(HF, opts(shared)));
  const local = await ClipModel.load(fixture('hf-clip-tiny'));
  const [a] = await fromHub.encodeTexts(['a photo of a cat']);
  const [b] = await local.encodeTexts(['a photo of a cat']);
  assert.deepEqual(Array.from(a!), Array.from(b!));
  await fromHub.release();
  await local.release();
});

test('offline mode reads the cache only and says clearly what is missing', { skip: SKIP_FIXTURES }, async () => {
  const before = hub.log.length;
  assert.equal(await resolveModel(HF, opts(shared, { offline: true })), sharedDir);
  // The same through the environment alone (no cacheDir option): HF_HUB_CACHE + HF_HUB_OFFLINE.
  assert.equal(await resolveModel(HF, { progress: false, env: { HF_HUB_OFFLINE: '1', HF_HUB_CACHE: shared, HF_ENDPOINT: hub.url } }), sharedDir);
  await rejectsWith(resolveModel(HF, opts(freshCache(), { offline: true })), 'offline', /org\/hf-clip-tiny@main/, /HF_HUB_OFFLINE/);
  await rejectsWith(resolveModel('ViT-B-32', { progress: false, env: { HF_HUB_OFFLINE: 'true', HF_HOME: join(tmpRoot, 'home') } }), 'offline',
    /openai\/clip-vit-base-patch32/, new RegExp(join(tmpRoot, 'home', 'hub').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  // Asking for the ONNX towers offline when only the weights are cached is a miss too.
  await rejectsWith(resolveModel(HF, opts(shared, { offline: true, format: 'onnx' })), 'offline', /not completely/);
  assert.equal(hub.log.length, before, 'offline never touches the network');
});

test('local paths come back as they are, without a request', { skip: SKIP_FIXTURES }, async () => {
  const before = hub.log.length;
  assert.equal(await resolveModel(fixture('hf-clip-tiny'), opts(freshCache())), fixture('hf-clip-tiny'));
  assert.equal(hub.log.length, before);
});

test('a download cut midway resumes with a Range request', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const total = hub.content(HF, 'model.safetensors').length;
  hub.cutAfter.set('model.safetensors', 3_000_000);
  await rejectsWith(resolveModel(HF, opts(cache, { retries: 0 })), 'interrupted', /model\.safetensors/, /resume/);
  const part = `${blobOf(cache, 'model.safetensors')}.incomplete`;
  const got = statSync(part).size;
  assert.ok(got > 0 && got < total, `partial ${got} of ${total}`);
  const snap = join(repoDir(cache), 'snapshots', hub.repos.get(HF)!.sha);
  assert.ok(!existsSync(join(snap, 'model.safetensors')) && !existsSync(blobOf(cache, 'model.safetensors')), 'nothing half-written where a loader looks');
  assert.ok(!existsSync(join(repoDir(cache), 'refs', 'main')), 'no ref to an incomplete snapshot');

  const before = hub.log.length;
  const dir = await resolveModel(HF, opts(cache));
  const cdn = hub.log.slice(before).filter((h) => h.server === 'cdn');
  assert.deepEqual(cdn.map((h) => h.range), [`bytes=${got}-`]);
  assert.equal(sha256(readFileSync(join(dir, 'model.safetensors'))), sha256(hub.content(HF, 'model.safetensors')));
  assert.ok(!existsSync(part));
});

test('a dropped connection is retried within one call, resuming where it stopped', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  hub.cutAfter.set('model.safetensors', 1_000_000);
  const before = hub.log.length;
  const dir = await resolveModel(HF, opts(cache, { retries: 2 }));
  const ranges = hub.log.slice(before).filter((h) => h.server === 'cdn').map((h) => h.range);
  assert.equal(ranges.length, 2);
  assert.equal(ranges[0], undefined);
  assert.match(ranges[1]!, /^bytes=\d+-$/);
  assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(hub.content(HF, 'model.safetensors')));
});

test('corrupted blobs are detected and fetched again', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const dir = await resolveModel(HF, opts(cache));
  const blob = blobOf(cache, 'model.safetensors');
  const good = hub.content(HF, 'model.safetensors');
  const cdnHits = () => hub.hits((h) => h.server === 'cdn');
  for (const damage of [() => writeFileSync(blob, Buffer.alloc(good.length)), () => truncateSync(blob, 1000)]) {
    damage();
    const before = cdnHits();
    assert.equal(await resolveModel(HF, opts(cache, { verify: true })), dir);
    assert.equal(cdnHits(), before + 1, 'fetched again');
    assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(good));
  }
  // A small (git) file too: its blob is named by the git blob sha.
  writeFileSync(join(dir, 'config.json'), '{}');
  await resolveModel(HF, opts(cache, { verify: true }));
  assert.ok(readFileSync(join(dir, 'config.json')).equals(hub.content(HF, 'config.json')));
});

test('content that does not match its sha256 is never put in place', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  hub.corrupt.add('model.safetensors');
  const before = hub.hits((h) => h.server === 'cdn');
  try {
    await rejectsWith(resolveModel(HF, opts(cache, { retries: 1 })), 'integrity', /sha256/, /model\.safetensors/);
  } finally {
    hub.corrupt.delete('model.safetensors');
  }
  assert.equal(hub.hits((h) => h.server === 'cdn'), before + 2, 'one retry from scratch');
  const blobs = readdirSync(join(repoDir(cache), 'blobs'));
  assert.ok(!blobs.some((b) => b.startsWith(sha256(hub.content(HF, 'model.safetensors')))), blobs.join(','));
  assert.ok(!existsSync(join(repoDir(cache), 'snapshots', hub.repos.get(HF)!.sha, 'model.safetensors')));
});

test('a blob of the wrong size found on the way is replaced', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const dir = await resolveModel(HF, opts(cache));
  truncateSync(blobOf(cache, 'model.safetensors'), 10);
  rmSync(join(dir, 'model.safetensors'));
  const before = hub.hits((h) => h.server === 'cdn');
  await resolveModel(HF, opts(cache));
  assert.equal(hub.hits((h) => h.server === 'cdn'), before + 1);
  assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(hub.content(HF, 'model.safetensors')));
});

// What the cache holds for one repo: blob names (incl. .incomplete) and snapshot files.
function cached(cache: string, repo = HF): { blobs: string[]; snapshot: string[] } {
  const root = repoDir(cache, repo);
  const snap = join(root, 'snapshots', hub.repos.get(repo)!.sha);
  return {
    blobs: existsSync(join(root, 'blobs')) ? readdirSync(join(root, 'blobs')).sort() : [],
    snapshot: existsSync(snap) ? listDir(snap).sort() : [],
  };
}

test('small files are checked against their git blob sha1, also when resumed', { skip: SKIP_FIXTURES }, async () => {
  const good = hub.content(HF, 'config.json');
  const cache = freshCache();
  const path = await hubDownload(HF, 'config.json', opts(cache));
  assert.ok(readFileSync(path).equals(good));
  assert.deepEqual(cached(cache).blobs, [gitSha(good)]);

  // One flipped byte under the right ETag: refused, and nothing stays behind to be resumed or linked.
  const bad = freshCache();
  hub.corrupt.add('config.json');
  try {
    await rejectsWith(hubDownload(HF, 'config.json', opts(bad, { retries: 0 })), 'integrity', /config\.json/, /org\/hf-clip-tiny/,
      new RegExp(`git blob sha1 [0-9a-f]{40} does not match the hub's ${gitSha(good)}`));
  } finally {
    hub.corrupt.delete('config.json');
  }
  assert.deepEqual(cached(bad), { blobs: [], snapshot: [] });

  // A cut download resumes with Range and is hashed over the whole file (what was on disk, then the rest)...
  const tok = hub.content(HF, 'tokenizer.json');
  const resumed = freshCache();
  hub.cutAfter.set('tokenizer.json', tok.length >> 1);
  await rejectsWith(hubDownload(HF, 'tokenizer.json', opts(resumed, { retries: 0 })), 'interrupted');
  const part = join(repoDir(resumed), 'blobs', `${gitSha(tok)}.incomplete`);
  assert.ok(statSync(part).size > 0 && statSync(part).size < tok.length);
  assert.ok(readFileSync(await hubDownload(HF, 'tokenizer.json', opts(resumed))).equals(tok));
  assert.match(hub.log.at(-1)!.range ?? '', /^bytes=\d+-$/);
  // ...so a partial file damaged on disk is caught once the rest arrives.
  const damaged = freshCache();
  hub.cutAfter.set('tokenizer.json', tok.length >> 1);
  await rejectsWith(hubDownload(HF, 'tokenizer.json', opts(damaged, { retries: 0 })), 'interrupted');
  const part2 = join(repoDir(damaged), 'blobs', `${gitSha(tok)}.incomplete`);
  const bytes = readFileSync(part2);
  bytes[10]! ^= 0xff;
  writeFileSync(part2, bytes);
  await rejectsWith(hubDownload(HF, 'tokenizer.json', opts(damaged, { retries: 0 })), 'integrity', /git blob sha1/, /tokenizer\.json/);
  assert.deepEqual(cached(damaged), { blobs: [], snapshot: [] });
});

test('a resumed LFS download is hashed over the whole file', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  hub.cutAfter.set('model.safetensors', 3_000_000);
  await rejectsWith(hubDownload(HF, 'model.safetensors', opts(cache, { retries: 0 })), 'interrupted');
  const part = `${blobOf(cache, 'model.safetensors')}.incomplete`;
  const fd = readFileSync(part);
  fd[100]! ^= 0xff;
  writeFileSync(part, fd);
  await rejectsWith(hubDownload(HF, 'model.safetensors', opts(cache, { retries: 0 })), 'integrity', /sha256/, /model\.safetensors/);
  assert.deepEqual(cached(cache), { blobs: [], snapshot: [] });
});

test('a file whose ETag is no hash is refused before its body is read, unless the user opts out', { skip: SKIP_FIXTURES }, async () => {
  hub.etagOverride.set('config.json', 'v7-not-a-hash');
  hub.etagOverride.set('model.safetensors', 'abc123-4');
  try {
    for (const file of ['config.json', 'model.safetensors']) {
      const cache = freshCache();
      const cdn = hub.hits((h) => h.server === 'cdn');
      await rejectsWith(hubDownload(HF, file, opts(cache)), 'unverified', new RegExp(file.replace('.', '\\.')), /org\/hf-clip-tiny/,
        /ETag "(v7-not-a-hash|abc123-4)" is neither/, /CLIP_HUB_ALLOW_UNVERIFIED=1/, /--allow-unverified/);
      assert.equal(hub.hits((h) => h.server === 'cdn'), cdn, 'the content was never asked for');
      assert.deepEqual(cached(cache), { blobs: [], snapshot: [] });
    }
    // Opting out by option or by environment: stored under the ETag, as huggingface_hub would.
    const a = freshCache();
    assert.ok(readFileSync(await hubDownload(HF, 'model.safetensors', opts(a, { allowUnverified: true }))).equals(hub.content(HF, 'model.safetensors')));
    assert.deepEqual(cached(a).blobs, ['abc123-4']);
    const b = freshCache();
    const env = { HF_TOKEN_PATH: join(tmpRoot, 'no-token'), CLIP_HUB_ALLOW_UNVERIFIED: '1' };
    assert.ok(readFileSync(await hubDownload(HF, 'config.json', opts(b, { env }))).equals(hub.content(HF, 'config.json')));
    assert.deepEqual(cached(b).blobs, ['v7-not-a-hash']);
    // The whole model too (the CLI's --allow-unverified sets the same option: see model-options.ts).
    assert.ok(existsSync(join(await resolveModel(HF, opts(freshCache(), { allowUnverified: true })), 'model.safetensors')));
    // The opt-out skips the hash, not the size: a longer body is still refused.
    hub.overlong.set('model.safetensors', 'length');
    const c = freshCache();
    await rejectsWith(hubDownload(HF, 'model.safetensors', opts(c, { allowUnverified: true, retries: 0 })), 'integrity', /announced/);
    assert.deepEqual(cached(c), { blobs: [], snapshot: [] });
  } finally {
    hub.etagOverride.clear();
    hub.overlong.clear();
  }
  assert.equal(loadOptionsFrom({ allowUnverified: true }).hub?.allowUnverified, true);
  assert.equal(loadOptionsFrom({}).hub, undefined, 'without the flag the environment decides');
});

test('a file whose size nobody announces is refused, unless the user opts out (the hash is still checked)', { skip: SKIP_FIXTURES }, async () => {
  hub.noSize.add('model.safetensors');
  try {
    const a = freshCache();
    await rejectsWith(hubDownload(HF, 'model.safetensors', opts(a)), 'unverified', /model\.safetensors from org\/hf-clip-tiny/,
      /announced a size/, /CLIP_HUB_ALLOW_UNVERIFIED=1/);
    assert.deepEqual(cached(a), { blobs: [], snapshot: [] });
    const b = freshCache();
    assert.ok(readFileSync(await hubDownload(HF, 'model.safetensors', opts(b, { allowUnverified: true }))).equals(hub.content(HF, 'model.safetensors')));
    hub.corrupt.add('model.safetensors');
    const c = freshCache();
    await rejectsWith(hubDownload(HF, 'model.safetensors', opts(c, { allowUnverified: true, retries: 0 })), 'integrity', /sha256/);
    assert.deepEqual(cached(c), { blobs: [], snapshot: [] });
  } finally {
    hub.noSize.clear();
    hub.corrupt.clear();
  }
});

test('a body longer than announced is cut off there and refused', { skip: SKIP_FIXTURES }, async () => {
  const size = hub.content(HF, 'model.safetensors').length;
  try {
    // Content-Length disagrees with the hub's X-Linked-Size: refused without reading the body.
    hub.overlong.set('model.safetensors', 'length');
    const a = freshCache();
    await rejectsWith(hubDownload(HF, 'model.safetensors', opts(a, { retries: 0 })), 'integrity', /model\.safetensors/,
      new RegExp(`announced as ${size + (1 << 20)} bytes, the hub said ${size}`));
    assert.deepEqual(cached(a), { blobs: [], snapshot: [] });
    // No length at all and 256 MB of junk after the content: the client hangs up right after the announced
    // size (what the socket buffers hold is all the server gets out), and keeps nothing.
    hub.overlong.set('model.safetensors', 'endless');
    const b = freshCache();
    await rejectsWith(hubDownload(HF, 'model.safetensors', opts(b, { retries: 0 })), 'integrity', /model\.safetensors/,
      new RegExp(`more than the announced ${size} bytes`));
    const sent = await hub.overlongSent!;
    assert.ok(sent < size + (64 << 20), `the server got ${sent} bytes out for a ${size}-byte file`);
    assert.deepEqual(cached(b), { blobs: [], snapshot: [] });
  } finally {
    hub.overlong.clear();
  }
});

test('hub errors name the repo, revision or file and the fix', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  await rejectsWith(resolveModel('org/private-clip', opts(cache)), 'auth', /org\/private-clip/, /HF_TOKEN/);
  await rejectsWith(resolveModel('org/private-clip', opts(cache, { token: 'wrong' })), 'auth', /rejected the token/);
  await rejectsWith(resolveModel('org/gated-clip', opts(cache)), 'gated', /org\/gated-clip is a gated repository/, /HF_TOKEN/);
  await rejectsWith(resolveModel('org/nope', opts(cache)), 'not-found', /repository org\/nope not found/);
  await rejectsWith(resolveModel(`${HF}@v9`, opts(cache)), 'not-found', /revision "v9" not found in org\/hf-clip-tiny/);
  await rejectsWith(hubDownload(HF, 'weights/missing.bin', opts(cache)), 'not-found', /weights\/missing\.bin not found in org\/hf-clip-tiny@main/);
  await rejectsWith(resolveModel('org/openai-vit-tiny', opts(cache, { format: 'onnx' })), 'not-found', /no ONNX towers/);
  // No hub at all: a port nothing listens on.
  const closed = http.createServer();
  await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
  const dead = `http://127.0.0.1:${(closed.address() as any).port}`;
  await new Promise((ok) => closed.close(ok));
  await rejectsWith(resolveModel(HF, opts(cache, { endpoint: dead })), 'network', new RegExp(`cannot reach the hub at ${dead}`), /HF_HUB_OFFLINE/);
  // ...but a cached revision is still served when the hub is unreachable and the snapshot needs a refresh.
  assert.equal(await resolveModel(HF, opts(shared, { endpoint: dead, refresh: true })), sharedDir);
});

test('a private repo downloads with a token (option or HF_TOKEN), which never reaches the CDN', { skip: SKIP_FIXTURES }, async () => {
  const dir = await resolveModel('org/private-clip', opts(freshCache(), { token: 'sekret' }));
  assert.ok(existsSync(join(dir, 'model.safetensors')));
  const dir2 = await resolveModel('org/private-clip', { ...opts(freshCache()), env: { HF_TOKEN: 'sekret' } });
  assert.ok(existsSync(join(dir2, 'model.safetensors')));
  assert.equal(hub.hits((h) => h.server === 'cdn' && h.auth !== undefined), 0);
  assert.ok(hub.hits((h) => h.server === 'hub' && h.auth === 'Bearer sekret') >= 12);
});

test('format onnx fetches the ONNX towers, nested in the snapshot, and they load', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const dir = await resolveModel(HF, opts(cache, { format: 'onnx' }));
  assert.ok(!existsSync(join(dir, 'model.safetensors')));
  const link = readlinkSync(join(dir, 'onnx', 'vision_model.onnx'));
  assert.equal(link, `../../../blobs/${sha256(hub.content(HF, 'onnx/vision_model.onnx'))}`);
  const m = await ClipModel.load(dir, { format: 'onnx' });
  const [e] = await m.encodeTexts(['a cat']);
  assert.equal(e!.length, 16);
  await m.release();
});

test('open_clip repos get open_clip_config.json and open_clip_model.safetensors', { skip: SKIP_FIXTURES }, async () => {
  const dir = await resolveModel('org/openai-vit-tiny', opts(freshCache()));
  assert.deepEqual(listDir(dir).sort(), ['open_clip_config.json', 'open_clip_model.safetensors']);
  const m = await ClipModel.load(dir, { tokenizerDir: fixture('common', 'tokenizer-clip') });
  assert.equal((await m.encodeTexts(['a dog']))[0]!.length, m.dim);
  await m.release();
});

test('a sharded repo: the index is fetched, then each shard it names; offline it loads from the cache', { skip: SKIP_FIXTURES }, async () => {
  const repo = 'org/sharded-clip';
  const cache = freshCache();
  const before = hub.log.length;
  const dir = await resolveModel(repo, opts(cache));
  const shards = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
  assert.deepEqual(listDir(dir).sort(), ['config.json', ...shards, 'model.safetensors.index.json', 'preprocessor_config.json',
    'tokenizer.json', 'tokenizer_config.json']);
  const resolves = hub.log.slice(before).filter((h) => h.server === 'hub' && h.path.includes('/resolve/')).map((h) => h.path.split('/').pop());
  assert.ok(resolves.indexOf('model.safetensors.index.json') < resolves.indexOf(shards[0]), 'the index before its shards');
  assert.deepEqual(hub.log.slice(before).filter((h) => h.server === 'cdn').map((h) => h.path), shards.map((s) => `/${repo}/${s}`));
  for (const s of shards) assert.ok(readFileSync(join(dir, s)).equals(hub.content(repo, s)), s);
  // Offline, the snapshot counts as complete only with every shard in place.
  assert.equal(await resolveModel(repo, opts(cache, { offline: true })), dir);
  rmSync(join(dir, shards[1]!));
  await rejectsWith(resolveModel(repo, opts(cache, { offline: true })), 'offline', /org\/sharded-clip@main is not completely in the hub cache/);
  // Online again: only the missing shard is fetched.
  const cdn = hub.hits((h) => h.server === 'cdn');
  assert.equal(await resolveModel(repo, opts(cache)), dir);
  assert.equal(hub.hits((h) => h.server === 'cdn'), cdn, 'the blob was still there: relinked, not downloaded');
  const m = await ClipModel.load(dir);
  const local = await ClipModel.load(fixture('hf-clip-tiny'));
  assert.deepEqual(Array.from((await m.encodeTexts(['a photo of a cat']))[0]!), Array.from((await local.encodeTexts(['a photo of a cat']))[0]!));
  await m.release();
  await local.release();
});

const BARE_PT = () => fixture('pickles', 'openai-vit-tiny-torchscript.pt');
const CLIP_TOKENIZER = () => fixture('common', 'tokenizer-clip');
const TEXTS = ['a photo of a cat', 'an astronaut &amp; a horse', 'coffee'];
const textsOf = async (m: ClipModel) => (await m.encodeTexts(TEXTS)).map((e) => Array.from(e));

test('a bare OpenAI .pt embeds texts with no tokenizer: CLIP\'s BPE comes from the hub once, into the HF cache', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const ref = await ClipModel.load(BARE_PT(), { tokenizerDir: CLIP_TOKENIZER() });
  const want = await textsOf(ref);
  await ref.release();
  const before = hub.log.length;
  const m = await ClipModel.load(BARE_PT(), { hub: opts(cache) });
  assert.deepEqual(await textsOf(m), want);
  await m.release();
  // Exactly merges.txt and vocab.json of openai/clip-vit-base-patch32, into the standard layout.
  const asked = hub.log.slice(before).filter((h) => h.server === 'hub').map((h) => h.path).sort();
  assert.deepEqual(asked, ['/openai/clip-vit-base-patch32/resolve/main/merges.txt', '/openai/clip-vit-base-patch32/resolve/main/vocab.json']);
  const snap = join(repoDir(cache, 'openai/clip-vit-base-patch32'), 'snapshots', hub.repos.get('openai/clip-vit-base-patch32')!.sha);
  assert.deepEqual(listDir(snap).sort(), ['merges.txt', 'vocab.json']);
  // Later loads (also offline) read the cache and make no request.
  const after = hub.log.length;
  const again = await ClipModel.load(BARE_PT(), { hub: opts(cache, { offline: true }) });
  assert.deepEqual(await textsOf(again), want);
  await again.release();
  assert.equal(hub.log.length, after);
  // The open_clip layout (open_clip_config.json + weights, no tokenizer) takes the same route.
  const oc = await ClipModel.load(fixture('openai-vit-tiny'), { hub: opts(cache, { offline: true }) });
  assert.equal((await oc.encodeTexts(['a dog']))[0]!.length, 16);
  await oc.release();
});

test('offline or with the hub unreachable, images still embed and texts say which file to place where', { skip: SKIP_FIXTURES }, async () => {
  const closed = http.createServer();
  await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
  const dead = `http://127.0.0.1:${(closed.address() as any).port}`;
  await new Promise((ok) => closed.close(ok));
  const where = join(fixture('pickles'), 'merges.txt').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const o of [{ offline: true }, { endpoint: dead, retries: 0 }]) {
    const cache = freshCache();
    const m = await ClipModel.load(BARE_PT(), { hub: opts(cache, o) });
    const [img] = await m.encodeImages([fixture('common', 'images', 'astronaut.png')]);
    assert.equal(img!.embedding!.length, 16, img!.error);
    await assert.rejects(m.encodeTexts(['a cat']), (e: Error) => {
      assert.match(e.message, /ships no tokenizer/);
      assert.match(e.message, /merges\.txt and vocab\.json of openai\/clip-vit-base-patch32/);
      assert.match(e.message, new RegExp(`not in the hub cache at ${cache.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.match(e.message, o.offline ? /HF_HUB_OFFLINE=1/ : /cannot reach the hub/);
      assert.match(e.message, /https:\/\/huggingface\.co\/openai\/clip-vit-base-patch32\/resolve\/main\/merges\.txt/);
      assert.match(e.message, new RegExp(`place it at ${where}`));
      assert.match(e.message, /--tokenizer DIR/);
      return true;
    });
    await m.release();
  }
  // Doing what the message says works offline: merges.txt next to the checkpoint.
  const dir = join(tmpRoot, 'bare-with-merges');
  mkdirSync(dir);
  symlinkSync(BARE_PT(), join(dir, 'ViT-B-32.pt'));
  copyFileSync(join(CLIP_TOKENIZER(), 'merges.txt'), join(dir, 'merges.txt'));
  const before = hub.log.length;
  const m = await ClipModel.load(join(dir, 'ViT-B-32.pt'), { hub: opts(freshCache(), { offline: true }) });
  const ref = await ClipModel.load(BARE_PT(), { tokenizerDir: CLIP_TOKENIZER() });
  assert.deepEqual(await textsOf(m), await textsOf(ref));
  assert.equal(hub.log.length, before);
  await m.release();
  await ref.release();
});

test('an open_clip alias downloads the LAION repo\'s open_clip files and the BPE, and matches the golden', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const m = await ClipModel.load('ViT-B-32/laion2b_s34b_b79k', { hub: opts(cache) });
  const snap = join(repoDir(cache, 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K'), 'snapshots', hub.repos.get('laion/CLIP-ViT-B-32-laion2B-s34B-b79K')!.sha);
  assert.deepEqual(listDir(snap).sort(), ['open_clip_config.json', 'open_clip_model.safetensors']);
  const meta = JSON.parse(readFileSync(join(OPEN_CLIP_TINY, 'golden.json'), 'utf8'));
  const txt = await m.encodeTexts(meta.captions, { normalize: false });
  assertClose(flat(txt), golden(join(OPEN_CLIP_TINY, 'golden.safetensors')).get('text_features'), 1e-4, 'text_features');
  await m.release();
  await rejectsWith(resolveModel('ViT-B-16/laion2b_s34b_b88k', opts(freshCache())), 'not-found',
    /ViT-B-16\/laion2b_s34b_b88k \(laion\/CLIP-ViT-B-16-laion2B-s34B-b88K@main\): the alias stands for an open_clip checkpoint, but the repo has no open_clip_config\.json/);
});

test('CLIP BPE files that disagree with each other are refused', { skip: SKIP_FIXTURES }, () => {
  const dir = join(tmpRoot, 'bad-vocab');
  mkdirSync(dir);
  copyFileSync(join(CLIP_TOKENIZER(), 'merges.txt'), join(dir, 'merges.txt'));
  const vocab = JSON.parse(readFileSync(join(CLIP_TOKENIZER(), 'vocab.json'), 'utf8'));
  checkClipVocabFiles(CLIP_TOKENIZER());
  [vocab['cat</w>'], vocab['dog</w>']] = [vocab['dog</w>'], vocab['cat</w>']];
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  assert.throws(() => checkClipVocabFiles(dir), /not CLIP's BPE vocabulary \(token "(cat|dog)<\/w>" is \d+ in vocab\.json, \d+ by merges\.txt\)/);
  delete vocab['cat</w>'];
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  assert.throws(() => checkClipVocabFiles(dir), /vocab\.json has 49407 tokens, CLIP has 49408/);
});

test('a hub index naming a path outside the repo, or a shard the repo lacks, is refused before any shard is fetched', { skip: SKIP_FIXTURES }, async () => {
  const before = hub.hits((h) => h.server === 'cdn');
  await rejectsWith(resolveModel('org/sharded-escape', opts(freshCache())), 'invalid', /org\/sharded-escape@main/,
    /model\.safetensors\.index\.json: weight_map\["logit_scale"\]: shard "\.\.\/\.\.\/\.\.\/secret\.safetensors" is not a plain/);
  await rejectsWith(resolveModel('org/sharded-absent', opts(freshCache())), 'not-found',
    /org\/sharded-absent@main: model\.safetensors\.index\.json names shards the repo does not have: model-00009-of-00009\.safetensors/);
  assert.equal(hub.hits((h) => h.server === 'cdn'), before, 'no shard was downloaded');
});

test('without symlinks the snapshot holds copies', { skip: SKIP_FIXTURES }, async () => {
  const dir = await resolveModel(HF, opts(freshCache(), { symlinks: false }));
  const st = lstatSync(join(dir, 'model.safetensors'));
  assert.ok(st.isFile() && !st.isSymbolicLink());
  assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(hub.content(HF, 'model.safetensors')));
});

test('two concurrent loads into one cache download each blob once', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const before = hub.hits((h) => h.server === 'cdn');
  const [a, b] = await Promise.all([resolveModel(HF, opts(cache)), resolveModel(HF, opts(cache))]);
  assert.equal(a, b);
  assert.equal(hub.hits((h) => h.server === 'cdn'), before + 1);
  assert.ok(readFileSync(join(a, 'model.safetensors')).equals(hub.content(HF, 'model.safetensors')));
  assert.deepEqual(readdirSync(join(cache, '.locks', 'models--org--hf-clip-tiny')), [], 'locks released');
});

// The CLI end to end, in a child process (the fake hub keeps serving from this one): the resolver feeds
// buildCli() as main.ts will once wired, and `clip models` comes from registerModels.
// The real `clip` binary: --model resolves hub ids through the resolver.
const SCRIPT = CLIP_BIN;
function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(HF_|HUGGING)/.test(k)));
  const child = spawn(process.execPath, [SCRIPT, ...args], { env: { ...clean, HF_TOKEN_PATH: join(tmpRoot, 'no-token'), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((ok) => child.on('close', (code) => ok({ code: code ?? -1, stdout, stderr })));
}

test('clip classify --model org/hf-clip-tiny downloads, then runs offline; clip models lists it', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const img = fixture('common', 'images', 'astronaut.png');
  const args = (model: string) => ['classify', '--model', model, '--labels', 'astronaut,cat,coffee', img, '--json'];
  const online = await cli(args(HF), { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache });
  assert.equal(online.code, 0, online.stderr);
  assert.match(online.stderr, /downloaded org\/hf-clip-tiny model\.safetensors 7\.3 MiB\/7\.3 MiB [\d.]+ \w+\/s/);
  // The library path on this very snapshot is compared with the fixture directory above; here the shape.
  const [res] = JSON.parse(online.stdout);
  assert.deepEqual(Object.keys(res.scores), ['astronaut', 'cat', 'coffee']);
  assert.ok(Math.abs(Object.values<number>(res.scores).reduce((a, b) => a + b) - 1) < 1e-5);

  // The rest only reads the cache: run them side by side.
  const before = hub.log.length;
  const offlineEnv = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' };
  const [offline, miss, models, text] = await Promise.all([
    cli(args(HF), offlineEnv), cli(args('org/other-model'), offlineEnv),
    cli(['models', '--json'], { HF_HUB_CACHE: cache }), cli(['models'], { HF_HUB_CACHE: cache }),
  ]);
  assert.equal(offline.code, 0, offline.stderr);
  assert.equal(offline.stdout, online.stdout);
  assert.notEqual(miss.code, 0);
  assert.match(miss.stderr, /org\/other-model@main is not in the hub cache/);
  assert.equal(hub.log.length, before);

  assert.equal(models.code, 0, models.stderr);
  const out = JSON.parse(models.stdout);
  assert.equal(out.cacheDir, cache);
  assert.ok(out.aliases.some((a: any) => a.alias === 'ViT-L-14' && a.repo === 'openai/clip-vit-large-patch14' && a.cached === false));
  const [repo] = out.cached;
  assert.equal(repo.repo, HF);
  assert.deepEqual(repo.revisions.map((r: any) => [r.commit, r.refs, r.files]), [[hub.repos.get(HF)!.sha, ['main'], 5]]);
  const expected = listDir(fixture('hf-clip-tiny')).filter((f) => !/golden|train-step|onnx/.test(f)).reduce((s, f) => s + hub.content(HF, f).length, 0);
  assert.equal(repo.revisions[0].size, expected);
  assert.equal(repo.size, expected);
  assert.match(text.stdout, /org\/hf-clip-tiny\s+main\s+[0-9a-f]{12}\s+5\s+\d+\.\d MiB/);
});

test('clip embed --text on a bare OpenAI .pt needs no --tokenizer online; offline it says what to do', { skip: SKIP_FIXTURES }, async () => {
  const cache = freshCache();
  const args = ['embed', '--model', BARE_PT(), '--text', 'a photo of a cat', '--json'];
  const [offline, online] = await Promise.all([
    cli(args, { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshCache(), HF_HUB_OFFLINE: '1' }),
    cli(args, { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache }),
  ]);
  assert.equal(online.code, 0, online.stderr);
  const ref = await ClipModel.load(BARE_PT(), { tokenizerDir: CLIP_TOKENIZER() });
  const [want] = await ref.encodeTexts(['a photo of a cat']);
  await ref.release();
  const got = JSON.parse(online.stdout).texts[0].embedding as number[];
  assert.ok(got.every((v, i) => Math.abs(v - want![i]!) < 1e-6), 'same embedding as with --tokenizer');
  assert.ok(existsSync(join(repoDir(cache, 'openai/clip-vit-base-patch32'), 'refs', 'main')));
  assert.notEqual(offline.code, 0);
  assert.match(offline.stderr, /openai-vit-tiny-torchscript\.pt: this OpenAI\/open_clip checkpoint ships no tokenizer/);
  assert.match(offline.stderr, /place it at .*pickles\/merges\.txt/);
});

test('clip --allow-unverified accepts what the hub gives no hash for; without it the CLI refuses and says how', { skip: SKIP_FIXTURES }, async () => {
  hub.etagOverride.set('model.safetensors', 'abc123-4');
  try {
    const img = fixture('common', 'images', 'astronaut.png');
    const args = ['classify', '--model', HF, '--labels', 'astronaut,cat', img, '--json'];
    const [refused, allowed] = await Promise.all([
      cli(args, { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshCache() }),
      cli([...args, '--allow-unverified'], { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshCache() }),
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /model\.safetensors from org\/hf-clip-tiny@[0-9a-f]{40}: cannot be verified/);
    assert.match(refused.stderr, /CLIP_HUB_ALLOW_UNVERIFIED=1/);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.deepEqual(Object.keys(JSON.parse(allowed.stdout)[0].scores), ['astronaut', 'cat']);
  } finally {
    hub.etagOverride.clear();
  }
});
