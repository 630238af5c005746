// Sharded checkpoints: `model.safetensors.index.json` / `pytorch_model.bin.index.json` (transformers'
// save_pretrained with max_shard_size) map every tensor name to the shard file that holds it. This presents
// the shards as one TensorSource. Nothing in the index is trusted: its size is bounded before it is read,
// shard names must be plain file names in the index's own directory, every shard must exist, and each
// shard's own header must agree with the index (no tensor listed in a shard that lacks it, none in two).
//
// Memory: the shards are opened one after another and only their headers stay resident (both readers read a
// tensor's bytes from disk when it is asked for), so a 10-shard ViT-bigG costs ten headers, not 10 GB.
import { statSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { IO_LIMITS } from './limits.js';
import { SafetensorsFile } from './safetensors.js';
import type { DType, RawTensor, TensorSource } from './tensor.js';
import { loadTorchCheckpoint } from './torch.js';

/** An index file's name: the weight file it stands for, plus `.index.json`. */
export const isShardIndex = (path: string): boolean => path.endsWith('.index.json');

/** `model.safetensors` -> `model.safetensors.index.json`. */
export const shardIndexName = (weightFile: string): string => `${weightFile}.index.json`;

// A shard is a file beside the index: no directory part, no hidden or special names.
const SHARD_NAME = /^[A-Za-z0-9_][\w.-]*\.(safetensors|bin|pt|pth)$/;

export interface ShardIndex {
  /** tensor name -> shard file name (plain name, relative to the index's directory). */
  weightMap: Map<string, string>;
  /** The distinct shard files, in first-listed order. */
  shards: string[];
}

/**
 * Parse and check an index file's text. `origin` names the file in errors. Throws on anything that is not a
 * `{"weight_map": {name: "shard-file", ...}}` object within the limits, or on a shard name that is not a
 * plain file name (a path, `..`, a hidden file): an index never reaches outside its own directory.
 */
export function parseShardIndex(text: string, origin: string): ShardIndex {
  const fail: (msg: string) => never = (msg) => { throw new Error(`${origin}: ${msg}`); };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('expected a JSON object with "weight_map"');
  const wm = (json as Record<string, unknown>).weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) fail('"weight_map" must be an object of tensor name -> shard file name');
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (weightMap.size >= IO_LIMITS.shardIndexMaxTensors) fail(`weight_map lists more than ${IO_LIMITS.shardIndexMaxTensors} tensors`);
    const where = `weight_map[${JSON.stringify(name.slice(0, 200))}]`;
    if (!name || name.length > 1024) fail(`${where}: a tensor name must be 1 to 1024 characters`);
    if (typeof shard !== 'string') fail(`${where} is ${JSON.stringify(shard)?.slice(0, 80)}, not a shard file name`);
    if (!SHARD_NAME.test(shard) || shard.length > 255) {
      fail(`${where}: shard ${JSON.stringify(shard.slice(0, 200))} is not a plain .safetensors/.bin file name in the index's directory`);
    }
    if (!weightMap.has(name) && !shards.includes(shard)) {
      if (shards.length >= IO_LIMITS.shardIndexMaxShards) fail(`weight_map names more than ${IO_LIMITS.shardIndexMaxShards} shard files`);
      shards.push(shard);
    }
    weightMap.set(name, shard);
  }
  if (weightMap.size === 0) fail('weight_map is empty');
  return { weightMap, shards };
}

/** Read and check an index file (its size bounded before a byte is read). */
export function readShardIndex(path: string): ShardIndex {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new Error(`cannot read shard index ${path}: ${(e as Error).message}`);
  }
  if (size > IO_LIMITS.shardIndexMaxBytes) {
    throw new Error(`${path}: ${size} bytes, more than the limit of ${IO_LIMITS.shardIndexMaxBytes} for a shard index`);
  }
  return parseShardIndex(readFileSync(path, 'utf8'), path);
}

/** One shard file opened by its extension (the same readers as unsharded weights). */
function openShard(path: string): TensorSource {
  return path.endsWith('.safetensors') ? new SafetensorsFile(path) : loadTorchCheckpoint(path);
}

/** The shards of an index as one TensorSource; `origin` is the index file. */
export class ShardedSource implements TensorSource {
  /** Absolute paths of the shard files (what a cache of built graphs must key on besides the index). */
  readonly shardPaths: string[];
  private readonly sources = new Map<string, TensorSource>();
  private readonly owner = new Map<string, TensorSource>();

  constructor(readonly origin: string) {
    const index = readShardIndex(origin);
    const dir = dirname(origin);
    this.shardPaths = index.shards.map((s) => join(dir, s));
    try {
      for (const shard of index.shards) {
        const p = join(dir, shard);
        let st;
        try {
          st = statSync(p);
        } catch {
          throw new Error(`${origin}: shard ${shard} is missing (expected ${p})`);
        }
        if (!st.isFile()) throw new Error(`${origin}: shard ${shard} is not a file (${p})`);
        const src = openShard(p);
        this.sources.set(shard, src);
        for (const name of src.keys()) {
          const listed = index.weightMap.get(name);
          const other = this.owner.get(name);
          if (other) throw new Error(`${origin}: tensor "${name}" is in two shards (${basename(other.origin)} and ${shard})`);
          if (listed !== shard) {
            throw new Error(`${origin}: tensor "${name}" is in shard ${shard}, but the index ${listed ? `puts it in ${listed}` : 'does not list it'}`);
          }
          this.owner.set(name, src);
        }
      }
      for (const [name, shard] of index.weightMap) {
        if (!this.owner.has(name)) throw new Error(`${origin}: the index puts tensor "${name}" in ${shard}, which does not hold it`);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  keys(): string[] { return [...this.owner.keys()]; }
  has(name: string): boolean { return this.owner.has(name); }
  info(name: string): { dtype: DType; shape: number[] } | undefined {
    const src = this.owner.get(name);
    if (!src) return undefined;
    if (src.info) return src.info(name);
    const t = src.get(name); // a source without headers: read the tensor once
    return { dtype: t.dtype, shape: t.shape };
  }

  get(name: string): RawTensor {
    const src = this.owner.get(name);
    if (!src) throw new Error(`${this.origin}: no tensor named "${name}"`);
    return src.get(name);
  }

  close(): void {
    for (const s of this.sources.values()) s.close?.();
    this.sources.clear();
  }
}

/** The files a weight source reads: itself, and for a sharded one every shard (cache keys need them all). */
export function weightFilesOf(src: TensorSource, path: string): string[] {
  return src instanceof ShardedSource ? [path, ...src.shardPaths] : [path];
}
