// HTTP against the hub: manual redirects (the hub's own 302 carries the file's metadata; the CDN's final
// response does not, and must not get our token), and HTTP statuses turned into errors that say what to do.
import { HubError, causeOf } from './errors.js';
import type { HubConfig } from './config.js';

/** What the request was about, to name it in errors. */
export interface Subject {
  repo: string;
  revision?: string;
  file?: string;
}

export interface FileMeta {
  /** Commit the resolve endpoint answered from (X-Repo-Commit). */
  commit?: string;
  /** Blob name: X-Linked-Etag (sha256 of an LFS file) or ETag (git blob sha), unquoted. */
  etag?: string;
  /** X-Linked-Size, else Content-Length / Content-Range total of a content response. */
  size?: number;
}

const MAX_REDIRECTS = 10;

export function normalizeEtag(raw: string | null): string | undefined {
  if (!raw) return undefined;
  return raw.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1') || undefined;
}

function int(v: string | null): number | undefined {
  const n = v == null ? NaN : Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Total size from a 206's `Content-Range: bytes a-b/total`. */
export function rangeTotal(h: Headers): number | undefined {
  return int(/\/(\d+)\s*$/.exec(h.get('content-range') ?? '')?.[1] ?? null);
}

/** The whole file's size a content response announces: a 206's Content-Range total, else Content-Length. */
export const bodyTotal = (res: Response): number | undefined =>
  res.status === 206 ? rangeTotal(res.headers) : int(res.headers.get('content-length'));

export function metaOf(res: Response): FileMeta {
  const h = res.headers;
  const redirect = res.status >= 300 && res.status < 400;
  const contentSize = res.status === 206 ? rangeTotal(h) : redirect ? undefined : int(h.get('content-length'));
  return {
    commit: h.get('x-repo-commit') ?? undefined,
    etag: normalizeEtag(h.get('x-linked-etag')) ?? normalizeEtag(h.get('etag')),
    size: int(h.get('x-linked-size')) ?? contentSize,
  };
}

const origin = (u: string) => new URL(u).origin;
const label = (s: Subject) => `${s.repo}${s.revision ? `@${s.revision}` : ''}`;

export function networkError(cfg: HubConfig, s: Subject, e: unknown): HubError {
  return new HubError(
    `cannot reach the hub at ${cfg.endpoint} for ${label(s)} (${causeOf(e)}); check the connection or HF_ENDPOINT, ` +
      'or set HF_HUB_OFFLINE=1 to use only the cache', 'network');
}

/** Turn a non-2xx hub answer into an error naming the repo/revision/file and the fix. */
export async function statusError(res: Response, cfg: HubConfig, s: Subject): Promise<HubError> {
  const code = res.headers.get('x-error-code') ?? '';
  const hubMsg = res.headers.get('x-error-message') ?? (await res.text().catch(() => '')).slice(0, 200);
  await res.body?.cancel().catch(() => {});
  const why = hubMsg ? ` (hub says: ${hubMsg.trim()})` : '';
  const repoUrl = `${cfg.endpoint}/${s.repo}`;
  if (code === 'GatedRepo' || /gated/i.test(hubMsg)) {
    return new HubError(`${s.repo} is a gated repository: accept its conditions at ${repoUrl} while logged in, then set HF_TOKEN ` +
      `to an access token of that account${cfg.token ? ' (the current token has no access)' : ''}${why}`, 'gated', res.status);
  }
  if (code === 'RepoNotFound') {
    return new HubError(`repository ${s.repo} not found at ${cfg.endpoint}: check the id` +
      `${cfg.token ? '' : ', or if it is private set HF_TOKEN to a token with access'}${why}`, 'not-found', res.status);
  }
  if (res.status === 401) {
    return new HubError(cfg.token
      ? `the hub rejected the token for ${s.repo} (401): check HF_TOKEN (expired, or no read access)${why}`
      : `${s.repo} needs authentication (401): it is private or gated; set HF_TOKEN to a Hugging Face access token${why}`, 'auth', 401);
  }
  if (res.status === 403) {
    return new HubError(`access to ${s.repo} denied (403): the token lacks permission for this repository${why}`, 'forbidden', 403);
  }
  if (res.status === 404) {
    if (code === 'RevisionNotFound') return new HubError(`revision "${s.revision}" not found in ${s.repo}${why}`, 'not-found', 404);
    if (code === 'EntryNotFound' || s.file) return new HubError(`file ${s.file} not found in ${label(s)}${why}`, 'not-found', 404);
    return new HubError(`${label(s)} not found at ${cfg.endpoint} (404): check the repository id${why}`, 'not-found', 404);
  }
  const kind = res.status >= 500 ? 'server' : 'invalid';
  return new HubError(`hub answered ${res.status} ${res.statusText} for ${label(s)}${s.file ? ` ${s.file}` : ''}${why}`, kind, res.status);
}

/**
 * One GET. The token goes only to the endpoint's own origin: presigned CDN URLs reject (and must not see) it.
 * `Accept-Encoding: identity` keeps sizes byte-exact, as huggingface_hub does.
 */
export async function get(url: string, cfg: HubConfig, s: Subject, range?: number): Promise<Response> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'clip-ts (hub cache compatible)' };
  if (cfg.token && origin(url) === origin(cfg.endpoint)) headers.authorization = `Bearer ${cfg.token}`;
  if (range) headers.range = `bytes=${range}-`;
  try {
    return await fetch(url, { headers, redirect: 'manual' });
  } catch (e) {
    throw networkError(cfg, s, e);
  }
}

export const isRedirect = (r: Response) => r.status >= 300 && r.status < 400 && r.headers.has('location');

/** Follow redirects to the content; non-2xx ends in an error. */
export async function follow(url: string, cfg: HubConfig, s: Subject, range?: number): Promise<Response> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await get(current, cfg, s, range);
    if (isRedirect(res)) {
      await res.body?.cancel().catch(() => {});
      current = new URL(res.headers.get('location')!, current).href;
      continue;
    }
    if (!res.ok) throw await statusError(res, cfg, s);
    return res;
  }
  throw new HubError(`too many redirects fetching ${url}`, 'invalid');
}

/** GET a hub JSON API. */
export async function getJson(url: string, cfg: HubConfig, s: Subject): Promise<any> {
  const res = await follow(url, cfg, s);
  try {
    return await res.json();
  } catch (e) {
    throw new HubError(`${url} did not return JSON (${causeOf(e)}): is ${cfg.endpoint} a Hugging Face hub?`, 'invalid');
  }
}
