// What a checkpoint family is: one descriptor per family (src/models/families/<name>.ts) says how to recognize
// its checkpoints, read and range-check its config, map its weight names, which towers to build, how texts
// are tokenized, fed and scored, how images are preprocessed, which hub files it needs and how it trains.
// Everything outside models/families/ asks the descriptor (through the registry, families/index.ts) instead
// of naming a family. This file also holds the parts several descriptors share.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SafetensorsFile } from '../io/safetensors.js';
import { isShardIndex, ShardedSource, shardIndexName, weightFilesOf } from '../io/sharded.js';
import { loadTorchCheckpoint } from '../io/torch.js';
import type { TensorSource } from '../io/tensor.js';
import type { Graph } from '../graph/graph.js';
import { pipelineFromPreprocessorConfig } from '../image/pipeline-config.js';
import type { SentencePieceRules, TokenizerJsonRules } from '../text/index.js';
import type { TokenBatch } from '../text/types.js';
import { buildImageGraph, type BuildOptions } from './clip-graph.js';
import type { ClipConfig } from './config.js';
import { buildResNetImageGraph } from './extra-graphs.js';
import type { TowerWeights } from './weights.js';

type Json = Record<string, any>;

export interface PreprocessSpec {
  /**
   * 'hf' = an HF image processor from preprocessor_config.json (`hfConfig`; CLIPImageProcessor's defaults
   * without one); 'openai' = torchvision Resize+CenterCrop. Both run through image/pipelines.ts.
   */
  kind: 'hf' | 'openai';
  hfConfig?: Record<string, unknown>;
  size: number;
  mean: number[];
  std: number[];
}

/**
 * What a built tower's graph depends on besides our code and the build options: the files its weights and
 * config were read from, and the config it is built with (incl. family options such as Taiyi's mask). The
 * ONNX cache keys on it (runtime/onnx-cache.ts), so anything that changes the graph must appear here.
 */
export interface TowerSource {
  files: string[];
  config: unknown;
}

/** A tower is either built by us from weights, or an ONNX file run as it is. */
export type TowerSpec =
  | { kind: 'built'; build: (opts: BuildOptions) => Graph; source: TowerSource }
  | { kind: 'onnx'; path: string };

/** One int64 input of the text tower. */
export interface Int64Feed {
  data: BigInt64Array;
  dims: number[];
}

/** How the text tower takes a tokenized batch. The runtime feeds what `feeds` returns and batches by `padding`. */
export interface TextInputs {
  /** A short name for messages and tests ('clip', 'bert', 'bert-masked', 'onnx-hf', ...). */
  kind: string;
  /** The tower's inputs for one padded batch, by input name. */
  feeds(b: TokenBatch): Record<string, Int64Feed>;
  /** 'longest' when the tower takes any length; 'max' pads every row to the context length (fixed-length exports, SigLIP). */
  padding: 'longest' | 'max';
  /**
   * Padding cannot change a row's output (causal pooling at a given index, or masked attention): a batch
   * may then be cut where lengths jump, so short texts are not padded to a long one.
   */
  rowsIndependent: boolean;
}

/** Where the text tower pools, when the runtime tells it: at the first end token, or at the last position. */
export type PoolIndex = 'eot' | 'last';

/** A TextInputs from its parts: input_ids always; pool_index and attention_mask as the tower takes them. */
export function textInputs(kind: string, o: { poolIndex?: PoolIndex; attentionMask?: boolean; padding?: 'longest' | 'max'; rowsIndependent: boolean }): TextInputs {
  return {
    kind,
    padding: o.padding ?? 'longest',
    rowsIndependent: o.rowsIndependent,
    feeds(b) {
      const dims = [b.batch, b.length];
      const out: Record<string, Int64Feed> = { input_ids: { data: b.inputIds, dims } };
      if (o.poolIndex) {
        const at = (i: number) => (o.poolIndex === 'eot' ? b.eotIndex[i]! : b.length - 1);
        out.pool_index = { data: BigInt64Array.from({ length: b.batch }, (_, i) => BigInt(i * b.length + at(i))), dims: [b.batch] };
      }
      if (o.attentionMask) out.attention_mask = { data: b.attentionMask, dims };
      return out;
    },
  };
}

/** Our causal CLIP text tower: input_ids + pool_index (the flat row index of each text's EOT). */
export const CLIP_TEXT_INPUTS = textInputs('clip', { poolIndex: 'eot', rowsIndependent: true });
/** A BERT tower with the attention mask: padding cannot change a row, so batches may be cut by length. */
export const BERT_MASKED_INPUTS = textInputs('bert-masked', { attentionMask: true, rowsIndependent: true });
/** A BERT tower called without the mask (Taiyi's seed call): padding changes a row, batches keep their texts together. */
export const BERT_INPUTS = textInputs('bert', { rowsIndependent: false });

