// Model ids to local directories: a local path as it is; otherwise an alias or `org/name[@revision]` looked up
// in the Hugging Face hub cache and downloaded there when missing.
//
// Why not @huggingface/hub (2.17.5, evaluated): it writes the same layout, but its downloadFileToCacheDir
// restarts interrupted downloads from zero, checks neither size nor sha256, has no offline mode and no progress,
// files a branch download under the file's last commit instead of the branch's commit (and writes no refs), and
// snapshotDownload fetches every file of a repo (CLIP repos carry the weights 3-4 times: bin, safetensors, h5,
// msgpack). Doing it here is ~400 lines with no dependency.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { aliasRepo, isOpenClipAlias, MODEL_ALIASES, OPEN_CLIP_LAYOUT } from './aliases.js';
import { bundledModelDir } from './bundled.js';
import { COMMIT_RE, RepoCache, checkRelPath } from './cache.js';
import { hubConfig, type HubConfig, type HubOptions } from './config.js';
import { fetchFile, type DownloadOptions } from './download.js';
import { HubError } from './errors.js';
import { META_FILES, pickFiles, shardsToFetch, snapshotSettled, snapshotUsable, type Format } from './files.js';
import { isShardIndex } from '../io/sharded.js';
import { getJson } from './http.js';
import { verifySnapshot } from './verify.js';

export interface ResolveOptions extends HubOptions, DownloadOptions {
  /** Branch, tag or commit (default: the id's `@revision`, else main). */
  revision?: string;
  /** Which towers to fetch: weights (default) or the ONNX exports (onnx/vision_model.onnx, ...). */
  format?: Format;
  /** ONNX variant suffix ('' = fp32, '_quantized', '_fp16', ...). */
  onnxVariant?: string;
  /** Ask the hub even though the cache has this revision (a branch may have moved on). */
  refresh?: boolean;
  /** Re-hash the cached files first; corrupted ones are fetched again. */
  verify?: boolean;
}

export interface ModelRef {
  repo: string;
  revision: string;
  /** The alias the id was, if it was one. */
  alias?: string;
}

// Hub rules: `name` or `org/name`, word characters, '.', '-', no '--' or '..' (they would break the cache names).
const REPO_RE = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

export function parseModelId(id: string, revision?: string): ModelRef {
  const at = id.lastIndexOf('@');
  const name = at > 0 ? id.slice(0, at) : id;
  const rev = revision ?? (at > 0 ? id.slice(at + 1) : 'main');
  const alias = aliasRepo(name);
  const repo = alias ?? name;
  if (!REPO_RE.test(repo) || repo.includes('--') || repo.includes('..') || repo.length > 96) {
    throw new HubError(`${id}: no such file or directory, and not a hub model id (org/name[@revision]) or an alias ` +
      `(${Object.keys(MODEL_ALIASES).join(', ')})`, 'invalid');
  }
  checkRelPath(rev, 'revision');
  return { repo, revision: rev, alias: alias ? name : undefined };
}

const describe = (r: ModelRef) => `${r.alias ? `${r.alias} (${r.repo}@${r.revision})` : `${r.repo}@${r.revision}`}`;

function note(o: ResolveOptions, msg: string): void {
  if (o.progress !== false) process.stderr.write(`clip: ${msg}\n`);
}

async function listRepo(cfg: HubConfig, r: ModelRef): Promise<{ sha: string; files: string[] }> {
  const j = await getJson(`${cfg.endpoint}/api/models/${r.repo}/revision/${encodeURIComponent(r.revision)}`, cfg, r);
  if (typeof j?.sha !== 'string' || !COMMIT_RE.test(j.sha) || !Array.isArray(j.siblings)) {
    throw new HubError(`${cfg.endpoint}: unexpected answer listing ${describe(r)} (no sha/siblings)`, 'invalid');
  }
  return { sha: j.sha, files: j.siblings.map((s: any) => s?.rfilename).filter((f: unknown): f is string => typeof f === 'string') };
}

