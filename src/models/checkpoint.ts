// Recognize a checkpoint directory (or file) and describe it: family, tower configs, weights, and how its
// texts are tokenized and images preprocessed. No graphs are built here.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SafetensorsFile } from '../io/safetensors.js';
import { loadTorchCheckpoint } from '../io/torch.js';
import type { TensorSource } from '../io/tensor.js';
import { clipConfigFromHF, type ClipConfig } from './config.js';
import { hfClipWeights } from './families/hf-clip.js';
import { openaiClipWeights } from './families/openai-clip.js';
import type { TowerWeights } from './weights.js';

export type Family = 'hf-clip' | 'open-clip';

export interface PreprocessSpec {
  /** 'hf' = CLIPImageProcessor from preprocessor_config.json; 'openai' = torchvision Resize+CenterCrop. */
  kind: 'hf' | 'openai';
  /** preprocessor_config.json contents for 'hf'. */
  hfConfig?: Record<string, unknown>;
  size: number;
  mean: number[];
  std: number[];
}

export interface Checkpoint {
  family: Family;
  path: string;
  config: ClipConfig;
  weights: TowerWeights;
  /** Directory holding tokenizer.json, when one was found. */
  tokenizerDir?: string;
  tokenizerMode: 'hf' | 'openai';
  preprocess: PreprocessSpec;
  /** The logit scale as stored (log space). */
  logitScale: number;
}

export const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711];

export interface OpenOptions {
  /** Tokenizer directory to use when the checkpoint has none (OpenAI-family checkpoints ship without one). */
  tokenizerDir?: string;
}

function readJson(path: string): Record<string, any> {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

function requireFile(dir: string, names: string[], what: string): string {
  for (const n of names) {
    const p = join(dir, n);
    if (existsSync(p)) return p;
  }
  throw new Error(`checkpoint ${dir} is missing its ${what} (looked for ${names.join(', ')})`);
}

/** Weight files by extension; torch pickles are handled by the torch loader. */
export type WeightOpener = (path: string) => TensorSource;

const openers: Array<{ test: (p: string) => boolean; open: WeightOpener }> = [
  { test: (p) => p.endsWith('.safetensors'), open: (p) => new SafetensorsFile(p) },
  // torch.save zips and TorchScript archives, through the allowlisting unpickler.
  { test: (p) => /\.(bin|pt|pth|ckpt)$/.test(p), open: (p) => loadTorchCheckpoint(p) },
];

/** Register an opener for other weight formats (torch pickles, ...). */
export function registerWeightOpener(test: (p: string) => boolean, open: WeightOpener): void {
  openers.push({ test, open });
}

export function openWeights(path: string): TensorSource {
  const o = openers.find((x) => x.test(path));
  if (!o) throw new Error(`${path}: unsupported weight file format`);
  return o.open(path);
}

function scalar(w: TowerWeights, name: string, fallback: number): number {
  return w.has(name) ? w.get(name).data[0]! : fallback;
}

export function openCheckpoint(path: string, opts: OpenOptions = {}): Checkpoint {
  if (!existsSync(path)) throw new Error(`model path ${path} does not exist`);
  const isDir = statSync(path).isDirectory();
  const dir = isDir ? path : dirname(path);
  const file = isDir ? undefined : path;
  const tokenizerFrom = (d: string): string | undefined =>
    opts.tokenizerDir ?? (existsSync(join(d, 'tokenizer.json')) ? d : undefined);

  if (existsSync(join(dir, 'open_clip_config.json'))) {
    throw new Error(`${dir}: open_clip checkpoints need the open-clip family module`);
  }
  if (existsSync(join(dir, 'config.json'))) {
    const cfgJson = readJson(join(dir, 'config.json'));
    if (cfgJson.model_type === 'clip' || cfgJson.text_config?.model_type === 'clip_text_model') {
      const config = clipConfigFromHF(cfgJson, join(dir, 'config.json'));
      const weightsPath = file ?? requireFile(dir, ['model.safetensors', 'pytorch_model.bin'], 'weights');
      const weights = hfClipWeights(openWeights(weightsPath));
      const ppPath = join(dir, 'preprocessor_config.json');
      const hfConfig = existsSync(ppPath) ? readJson(ppPath) : undefined;
      return {
        family: 'hf-clip',
        path,
        config,
        weights,
        tokenizerDir: tokenizerFrom(dir),
        tokenizerMode: 'hf',
        preprocess: {
          kind: 'hf',
          hfConfig,
          size: config.vision.imageSize,
          mean: (hfConfig?.image_mean as number[]) ?? OPENAI_MEAN,
          std: (hfConfig?.image_std as number[]) ?? OPENAI_STD,
        },
        logitScale: scalar(weights, 'logit_scale', config.logitScaleInit),
      };
    }
    throw new Error(`${join(dir, 'config.json')}: model_type "${cfgJson.model_type}" is not a supported CLIP family`);
  }
  throw new Error(`${path}: not a recognized checkpoint (no config.json or open_clip_config.json${file ? '' : ' in the directory'}; file ${basename(path)})`);
}