/**
 * How similarities become scores: CLIP's softmax over exp(logit_scale) * cos, or SigLIP's per-pair
 * sigmoid(exp(logit_scale) * cos + logit_bias), whose bias is the checkpoint's `logitBias`.
 */
export type ScoreRule = { kind: 'softmax' } | { kind: 'sigmoid' };

/** Scores of one image against every class, from its logits (exp(logit_scale) * cos already applied). */
export function scoresFromLogits(rule: ScoreRule, logits: readonly number[], logitBias = 0): number[] {
  if (rule.kind === 'sigmoid') return logits.map((z) => 1 / (1 + Math.exp(-(z + logitBias))));
  const max = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/**
 * The training objective a family was trained with, and so fine-tunes with by default (`clip train --loss`
 * takes the same names): CLIP's softmax cross-entropy over the batch both ways, or SigLIP's pairwise sigmoid.
 */
export const LOSS_KINDS = ['softmax', 'sigmoid'] as const;
export type LossKind = (typeof LOSS_KINDS)[number];

/**
 * A family's own towers as the training loss graph builds them, for tower kinds the shared loss code
 * (train/clip-loss.ts: ViT / ModifiedResNet, CLIP text / BERT) does not know. Each returns the features
 * before normalization; the text tower reads input_ids only (texts padded as the checkpoint's TextInputs say).
 */
export interface LossTowers {
  image(g: Graph, pixels: string, cfg: ClipConfig, w: TowerWeights): string;
  text(g: Graph, ids: string, cfg: ClipConfig, w: TowerWeights): string;
}

export interface TrainDefaults {
  loss: LossKind;
  /** Absent: the towers are kinds the shared loss code builds. */
  towers?: LossTowers;
  /**
   * How a fine-tuned model is saved, in the family's own layout: 'clip-config' = its config.json updated from the
   * tower config; 'config-as-is' = config.json copied (training changes no architecture field); 'open-clip-files' =
   * open_clip_config.json + open_clip_model.safetensors.
   */
  saveAs: 'clip-config' | 'config-as-is' | 'open-clip-files';
}

/** Which files of a hub repo this family's checkpoint needs. */
export interface HubFiles {
  /**
   * The file whose presence in a repo listing (names only; nothing is downloaded yet) says the repo holds this
   * family's checkpoint. Families that share one (config.json) share their lists too: the first in registry order answers.
   */
  marker: string;
  /** Small files (configs, tokenizer) fetched when present. */
  meta: readonly string[];
  /** Weight files, most preferred first: the first one the repo has is fetched. */
  weights: readonly string[];
  /** transformers.js ONNX towers (onnx/vision_model*.onnx, onnx/text_model*.onnx) can stand in for the weights. */
  onnx: boolean;
}

/** A checkpoint as the runtime and trainer use it, whatever its family. */
export interface Checkpoint {
  /** The descriptor's name (families/index.ts: `familyNamed`). */
  family: string;
  path: string;
  projectionDim: number;
  image: TowerSpec;
  text: TowerSpec;
  textInputs: TextInputs;
  /** Names of the outputs holding unnormalized features and (if present) normalized embeddings. */
  outputs: { image: string; imageNormalized?: string; text: string; textNormalized?: string };
  tokenizerDir?: string;
  tokenizerMode: 'hf' | 'openai';
  /** Text rules the reference applies before its tokenizer, outside the tokenizer files (TokenizerOptions.clean). */
  textClean?: (text: string) => string;
  contextLength: number;
  preprocess: PreprocessSpec;
  /** logit_scale as stored (log space). */
  logitScale: number;
  score: ScoreRule;
  /** Added to the logits before a sigmoid score (SigLIP's logit_bias). */
  logitBias?: number;
  /** Tower configs and weights when we build the graphs (training, introspection). */
  config?: ClipConfig;
  weights?: TowerWeights;
}

export interface OpenOptions {
  /** Tokenizer directory for checkpoints that ship none (OpenAI / open_clip). */
  tokenizerDir?: string;
  /** Prefer the transformers.js-style ONNX files in `onnx/` over the weights. */
  format?: 'auto' | 'weights' | 'onnx';
  /** ONNX variant: '' (fp32) or '_quantized', '_fp16', ... as transformers.js names them. */
  onnxVariant?: string;
  /**
   * open_clip_config.json for a bare OpenAI file. Without it the config is read off the tensor shapes with
   * OpenAI's own rule (heads = width / 64), which is right for every released model.
   */
  configPath?: string;
  /** Taiyi: call the BERT tower with the attention mask (the seed's call has none). */
  textMask?: boolean;
}

/** Where a checkpoint is, as detectors see it: cheap facts only (names, config.json), no weights read. */
export interface CheckpointLocation {
  /** The path the user named (a directory or a file). */
  path: string;
  isDir: boolean;
  /** The directory that holds it: `path`, or its parent for a file. */
  dir: string;
  /** The file named, when `path` is one. */
  file?: string;
  /** A file of `dir` exists (follows links). */
  has(name: string): boolean;
  /** `dir`/config.json, parsed once; undefined when there is none. */
  config(): Json | undefined;
  opts: OpenOptions;
}

/** What a descriptor's `open` may call back into: opening another checkpoint (Taiyi pairs two). */
export interface OpenContext {
  openCheckpoint(path: string, opts: OpenOptions): Checkpoint;
}

/** What the text tower pools; the tower config carries the choice, the descriptor names it (docs, `clip models`). */
export type TextPooling = 'eot' | 'argmax' | 'cls' | 'mean' | 'last' | 'classifier';
/** What the image tower pools: the class token, or an attention-pool head (ModifiedResNet, SigLIP's MAP head). */
export type ImagePooling = 'class-token' | 'attention-pool';

export interface FamilyDescriptor {
  /** Stable name: `Checkpoint.family`, messages, the registry key. */
  readonly name: string;
  /** One line for messages and docs: what its checkpoints look like. */
  readonly summary: string;
  /** Whether `loc` holds this family's checkpoint. The registry asks in its order; the first yes wins. */
  detect(loc: CheckpointLocation): boolean;
  /** config.json (HF layout) of this family, by its content; lets the ONNX family reuse the config parser. */
  matchesConfig?(json: Json): boolean;
  /** The family's config file -> tower configs, every value range-checked (config-fields.ts); errors name `origin`. */
  parseConfig(json: Json, origin: string): ClipConfig | object;
  /** Checkpoint tensor names -> canonical tower names (undefined: this family runs ONNX files, no weights). */
  weights?(src: TensorSource): TowerWeights;
  /** Load a detected checkpoint: config, weights through the key map, towers, tokenizer, preprocessing. */
  open(loc: CheckpointLocation, ctx: OpenContext): Checkpoint;
  /** Which towers it builds (graph kinds) and what they pool. */
  readonly towers: { image: readonly string[]; text: readonly string[]; pooling: { image: readonly ImagePooling[]; text: readonly TextPooling[] } };
  /**
   * Tokenizer: 'hf' = the directory's tokenizer.json semantics (BPE, WordPiece, ...); 'openai' = OpenAI's
   * SimpleTokenizer. `contextLength` when the family fixes it regardless of its config (Chinese-CLIP: 52).
   */
  readonly tokenizer: {
    mode: 'hf' | 'openai';
    contextLength?: number;
    /** A directory with spiece.model and no tokenizer.json: the family's text rules around the pieces, as a tokenizer.json. */
    sentencepiece?: SentencePieceRules;
    /** The family's text rules over a shipped tokenizer.json that does not carry them all (SigLIP 2's lower-casing). */
    tokenizerJson?: TokenizerJsonRules;
  };
  readonly score: ScoreRule;
  /** Absent: not trainable. */
  readonly train?: TrainDefaults;
  /** Absent: not loaded from the hub by itself (Taiyi's pairing file names local directories). */
  readonly hub?: HubFiles;
}

// ---- Parts the descriptors share ----

/**
 * A checkpoint that needs small files of another hub repo before it opens (open_clip's Hugging Face text
 * tower: the named model's config.json and tokenizer.json). The runtime fetches `files` of `repo` into the hub
 * cache and opens again with `tokenizerDir` there; anything else shows `message`, which says where to put them.
 */
export class MissingHubFiles extends Error {
  constructor(readonly repo: string, readonly files: readonly string[], readonly modelDir: string, message: string) {
    super(message);
    this.name = 'MissingHubFiles';
  }
}

export const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711];

