// Where training starts: a checkpoint to fine-tune (any family whose towers training builds: a ViT with
// the CLIP or the BERT text tower), a config to train from scratch, or a checkpoint of an earlier run to
// resume. Each gives the same things: tower config and weights, the config file(s) and weights file name
// to save with (the family's own layout: the trainer's parameters are its tensors as stored), the
// tokenizer (and the files to ship it with), and the preprocessing the family uses.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { resolveModel } from '../hub/resolve.js';
import { openCheckpoint, openWeights, type Checkpoint, type PreprocessSpec } from '../models/checkpoint.js';
import { openaiConfigFromStateDict } from '../models/openai-state-dict.js';
import { clipConfigFromHF, type ClipConfig } from '../models/config.js';
import { trainableTowersError } from './clip-loss.js';
import { CONFIG_LIMITS, Fields } from '../models/config-fields.js';
import { hfClipWeights } from '../models/families/hf-clip.js';
import { familyNamed } from '../models/families/index.js';
import { readJson, type LossKind, type LossTowers } from '../models/family.js';
import type { TowerWeights } from '../models/weights.js';
import { loadTokenizer } from '../text/index.js';
import { checkTokenizerFile } from '../text/validate.js';
import type { TextTokenizer } from '../text/types.js';
import { clipImageProcessorJson, completeScratchConfig, hfClipConfigJson, tokenIdsOf } from './hf-config.js';
import { randomClipWeights } from './init.js';
import type { TrainState } from './state.js';

export interface TrainSource {
  config: ClipConfig;
  /** The config file(s) of a saved model, by name: config.json (HF families) or open_clip_config.json. */
  configFiles: Record<string, Record<string, any>>;
  /** The weights file of a saved model: model.safetensors (HF) or open_clip_model.safetensors. */
  weightsFile: string;
  /** Whether a saved model carries preprocessor_config.json (HF families; open_clip's is in its config). */
  hfPreprocessor: boolean;
  /** The weights file training starts from: its tensors the towers do not read are saved unchanged. */
  weightsPath?: string;
  weights: TowerWeights;
  tokenizer: TextTokenizer;
  tokenizerMode: 'hf' | 'openai';
  /** Tokenizer files copied into every saved model, by name. */
  tokenizerFiles: Record<string, Uint8Array>;
  preprocess: PreprocessSpec;
  /** Human-readable origin for messages. */
  origin: string;
  /** The family's own objective (its descriptor's train.loss); `--loss` overrides it. */
  loss: LossKind;
  /** The family's own towers for the loss graph, when the shared code does not build them. */
  towers?: LossTowers;
  /** How token rows are padded for the text tower: to the batch's longest, or every row to the context length (the checkpoint's TextInputs). */
  textPadding: 'longest' | 'max';
}

/** What a checkpoint's family says about training it. */
function familyTraining(ck: Checkpoint): Pick<TrainSource, 'loss' | 'towers' | 'textPadding'> {
  const train = familyNamed(ck.family).train;
  return { loss: train?.loss ?? 'softmax', towers: train?.towers, textPadding: ck.textInputs.padding };
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'vocab.txt', 'spiece.model'];

function tokenizerFiles(dir: string): Record<string, Uint8Array> {
  // A sentencepiece spiece.model stands in for tokenizer.json where the family reads one (text/index.ts).
  // tokenizer_config.json is optional beside a tokenizer.json (text/index.ts), required beside a spiece.model.
  const spiece = !existsSync(join(dir, 'tokenizer.json')) && existsSync(join(dir, 'spiece.model'));
  for (const need of spiece ? ['spiece.model', 'tokenizer_config.json'] : ['tokenizer.json']) {
    if (!existsSync(join(dir, need))) throw new Error(`tokenizer directory ${dir} has no ${need} (a saved model ships the HF tokenizer files; pass --tokenizer DIR)`);
  }
  return Object.fromEntries(TOKENIZER_FILES.filter((f) => existsSync(join(dir, f))).map((f) => {
    const p = join(dir, f);
    checkTokenizerFile(p, f);
    return [f, new Uint8Array(readFileSync(p))];
  }));
}

function checkTrainable(cfg: ClipConfig, origin: string, freeze?: 'vision' | 'text', towers?: LossTowers): void {
  const refused = trainableTowersError(cfg, freeze, towers);
  if (refused) throw new Error(`${origin}: ${refused} (this model has ${cfg.vision.kind} + ${cfg.text.kind})`);
}

function bareOpenaiConfig(file: string): Record<string, any> {
  const src = openWeights(file);
  try {
    return openaiConfigFromStateDict(src);
  } finally {
    src.close?.();
  }
}

