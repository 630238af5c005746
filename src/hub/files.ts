// Which files of a repo a CLIP checkpoint needs, as the family registry says (models/families/*.ts: each
// descriptor's `hub`): the configs and tokenizer files, one set of weights (the family's preferred file first),
// and the ONNX towers only when asked or when nothing else exists.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILIES } from '../models/families/index.js';
import type { HubFiles } from '../models/family.js';
import { isShardIndex, readShardIndex, shardIndexName } from '../io/sharded.js';
import { HubError } from './errors.js';

export type Format = 'auto' | 'weights' | 'onnx';

/** The hub lists of the registry's families, in detection order. */
const HUB: readonly HubFiles[] = FAMILIES.flatMap((f) => (f.hub ? [f.hub] : []));

/** Small files read when present (every family's). */
export const META_FILES = [...new Set(HUB.flatMap((h) => h.meta))];

export const onnxTowers = (variant = '') => [`onnx/vision_model${variant}.onnx`, `onnx/text_model${variant}.onnx`];
// Towers over 2 GB keep their weights beside them; the name depends on the exporter.
const externalData = (f: string) => [`${f}_data`, `${f}.data`, f.replace(/\.onnx$/, '.onnx_data')];

/** The family list a repo's file names match, by marker file. */
const hubOf = (has: (f: string) => boolean): HubFiles | undefined => HUB.find((h) => has(h.marker));

// Each weight file of a family, then its shard index (the shards it names are fetched once the index is in: shardsToFetch).
const weightsOf = (hub: HubFiles) => hub.weights.flatMap((n) => [n, shardIndexName(n)]);

export function pickFiles(repo: string, available: string[], format: Format = 'auto', variant = ''): string[] {
  const has = new Set(available);
  const hub = hubOf((f) => has.has(f));
  if (!hub) {
    throw new HubError(`${repo} has none of ${[...new Set(HUB.map((h) => h.marker))].join(', ')}: not a CLIP checkpoint this toolkit can load ` +
      `(files: ${available.slice(0, 20).join(', ')}${available.length > 20 ? ', …' : ''})`, 'invalid');
  }
  const files = META_FILES.filter((f) => has.has(f));
  const weights = weightsOf(hub).find((f) => has.has(f));
  const towers = onnxTowers(variant);
  const onnxOk = hub.onnx && towers.every((f) => has.has(f));
  if (format === 'onnx' || (format === 'auto' && !weights)) {
    if (!onnxOk) {
      const what = format === 'onnx' ? `no ONNX towers (${towers.join(', ')})` : `no weights (${hub.weights.join(', ')}) and no ONNX towers`;
      throw new HubError(`${repo} has ${what}`, 'not-found');
    }
    return [...files, ...towers, ...towers.flatMap(externalData).filter((f) => has.has(f))];
  }
  if (!weights) throw new HubError(`${repo} has no weights (looked for ${weightsOf(hub).join(', ')})`, 'not-found');
  return [...files, weights];
}

const present = (dir: string, f: string) => existsSync(join(dir, f)); // follows symlinks: a dangling one is absent

/**
 * The shard files a downloaded index names (checked by the loader's own rules: plain file names, bounded
 * size), each also listed by the repo. A shard the repo does not list is an error here rather than a 404 later.
 */
export function shardsToFetch(repo: string, dir: string, index: string, available: string[]): string[] {
  let shards: string[];
  try {
    shards = readShardIndex(join(dir, index)).shards;
  } catch (e) {
    throw new HubError(`${repo}: ${(e as Error).message}`, 'invalid');
  }
  const missing = shards.filter((s) => !available.includes(s));
  if (missing.length) throw new HubError(`${repo}: ${index} names shards the repo does not have: ${missing.slice(0, 5).join(', ')}`, 'not-found');
  return shards;
}

/** A weight file in place: itself, or an index with every shard it names (an unreadable index counts as absent). */
function weightsPresent(dir: string, f: string): boolean {
  if (!present(dir, f)) return false;
  if (!isShardIndex(f)) return true;
  try {
    return readShardIndex(join(dir, f)).shards.every((s) => present(dir, s));
  } catch {
    return false;
  }
}

/** Enough to load (offline, or when the network fails): a config and the weights or towers asked for. */
export function snapshotUsable(dir: string, format: Format = 'auto', variant = ''): boolean {
  const hub = hubOf((f) => present(dir, f));
  if (!hub) return false;
  const onnxOk = hub.onnx && onnxTowers(variant).every((f) => present(dir, f));
  const weights = weightsOf(hub).some((f) => weightsPresent(dir, f));
  return format === 'onnx' ? onnxOk : format === 'weights' ? weights : weights || onnxOk;
}

/**
 * Complete as far as we can tell without asking the hub: usable, and every small file either there or marked
 * absent in .no_exist (written when we listed the repo). Caches filled by other tools may lack the markers;
 * they then cost one listing request, after which they are complete too.
 */
export function snapshotSettled(dir: string, noExist: (f: string) => string, format: Format = 'auto', variant = ''): boolean {
  return snapshotUsable(dir, format, variant) && META_FILES.every((f) => present(dir, f) || existsSync(noExist(f)));
}