/** A config file (config.json, open_clip_config.json, clip-pair.json, ...) is a few KiB. */
const MAX_CONFIG_BYTES = 16 * 2 ** 20;

/** A checkpoint's JSON config file, bounded in size and required to be an object; errors name the file. */
export function readJson(path: string): Record<string, any> {
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

export function findFile(dir: string, names: readonly string[]): string | undefined {
  return names.map((n) => join(dir, n)).find((p) => existsSync(p));
}

export function requireFile(dir: string, names: readonly string[], what: string): string {
  const p = findFile(dir, names);
  if (!p) throw new Error(`checkpoint ${dir} is missing its ${what} (looked for ${names.join(', ')})`);
  return p;
}

/** Weight file names in order of preference, each followed by its shard index (`model.safetensors.index.json`). */
export const withShards = (names: readonly string[]): string[] => names.flatMap((n) => [n, shardIndexName(n)]);

export function openWeights(path: string): TensorSource {
  if (path.endsWith('.safetensors')) return new SafetensorsFile(path);
  if (isShardIndex(path)) return new ShardedSource(path);
  // torch.save zips and TorchScript archives, through the allowlisting unpickler.
  if (/\.(bin|pt|pth|ckpt)$/.test(path)) return loadTorchCheckpoint(path);
  throw new Error(`${path}: unsupported weight file format (expected .safetensors, .bin, .pt, .pth or a shard .index.json)`);
}

/**
 * An HF-layout checkpoint (config.json beside model.safetensors / pytorch_model.bin or their shard index): the
 * config parsed, the weights mapped and checked by `read` (which also reads what the family needs of them, e.g.
 * logit_scale), and the files a built tower depends on. A weight file refused on the way is closed.
 */
export function openHfLayout<C, T>(
  loc: CheckpointLocation, weightNames: readonly string[], parse: (json: Record<string, any>, origin: string) => C,
  mapWeights: (src: TensorSource) => TowerWeights, read: (w: TowerWeights, config: C) => T,
): { config: C; w: TowerWeights; files: string[] } & T {
  const cfgPath = join(loc.dir, 'config.json');
  const config = parse(loc.config()!, cfgPath);
  const weightsPath = loc.file ?? requireFile(loc.dir, withShards(weightNames), 'weights');
  const src = openWeights(weightsPath);
  return closingOnError(src, () => {
    const w = mapWeights(src);
    return { config, w, files: [...weightFilesOf(src, weightsPath), cfgPath], ...read(w, config) };
  });
}

/** Run `fn` on an open weight file; a file refused by it is closed, not leaked (a server may retry loads). */
export function closingOnError<T>(src: TensorSource, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    src.close?.();
    throw e;
  }
}

