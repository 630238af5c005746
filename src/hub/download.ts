// One file from the hub into the cache, the way hf_hub_download does it: ask the resolve endpoint (its own
// answer carries commit, etag and size), stream the content to blobs/<etag>.incomplete, continue an earlier
// partial download with a Range request, check size and hash, and only then rename it into blobs/ and link
// it from snapshots/<commit>/. A loader therefore never sees a partial or unverified file.
//
// The hash is whatever the ETag names: an LFS file's sha256, or a small file's git blob sha1. A file whose
// ETag is neither, or whose size nobody announced, cannot be checked and is refused before its body is read
// unless the user opts out (CLIP_HUB_ALLOW_UNVERIFIED=1, allowUnverified, --allow-unverified). A body is never
// read past its announced size: a server that keeps sending is cut off there.
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { COMMIT_RE, RepoCache } from './cache.js';
import type { HubConfig } from './config.js';
import { HubError, causeOf } from './errors.js';
import { bodyTotal, follow, get, isRedirect, metaOf, statusError, type FileMeta, type Subject } from './http.js';
import { withLock } from './lock.js';
import { ByteProgress, progressSink, type ProgressSink } from './progress.js';
import { contentHasher, hashFileInto, hashKind, hashLabel } from './verify.js';

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

const OPT_OUT = 'set CLIP_HUB_ALLOW_UNVERIFIED=1 (or pass --allow-unverified) to accept it unchecked';

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

const cancel = (res: Response | undefined) => res?.body?.cancel().catch(() => {});

async function writeBlob(cfg: HubConfig, s: Subject & { file: string }, meta: FileMeta & { etag: string }, blob: string,
  contentUrl: string, pending: Pending, sink: ProgressSink | undefined): Promise<void> {
  const part = `${blob}.incomplete`;
  const what = `${s.file} from ${s.repo}@${s.revision}`;
  // Bytes that failed a check are deleted, so that no later attempt resumes from (or renames) them.
  const discard = async (why: string) => {
    await rm(part, { force: true });
    return new HubError(`${what}: ${why}; discarded`, 'integrity');
  };
  await mkdir(dirname(blob), { recursive: true });
  let offset = (await size(part)) ?? 0;
  if (meta.size !== undefined && offset > meta.size) offset = 0;
  let res: Response | undefined;
  if (!(offset > 0 && offset === meta.size)) {
    if (offset === 0 && pending.res) res = pending.res;
    else {
      await cancel(pending.res);
      res = await follow(contentUrl, cfg, s, offset || undefined);
    }
    pending.res = undefined;
    if (offset > 0 && res.status !== 206) offset = 0; // the server ignored Range: start over
    const start = res.status === 206 ? Number(/bytes\s+(\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]) : 0;
    if (start !== offset) {
      await cancel(res);
      await rm(part, { force: true });
      throw new HubError(`${s.file}: the server resumed at byte ${start}, not ${offset}; starting over`, 'interrupted');
    }
  }
  // The whole file's size: the hub's (X-Linked-Size, or the Content-Length of its own answer); the content
  // response must agree with it, and announces it alone when the hub did not.
  const sent = res && bodyTotal(res);
  if (meta.size !== undefined && sent !== undefined && sent !== meta.size) {
    await cancel(res);
    throw await discard(`the download is announced as ${sent} bytes, the hub said ${meta.size}`);
  }
  const total = meta.size ?? sent;
  if (total === undefined && !cfg.allowUnverified) {
    await cancel(res);
    throw new HubError(`${what}: cannot be verified: neither the hub nor the download announced a size (X-Linked-Size, ` +
      `Content-Length), so the body has no bound; refused (${OPT_OUT})`, 'unverified');
  }
  const kind = hashKind(meta.etag);
  // git's hash needs the size first; without one (only when unverified files are allowed) it is computed at the end.
  let hash = kind && total !== undefined ? contentHasher(kind, total) : undefined;
  // A resumed download is hashed over the whole file: what is on disk first, then the rest as it arrives.
  if (hash && offset > 0) await hashFileInto(part, hash);
  let done = offset;
  if (res) {
    const bar = new ByteProgress(sink, { repo: s.repo, file: s.file, total, resumedFrom: offset });
    const fh = await open(part, offset > 0 ? 'a' : 'w');
    let over = false;
    try {
      for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
        if (total !== undefined && done + chunk.length > total) {
          over = true;
          break; // leaving the loop cancels the body: not one byte more is read
        }
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
    if (over) {
      await cancel(res);
      throw await discard(`the server sent more than the announced ${total} bytes; stopped reading there`);
    }
    bar.update(done, true);
  }
  if (total !== undefined && done < total) {
    throw new HubError(`download of ${s.file} from ${s.repo} ended at ${done} of ${total} bytes; the next attempt resumes there`, 'interrupted');
  }
  if (kind && !hash) hash = await hashFileInto(part, contentHasher(kind, done));
  const digest = hash?.digest('hex');
  if (kind && digest !== meta.etag) throw await discard(`${hashLabel(kind)} ${digest} does not match the hub's ${meta.etag}`);
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
    await cancel(res);
    current = new URL(res.headers.get('location')!, current).href;
    res = await get(current, cfg, s);
  }
  if (!isRedirect(res) && !res.ok) throw await statusError(res, cfg, s);
  const meta = metaOf(res);
  const commit = meta.commit ?? (COMMIT_RE.test(revision) ? revision : undefined);
  if (!commit || !COMMIT_RE.test(commit)) throw new HubError(`${cfg.endpoint} sent no usable X-Repo-Commit for ${file} in ${cache.repo}`, 'invalid');
  const pending: Pending = {};
  let contentUrl = current;
  if (isRedirect(res)) {
    contentUrl = new URL(res.headers.get('location')!, current).href;
    await cancel(res);
  } else pending.res = res;
  try {
    const etag = meta.etag;
    if (!etag) {
      throw new HubError(`${cfg.endpoint} sent no ETag for ${file} in ${cache.repo}@${revision}: the file can be neither named in ` +
        'the cache nor verified', 'invalid');
    }
    // Refused before a byte of the body is read; with the opt-out the size is still enforced.
    if (!hashKind(etag) && !cfg.allowUnverified) {
      throw new HubError(`${file} from ${cache.repo}@${revision}: cannot be verified: the hub's ETag "${etag}" is neither an LFS ` +
        `sha256 (X-Linked-Etag) nor a git blob sha1; refused (${OPT_OUT})`, 'unverified');
    }
    const blob = cache.blob(etag);
    await withLock(cache.lock(etag), async () => {
      if (!(await blobUsable(blob, meta.size))) await writeBlob(cfg, s, { ...meta, etag }, blob, contentUrl, pending, sink);
    });
    return { path: await cache.link(commit, file, etag, o.symlinks ?? true), commit };
  } finally {
    await cancel(pending.res);
  }
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
