// Where training starts: a checkpoint to fine-tune (any family whose towers we build as ViT + CLIP
// text), a config to train from scratch, or a checkpoint of an earlier run to resume. Each gives the
// same things: tower config and weights, the HF config.json to save with, the tokenizer (and the files
// to ship it with), and the preprocessing the family uses.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveModel } from '../hub/resolve.js';
import { openCheckpoint, type PreprocessSpec } from '../models/checkpoint.js';
import { clipConfigFromHF, type ClipConfig } from '../models/config.js';
import { CONFIG_LIMITS, Fields } from '../models/config-fields.js';
import { hfClipWeights } from '../models/families/hf-clip.js';
import type { TowerWeights } from '../models/weights.js';
import { loadTokenizer } from '../text/index.js';
import { checkTokenizerFile, MAX_CONTEXT_LENGTH } from '../text/validate.js';
import type { TextTokenizer } from '../text/types.js';
import { clipImageProcessorJson, completeScratchConfig, hfClipConfigJson, tokenIdsOf } from './hf-config.js';
import { randomClipWeights } from './init.js';
import type { TrainState } from './state.js';
import type { KeyMapper } from './params.js';
import { siglipKeys } from '../models/families/siglip.js';

export interface TrainSource {
  config: ClipConfig;
  /** config.json of the saved model. */
  configJson: Record<string, any>;
  weights: TowerWeights;
  tokenizer: TextTokenizer;
  tokenizerMode: 'hf' | 'openai';
  /** Tokenizer files copied into every saved model, by name. */
  tokenizerFiles: Record<string, Uint8Array>;
  preprocess: PreprocessSpec;
  /** Human-readable origin for messages. */
  origin: string;
  /** Canonical parameter -> checkpoint keys (default: HF CLIPModel's). */
  keys?: KeyMapper;
  /** How token rows are padded for the text tower (default 'longest'; SigLIP pools the last of 64 positions: 'max'). */
  textPadding?: 'longest' | 'max';
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'spiece.model'];

/** A config.json is a few KiB. */
const MAX_CONFIG_BYTES = 16 * 2 ** 20;