/**
 * logit_scale as stored (log space). exp() of it multiplies every similarity: past ±100 the scores are
 * infinities (CLIP clamps it at ln 100 = 4.6 when training).
 */
export function logitScaleOf(w: TowerWeights, fallback: number): number {
  if (!w.has('logit_scale')) return fallback;
  return checkLogitScale(w.get('logit_scale').data[0]!, `${w.origin}: tensor "${w.keys('logit_scale')[0]}"`);
}

export function checkLogitScale(v: number, what: string): number {
  if (!(Math.abs(v) <= 100)) throw new Error(`${what} must be a number from -100 to 100 (log space), got ${v}`);
  return v;
}

export const tokenizerIn = (d: string, opts: OpenOptions, files: readonly string[] = ['tokenizer.json']): string | undefined =>
  opts.tokenizerDir ?? (findFile(d, files) ? d : undefined);

/**
 * HF image processor settings from preprocessor_config.json. Keys it lacks take the family's processor
 * defaults (`familyDefaults`, e.g. SigLIP's resize to the full size without a crop), then CLIPImageProcessor's.
 */
export function hfPreprocess(dir: string, size: number, familyDefaults?: Record<string, unknown>): PreprocessSpec {
  const ppPath = join(dir, 'preprocessor_config.json');
  const present = existsSync(ppPath);
  if (!present && !familyDefaults) return { kind: 'hf', size, mean: OPENAI_MEAN, std: OPENAI_STD };
  // One rule for a preprocessor's values (image/pipeline-config.ts), applied now so a bad file fails at load.
  const file = present ? readJson(ppPath) : {};
  const json = familyDefaults ? { ...familyDefaults, ...file } : file;
  const p = pipelineFromPreprocessorConfig(json, undefined, present ? ppPath : `${dir} (no preprocessor_config.json: the family's defaults)`);
  return { kind: 'hf', hfConfig: json, size, mean: [...p.mean], std: [...p.std] };
}

export const built = (build: (opts: BuildOptions) => Graph, files: (string | undefined)[], config: unknown): TowerSpec => ({
  kind: 'built', build, source: { files: files.filter((f): f is string => !!f).map((f) => resolve(f)), config },
});

/** Output names of the towers we build. */
export const OURS = { image: 'image_features', imageNormalized: 'image_embeds', text: 'text_features', textNormalized: 'text_embeds' };

export function imageTower(cfg: ClipConfig, w: TowerWeights, files: (string | undefined)[]): TowerSpec {
  const build = (o: BuildOptions) => (cfg.vision.kind === 'resnet' ? buildResNetImageGraph(cfg, w, o) : buildImageGraph(cfg, w, o));
  return built(build, files, { vision: cfg.vision, projectionDim: cfg.projectionDim });
}

export const textSource = (cfg: ClipConfig) => ({ text: cfg.text, projectionDim: cfg.projectionDim });

export const SOFTMAX: ScoreRule = { kind: 'softmax' };