async function download(cfg: HubConfig, cache: RepoCache, r: ModelRef, o: ResolveOptions): Promise<string> {
  const listing = await listRepo(cfg, r);
  // An open_clip alias names a repo with that layout: say so if the repo has changed, rather than load something else.
  const lacking = r.alias && isOpenClipAlias(r.alias) ? OPEN_CLIP_LAYOUT.filter((f) => !listing.files.includes(f)) : [];
  if (lacking.length) throw new HubError(`${describe(r)}: the alias stands for an open_clip checkpoint, but the repo has no ${lacking.join(', ')}`, 'not-found');
  const files = pickFiles(describe(r), listing.files, o.format, o.onnxVariant).map((f) => checkRelPath(f, 'file name'));
  const dir = cache.snapshot(listing.sha);
  // Pinned to the listed commit, so every file comes from the same revision even if the branch moves meanwhile.
  for (const f of files) if (!existsSync(join(dir, f))) await fetchFile(cfg, cache, listing.sha, f, o);
  // A sharded checkpoint: the index is in, now the shards it names, one after another.
  for (const index of files.filter(isShardIndex)) {
    for (const s of shardsToFetch(describe(r), dir, index, listing.files)) {
      if (!existsSync(join(dir, checkRelPath(s, 'file name')))) await fetchFile(cfg, cache, listing.sha, s, o);
    }
  }
  await cache.markMissing(listing.sha, META_FILES.filter((f) => !listing.files.includes(f)));
  // The ref goes last: a branch name then only ever points at a snapshot that has everything.
  await cache.writeRef(r.revision, listing.sha);
  return dir;
}

/** A local path, or the snapshot directory of a hub model (downloaded into the HF cache if needed). */
export async function resolveModel(idOrPath: string, o: ResolveOptions = {}): Promise<string> {
  if (existsSync(idOrPath)) return idOrPath;
  const bundled = bundledModelDir(idOrPath);
  if (bundled) return bundled;
  const r = parseModelId(idOrPath, o.revision);
  const cfg = hubConfig(o);
  const cache = new RepoCache(cfg.cacheDir, r.repo);
  const format = o.format ?? 'auto';
  const commit = cache.commitFor(r.revision);
  if (commit && o.verify) {
    const bad = await verifySnapshot(cache.snapshot(commit));
    if (bad.length) note(o, `${describe(r)}: corrupted in the cache, removed: ${bad.join(', ')}`);
  }
  if (commit && !o.refresh) {
    const dir = cache.snapshot(commit);
    const ok = cfg.offline ? snapshotUsable(dir, format, o.onnxVariant) : snapshotSettled(dir, (f) => cache.noExist(commit, f), format, o.onnxVariant);
    if (ok) return dir;
  }
  if (cfg.offline) {
    throw new HubError(`${describe(r)} is not${commit ? ' completely' : ''} in the hub cache at ${cfg.cacheDir}, and offline mode ` +
      '(HF_HUB_OFFLINE=1) forbids downloading it: run once online, or point HF_HUB_CACHE / HF_HOME at a cache that has it', 'offline');
  }
  try {
    return await download(cfg, cache, r, o);
  } catch (e) {
    if (!(e instanceof HubError)) throw e;
    // As huggingface_hub does: an unreachable hub falls back to what the cache has.
    if (e.kind === 'network' && commit && snapshotUsable(cache.snapshot(commit), format, o.onnxVariant)) {
      note(o, `${e.message}; using the cached snapshot ${commit}`);
      return cache.snapshot(commit);
    }
    if (!r.alias && (e.kind === 'not-found' || e.kind === 'auth') && !/^[\w.-]+\/[\w.-]+$/.test(idOrPath.split('@')[0]!)) {
      throw new HubError(`${idOrPath}: no such local path, and the hub says: ${e.message}`, e.kind, e.status);
    }
    throw e;
  }
}

/** One file of a hub repo (hf_hub_download): its path in the cache, downloaded if needed. */
export async function hubDownload(repoId: string, file: string, o: ResolveOptions = {}): Promise<string> {
  const r = parseModelId(repoId, o.revision);
  const cfg = hubConfig(o);
  const cache = new RepoCache(cfg.cacheDir, r.repo);
  checkRelPath(file, 'file name');
  const commit = cache.commitFor(r.revision);
  const cached = commit && join(cache.snapshot(commit), file);
  if (cached && existsSync(cached) && !o.refresh) return cached;
  if (cfg.offline) throw new HubError(`${file} of ${describe(r)} is not in the hub cache at ${cfg.cacheDir}, and offline mode (HF_HUB_OFFLINE=1) forbids downloading it`, 'offline');
  const got = await fetchFile(cfg, cache, r.revision, file, o);
  await cache.writeRef(r.revision, got.commit);
  return got.path;
}