/** How a family's checkpoint is saved again: its own config file and weights file name (the descriptor says which). */
function savedLayout(ck: Checkpoint, dir: string): Pick<TrainSource, 'configFiles' | 'weightsFile' | 'hfPreprocessor'> {
  switch (familyNamed(ck.family).train?.saveAs) {
    case 'clip-config':
      return { configFiles: { 'config.json': hfClipConfigJson(ck.config!, readJson(join(dir, 'config.json'))) }, weightsFile: 'model.safetensors', hfPreprocessor: true };
    case 'config-as-is':
      // Training changes no architecture field: the config.json is saved as it was.
      return { configFiles: { 'config.json': readJson(join(dir, 'config.json')) }, weightsFile: 'model.safetensors', hfPreprocessor: true };
    case 'open-clip-files': {
      const own = join(dir, 'open_clip_config.json');
      // A bare OpenAI file: the config its shapes say (as the loader reads it), with its preprocessing.
      const json = existsSync(own) ? readJson(own) : { ...bareOpenaiConfig(ck.path), preprocess_cfg: { mean: ck.preprocess.mean, std: ck.preprocess.std } };
      // A BERT-kind text tower in this layout is a Hugging Face model: its config.json (beside its tokenizer) goes with it.
      const hfText = ck.config?.text.kind === 'bert' && ck.tokenizerDir ? join(ck.tokenizerDir, 'config.json') : undefined;
      const configFiles: Record<string, Record<string, any>> = { 'open_clip_config.json': json };
      if (hfText && existsSync(hfText)) configFiles['config.json'] = readJson(hfText);
      return { configFiles, weightsFile: 'open_clip_model.safetensors', hfPreprocessor: false };
    }
    default:
      throw new Error(`${ck.path}: a ${ck.family} model cannot be trained`);
  }
}

/** Fine-tune a checkpoint: its weights, tokenizer and preprocessing as its family uses them. */
export async function fromCheckpoint(model: string, tokenizerDir?: string, freeze?: 'vision' | 'text'): Promise<TrainSource> {
  const dir = await resolveModel(model, { format: 'weights' });
  const ck = openCheckpoint(dir, { tokenizerDir, format: 'weights' });
  if (!ck.config || !ck.weights) throw new Error(`${model}: a ${ck.family} model has no weights we can train (ONNX files are inference-only)`);
  const family = familyTraining(ck);
  checkTrainable(ck.config, model, freeze, family.towers);
  if (!ck.tokenizerDir) throw new Error(`${model}: no tokenizer.json next to the checkpoint; pass --tokenizer DIR`);
  const { sentencepiece, tokenizerJson } = familyNamed(ck.family).tokenizer;
  const tokenizer = loadTokenizer(ck.tokenizerDir, { mode: ck.tokenizerMode, contextLength: ck.contextLength, sentencepiece, tokenizerJson, clean: ck.textClean });
  return {
    ...family,
    config: ck.config,
    ...savedLayout(ck, statSync(dir).isDirectory() ? dir : dirname(dir)),
    weights: ck.weights,
    weightsPath: ck.image.kind === 'built' ? ck.image.source.files[0] : undefined, // the weights file comes first
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
    config, configFiles: { 'config.json': configJson }, weightsFile: 'model.safetensors', hfPreprocessor: true,
    weights: hfClipWeights(randomClipWeights(configJson, seed)),
    tokenizer, tokenizerMode: 'hf',
    tokenizerFiles: tokenizerFiles(tokenizerDir),
    preprocess: { kind: 'hf', hfConfig, size, mean: hfConfig.image_mean, std: hfConfig.image_std },
    origin: `random init from ${configPath}`,
    loss: 'softmax', textPadding: 'longest',
  };
}

/** Continue from a checkpoint directory of this run, with the preprocessing and tokenizer it started with. */
export function fromResume(dir: string, state: TrainState): TrainSource {
  const ck = openCheckpoint(resolve(dir), { format: 'weights' });
  if (!ck.config || !ck.weights) throw new Error(`${dir}: no weights to resume from`);
  const tokenizer = loadTokenizer(dir, {
    mode: state.tokenizer.mode, contextLength: state.tokenizer.contextLength, sentencepiece: familyNamed(ck.family).tokenizer.sentencepiece,
    tokenizerJson: familyNamed(ck.family).tokenizer.tokenizerJson, clean: ck.textClean,
  });
  const saved: Pick<TrainSource, 'configFiles' | 'weightsFile' | 'hfPreprocessor'> = familyNamed(ck.family).train?.saveAs === 'open-clip-files'
    ? {
      configFiles: {
        'open_clip_config.json': readJson(join(dir, 'open_clip_config.json')),
        ...(existsSync(join(dir, 'config.json')) ? { 'config.json': readJson(join(dir, 'config.json')) } : {}),
      },
      weightsFile: 'open_clip_model.safetensors', hfPreprocessor: false,
    }
    : { configFiles: { 'config.json': readJson(join(dir, 'config.json')) }, weightsFile: 'model.safetensors', hfPreprocessor: true };
  return {
    ...familyTraining(ck),
    config: ck.config, ...saved, weights: ck.weights, weightsPath: join(dir, saved.weightsFile),
    tokenizer, tokenizerMode: state.tokenizer.mode,
    tokenizerFiles: tokenizerFiles(dir),
    preprocess: state.preprocess,
    origin: dir,
  };
}
