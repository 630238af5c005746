// Recognize a checkpoint directory (or file) and describe it: the registry's detectors are asked in order
// (families/index.ts) and the winner's descriptor loads it. Graphs are only built when a tower is first used.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readJson, type Checkpoint, type CheckpointLocation, type OpenOptions } from './family.js';
import { detectFamily, FAMILIES } from './families/index.js';

export {
  OPENAI_MEAN, OPENAI_STD, openWeights,
  type Checkpoint, type OpenOptions, type PreprocessSpec, type TextInputs, type TowerSource, type TowerSpec,
} from './family.js';

/** What detectors see of `path`: names and config.json, read at most once; no weights are opened. */
export function locate(path: string, opts: OpenOptions = {}): CheckpointLocation {
  if (!existsSync(path)) throw new Error(`model path ${path} does not exist`);
  const isDir = statSync(path).isDirectory();
  const dir = isDir ? path : dirname(path);
  let config: Record<string, any> | undefined | null = null;
  return {
    path, isDir, dir, file: isDir ? undefined : path, opts,
    has: (name) => existsSync(join(dir, name)),
    config() {
      if (config === null) config = existsSync(join(dir, 'config.json')) ? readJson(join(dir, 'config.json')) : undefined;
      return config;
    },
  };
}

export function openCheckpoint(path: string, opts: OpenOptions = {}): Checkpoint {
  const loc = locate(path, opts);
  const family = detectFamily(loc);
  if (family) return family.open(loc, { openCheckpoint });
  const known = `known families: ${FAMILIES.map((f) => f.summary).join('; ')}`;
  const cfg = loc.config();
  if (!cfg) throw new Error(`${path}: not a recognized checkpoint (no config.json, open_clip_config.json or clip-pair.json; ${known})`);
  throw new Error(`${join(loc.dir, 'config.json')}: model_type "${cfg.model_type}" is not a supported CLIP family (${known})`);
}
