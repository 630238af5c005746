// One file from the hub into the cache, the way hf_hub_download does it: ask the resolve endpoint (its own
// answer carries commit, etag and size), stream the content to blobs/<etag>.incomplete, continue an earlier
// partial download with a Range request, check size and sha256, and only then rename it into blobs/ and link
// it from snapshots/<commit>/. A loader therefore never sees a partial or unverified file.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { COMMIT_RE, RepoCache, SHA256_RE } from './cache.js';
import type { HubConfig } from './config.js';
import { HubError, causeOf } from './errors.js';
import { follow, get, isRedirect, metaOf, rangeTotal, statusError, type FileMeta, type Subject } from './http.js';
import { withLock } from './lock.js';
import { ByteProgress, progressSink, type ProgressSink } from './progress.js';

export interface DownloadOptions {
  /** Further attempts after a dropped connection, a checksum mismatch or a 5xx (default 3); each resumes. */
  retries?: number;
  /** Wait before the first retry, doubled each time (default 1000 ms). */
  retryDelayMs?: number;
  /** false: copy blobs into snapshots instead of symlinking (default: symlink, copy where that fails). */
  symlinks?: boolean;
  /** true (default): progress on stderr; false: silent; a function: receive it. */
  progress?: boolean | ProgressSink;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const resolveUrl = (cfg: HubConfig, repo: string, revision: string, file: string) =>
  `${cfg.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;

async function size(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function hashFile(path: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

/** Bytes on disk are a good blob only if the size the hub announced matches; a wrong one is removed. */
async function blobUsable(blob: string, expected: number | undefined): Promise<boolean> {
  const n = await size(blob);
  if (n === undefined) return false;
  if (expected === undefined || n === expected) return true;
  await rm(blob, { force: true });
  return false;
}

interface Pending {
  res?: Response; // a small file's body, already on its way from the first request
}

async function writeBlob(cfg: HubConfig, s: Subject & { file: string }, meta: FileMeta & { etag: string }, blob: string,
  contentUrl: string, pending: Pending, sink: ProgressSink | undefined): Promise<void> {
  const part = `${blob}.incomplete`;
  await mkdir(dirname(blob), { recursive: true });
  let offset = (await size(part)) ?? 0;
  if (meta.size !== undefined && offset > meta.size) offset = 0;
  let res: Response | undefined;
  if (!(offset > 0 && offset === meta.size)) {
    if (offset === 0 && pending.res) res = pending.res;
    else {
      await pending.res?.body?.cancel().catch(() => {});
      res = await follow(contentUrl, cfg, s, offset || undefined);
    }
    pending.res = undefined;
    if (offset > 0 && res.status !== 206) offset = 0; // the server ignored Range: start over
    const start = res.status === 206 ? Number(/bytes\s+(\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]) : 0;
    if (start !== offset) {
      await res.body?.cancel().catch(() => {});
      await rm(part, { force: true });
      throw new HubError(`${s.file}: the server resumed at byte ${start}, not ${offset}; starting over`, 'interrupted');
    }
  }
  const total = meta.size ?? (res && (res.status === 206 ? rangeTotal(res.headers) : metaOf(res).size));
  const hash = SHA256_RE.test(meta.etag) ? createHash('sha256') : undefined;
  if (hash && offset > 0) await hashFile(part, hash);
  let done = offset;
  if (res) {
    const bar = new ByteProgress(sink, { repo: s.repo, file: s.file, total, resumedFrom: offset });
    const fh = await open(part, offset > 0 ? 'a' : 'w');
    try {
      for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
        hash?.update(chunk);
        await fh.write(chunk);
        done += chunk.length;
        bar.update(done);
      }
    } catch (e) {
      throw new HubError(`download of ${s.file} from ${s.repo} interrupted at ${done}${total !== undefined ? ` of ${total}` : ''} bytes ` +
        `(${causeOf(e)}); the next attempt resumes there`, 'interrupted');
    } finally {
      await fh.close();
    }
    bar.update(done, true);
  }
  if (total !== undefined && done < total) {
    throw new HubError(`download of ${s.file} from ${s.repo} ended at ${done} of ${total} bytes; the next attempt resumes there`, 'interrupted');
  }
  if (total !== undefined && done > total) {
    await rm(part, { force: true });
    throw new HubError(`${s.file} from ${s.repo}: got ${done} bytes, the hub announced ${total}; discarded`, 'integrity');
  }
  const digest = hash?.digest('hex');
  if (digest !== undefined && digest !== meta.etag) {
    await rm(part, { force: true });
    throw new HubError(`${s.file} from ${s.repo}: sha256 ${digest} does not match the hub's ${meta.etag}; discarded`, 'integrity');
  }
  await rename(part, blob);
}

async function fetchOnce(cfg: HubConfig, cache: RepoCache, revision: string, file: string, o: DownloadOptions,
  sink: ProgressSink | undefined): Promise<{ path: string; commit: string }> {
  const s = { repo: cache.repo, revision, file };
  // Walk redirects only up to the hub's own answer (it has X-Repo-Commit; a renamed repo's first 307 does not).
  let current = resolveUrl(cfg, cache.repo, revision, file);
  let res = await get(current, cfg, s);
  for (let hop = 0; isRedirect(res) && !res.headers.has('x-repo-commit'); hop++) {
    if (hop >= 10) throw new HubError(`too many redirects resolving ${file} in ${cache.repo}`, 'invalid');
    await res.body?.cancel().catch(() => {});
    current = new URL(res.headers.get('location')!, current).href;
    res = await get(current, cfg, s);
  }
  if (!isRedirect(res) && !res.ok) throw await statusError(res, cfg, s);
  const meta = metaOf(res);
  const commit = meta.commit ?? (COMMIT_RE.test(revision) ? revision : undefined);
  if (!commit || !COMMIT_RE.test(commit)) throw new HubError(`${cfg.endpoint} sent no usable X-Repo-Commit for ${file} in ${cache.repo}`, 'invalid');
  if (!meta.etag) throw new HubError(`${cfg.endpoint} sent no ETag for ${file} in ${cache.repo}`, 'invalid');
  const etag = meta.etag;
  const blob = cache.blob(etag);
  const pending: Pending = {};
  let contentUrl = current;
  if (isRedirect(res)) {
    contentUrl = new URL(res.headers.get('location')!, current).href;
    await res.body?.cancel().catch(() => {});
  } else pending.res = res;
  try {
    await withLock(cache.lock(etag), async () => {
      if (!(await blobUsable(blob, meta.size))) await writeBlob(cfg, s, { ...meta, etag }, blob, contentUrl, pending, sink);
    });
  } finally {
    await pending.res?.body?.cancel().catch(() => {});
  }
  return { path: await cache.link(commit, file, etag, o.symlinks ?? true), commit };
}

/**
 * Download `file` of `cache.repo` at `revision` (branch, tag or commit) into the cache, unless its blob is
 * there; returns the snapshot path and the commit. Retries resume from the partial file.
 */
export async function fetchFile(cfg: HubConfig, cache: RepoCache, revision: string, file: string, o: DownloadOptions = {}): Promise<{ path: string; commit: string }> {
  const retries = o.retries ?? 3;
  const sink = progressSink(o.progress);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetchOnce(cfg, cache, revision, file, o, sink);
    } catch (e) {
      if (!(e instanceof HubError) || !e.retryable || attempt >= retries) throw e;
      if (o.progress === undefined || o.progress === true) process.stderr.write(`${e.message}; retrying (${attempt + 1}/${retries})\n`);
      await sleep((o.retryDelayMs ?? 1000) * 2 ** attempt);
    }
  }
}