function readJson(path: string): Record<string, any> {
  let json: unknown;
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES) throw new Error(`larger than a config file should be (limit ${MAX_CONFIG_BYTES / 2 ** 20} MiB)`);
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${path}: expected a JSON object`);
  return json as Record<string, any>;
}

function tokenizerFiles(dir: string): Record<string, Uint8Array> {
  // SigLIP's sentencepiece model stands in for tokenizer.json (text/sentencepiece.ts).
  for (const need of [existsSync(join(dir, 'spiece.model')) ? 'spiece.model' : 'tokenizer.json', 'tokenizer_config.json']) {
    if (!existsSync(join(dir, need))) throw new Error(`tokenizer directory ${dir} has no ${need} (a saved model ships the HF tokenizer files; pass --tokenizer DIR)`);
  }
  return Object.fromEntries(TOKENIZER_FILES.filter((f) => existsSync(join(dir, f))).map((f) => {
    const p = join(dir, f);
    checkTokenizerFile(p, f);
    return [f, new Uint8Array(readFileSync(p))];
  }));
}

function checkTrainable(cfg: ClipConfig, origin: string): void {
  if (cfg.vision.kind === 'siglip-vit' && cfg.text.kind === 'siglip-text') return;
  if (cfg.vision.kind !== 'vit' || cfg.text.kind !== 'clip-text') {
    throw new Error(`${origin}: training needs a ViT image tower and the CLIP text tower (this model has ${cfg.vision.kind} + ${cfg.text.kind})`);
  }
}

/** Fine-tune a checkpoint: its weights, tokenizer and preprocessing as its family uses them. */
export async function fromCheckpoint(model: string, tokenizerDir?: string): Promise<TrainSource> {
  const dir = await resolveModel(model, { format: 'weights' });
  const ck = openCheckpoint(dir, { tokenizerDir, format: 'weights' });
  if (!ck.config || !ck.weights) throw new Error(`${model}: a ${ck.family} model has no weights we can train (ONNX files are inference-only)`);
  checkTrainable(ck.config, model);
  if (!ck.tokenizerDir) throw new Error(`${model}: no tokenizer.json next to the checkpoint; pass --tokenizer DIR`);
  const tokenizer = loadTokenizer(ck.tokenizerDir, { mode: ck.tokenizerMode, contextLength: ck.contextLength });
  // Family hook (SigLIP): saved with its own config.json as it is, its key names, texts padded to the full length.
  if (ck.family === 'siglip') {
    return {
      config: ck.config, configJson: readJson(join(dir, 'config.json')), weights: ck.weights,
      tokenizer, tokenizerMode: ck.tokenizerMode, tokenizerFiles: tokenizerFiles(ck.tokenizerDir),
      preprocess: ck.preprocess, origin: dir, keys: siglipKeys, textPadding: 'max',
    };
  }
  const base = ck.family === 'hf-clip' ? readJson(join(dir, 'config.json')) : {};
  return {
    config: ck.config,
    configJson: hfClipConfigJson(ck.config, base, ck.family === 'hf-clip' ? undefined : tokenIdsOf(tokenizer)),
    weights: ck.weights,
    tokenizer, tokenizerMode: ck.tokenizerMode,
    tokenizerFiles: tokenizerFiles(ck.tokenizerDir),
    preprocess: ck.preprocess,
    origin: dir,
  };
}

/** Train from scratch: random weights (seeded) for a CLIPConfig, with a tokenizer from `tokenizerDir`. */
export function fromConfig(configPath: string, tokenizerDir: string, seed: number): TrainSource {
  const user = readJson(configPath);
  // The tokenizer is sized by it before the whole config is read: check it first.
  const f = Fields.of(user, configPath);
  const contextLength = f.has('text_config') ? f.sub('text_config').int('max_position_embeddings', 77, 1, CONFIG_LIMITS.positions) : 77;
  const tokenizer = loadTokenizer(tokenizerDir, { mode: 'hf', contextLength });
  const full = completeScratchConfig(user, tokenIdsOf(tokenizer), configPath);
  const config = clipConfigFromHF(full, configPath);
  checkTrainable(config, configPath);
  const configJson = hfClipConfigJson(config, full);
  const size = config.vision.imageSize;
  const hfConfig = clipImageProcessorJson(size);
  return {
    config, configJson,
    weights: hfClipWeights(randomClipWeights(configJson, seed)),
    tokenizer, tokenizerMode: 'hf',
    tokenizerFiles: tokenizerFiles(tokenizerDir),
    preprocess: { kind: 'hf', hfConfig, size, mean: hfConfig.image_mean, std: hfConfig.image_std },
    origin: `random init from ${configPath}`,
  };
}

/** Continue from a checkpoint directory of this run, with the preprocessing and tokenizer it started with. */
export function fromResume(dir: string, state: TrainState): TrainSource {
  const configJson = readJson(join(dir, 'config.json'));
  const ck = openCheckpoint(resolve(dir), { format: 'weights' });
  // The family's own config reading (a run's checkpoints are HF CLIPModel or SigLIP directories).
  const config = ck.config ?? clipConfigFromHF(configJson, join(dir, 'config.json'));
  const tokenizer = loadTokenizer(dir, { mode: state.tokenizer.mode, contextLength: state.tokenizer.contextLength });
  return {
    ...(ck.family === 'siglip' ? { keys: siglipKeys, textPadding: 'max' as const } : {}),
    config, configJson, weights: ck.weights!,
    tokenizer, tokenizerMode: state.tokenizer.mode,
    tokenizerFiles: tokenizerFiles(dir),
    preprocess: state.preprocess,
    origin: dir,
  };
}
