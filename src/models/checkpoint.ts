// Recognize a checkpoint directory (or file) and describe it: family, how to build each tower, how its
// texts are tokenized and images preprocessed. Graphs are only built when a tower is first used.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SafetensorsFile } from '../io/safetensors.js';
import { loadTorchCheckpoint } from '../io/torch.js';
import { toFloat32, type TensorSource } from '../io/tensor.js';
import type { Graph } from '../graph/graph.js';
import { buildImageGraph, buildTextGraph, type BuildOptions } from './clip-graph.js';
import { clipConfigFromHF, type ClipConfig } from './config.js';
import { buildBertTextGraph, buildResNetImageGraph } from './extra-graphs.js';
import { chineseClipWeights } from './families/chinese-clip.js';
import { hfClipWeights } from './families/hf-clip.js';
import { openaiClipWeights } from './families/openai-clip.js';
import { taiyiWeights } from './families/taiyi.js';
import { isSiglipConfig, logitBiasOf, siglipConfig, siglipPreprocessDefaults, siglipWeights } from './families/siglip.js';
import { buildSiglipImageGraph, buildSiglipTextGraph } from './siglip.js';
import { Fields } from './config-fields.js';
import { openaiPipeline, pipelineFromPreprocessorConfig } from '../image/pipelines.js';
import { CHINESE_CLIP_CONTEXT, chineseClipConfig, openClipConfig, taiyiBertConfig } from './family-configs.js';
import { checkWeightShapes } from './shapes.js';
import { openaiConfigFromStateDict } from './openai-state-dict.js';
import type { TowerWeights } from './weights.js';

export type Family = 'hf-clip' | 'open-clip' | 'chinese-clip' | 'taiyi' | 'onnx' | 'siglip';

export interface PreprocessSpec {
  /** 'hf' = CLIPImageProcessor from preprocessor_config.json; 'openai' = torchvision Resize+CenterCrop. */
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

/**
 * How the text tower takes its inputs: 'clip' = input_ids + pool_index (our causal tower, pooled at EOT);
 * 'bert' = input_ids (+ attention_mask when masked); 'onnx-hf' = input_ids + attention_mask (HF exports).
 */
export type TextInputs = 'clip' | 'bert' | 'bert-masked' | 'onnx-hf';

export interface Checkpoint {
  family: Family;
  path: string;
  projectionDim: number;
  image: TowerSpec;
  text: TowerSpec;
  textInputs: TextInputs;
  /** Names of the outputs holding unnormalized features and (if present) normalized embeddings. */
  outputs: { image: string; imageNormalized?: string; text: string; textNormalized?: string };
  tokenizerDir?: string;
  tokenizerMode: 'hf' | 'openai';
  contextLength: number;
  /** 'longest' when the text tower takes any length (ours); 'max' for exports with a fixed sequence length. */
  textPadding: 'longest' | 'max';
  preprocess: PreprocessSpec;
  /** logit_scale as stored (log space). */
  logitScale: number;
  /** Added to the scaled similarities (SigLIP's logit_bias); absent for CLIP. */
  logitBias?: number;
  /** How class scores are formed: a softmax over the labels (CLIP, default), or one sigmoid per label (SigLIP). */
  scoring?: 'softmax' | 'sigmoid';
  /** Tower configs and weights when we build the graphs (training, introspection). */
  config?: ClipConfig;
  weights?: TowerWeights;
}

export const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711];

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

function readJson(path: string): Record<string, any> {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

function findFile(dir: string, names: string[]): string | undefined {
  return names.map((n) => join(dir, n)).find((p) => existsSync(p));
}

function requireFile(dir: string, names: string[], what: string): string {
  const p = findFile(dir, names);
  if (!p) throw new Error(`checkpoint ${dir} is missing its ${what} (looked for ${names.join(', ')})`);
  return p;
}

export function openWeights(path: string): TensorSource {
  if (path.endsWith('.safetensors')) return new SafetensorsFile(path);
  // torch.save zips and TorchScript archives, through the allowlisting unpickler.
  if (/\.(bin|pt|pth|ckpt)$/.test(path)) return loadTorchCheckpoint(path);
  throw new Error(`${path}: unsupported weight file format (expected .safetensors, .bin, .pt or .pth)`);
}

/** Run `fn` on an open weight file; a file refused by it is closed, not leaked (a server may retry loads). */
function closingOnError<T>(src: TensorSource, fn: () => T): T {
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
function logitScaleOf(w: TowerWeights, fallback: number): number {
  if (!w.has('logit_scale')) return fallback;
  return checkLogitScale(w.get('logit_scale').data[0]!, `${w.origin}: tensor "${w.keys('logit_scale')[0]}"`);
}

function checkLogitScale(v: number, what: string): number {
  if (!(Math.abs(v) <= 100)) throw new Error(`${what} must be a number from -100 to 100 (log space), got ${v}`);
  return v;
}

const tokenizerIn = (d: string, opts: OpenOptions): string | undefined =>
  opts.tokenizerDir ?? (existsSync(join(d, 'tokenizer.json')) ? d : undefined);

/** CLIPImageProcessor settings from preprocessor_config.json (its defaults when there is none). */
function hfPreprocess(dir: string, size: number, defaults?: Record<string, unknown>): PreprocessSpec {
  const ppPath = join(dir, 'preprocessor_config.json');
  const has = existsSync(ppPath);
  if (!has && !defaults) return { kind: 'hf', size, mean: OPENAI_MEAN, std: OPENAI_STD };
  // One rule for a preprocessor's values (image/pipelines.ts), applied now so a bad file fails at load.
  // `defaults`: the family's image processor defaults for keys the file leaves out (CLIPImageProcessor's otherwise).
  const json = { ...defaults, ...(has ? readJson(ppPath) : {}) };
  const p = pipelineFromPreprocessorConfig(json, undefined, ppPath);
  return { kind: 'hf', hfConfig: json, size, mean: [...p.mean], std: [...p.std] };
}

const built = (build: (opts: BuildOptions) => Graph, files: (string | undefined)[], config: unknown): TowerSpec => ({
  kind: 'built', build, source: { files: files.filter((f): f is string => !!f).map((f) => resolve(f)), config },
});
const OURS = { image: 'image_features', imageNormalized: 'image_embeds', text: 'text_features', textNormalized: 'text_embeds' };

function imageTower(cfg: ClipConfig, w: TowerWeights, files: (string | undefined)[]): TowerSpec {
  const build = (o: BuildOptions) => (cfg.vision.kind === 'resnet' ? buildResNetImageGraph(cfg, w, o) : buildImageGraph(cfg, w, o));
  return built(build, files, { vision: cfg.vision, projectionDim: cfg.projectionDim });
}

const textSource = (cfg: ClipConfig) => ({ text: cfg.text, projectionDim: cfg.projectionDim });

/** OpenAI-family weights (open_clip hub layout, or a bare OpenAI .pt / state dict). */
function openaiFamily(path: string, cfgJson: Record<string, any> | undefined, weightsPath: string, opts: OpenOptions, cfgFile?: string): Checkpoint {
  const cfgOrigin = cfgFile ?? join(dirname(weightsPath), 'open_clip_config.json');
  const pp = cfgJson?.preprocess_cfg ?? {};
  const ppOrigin = `${cfgOrigin}: preprocess_cfg`;
  const checked = openaiPipeline(224, pp.mean ?? OPENAI_MEAN, pp.std ?? OPENAI_STD, ppOrigin);
  const [mean, std] = [[...checked.mean], [...checked.std]];
  const fileConfig = cfgJson && openClipConfig(cfgJson, cfgOrigin);
  const src = openWeights(weightsPath);
  const { w, config, logitScale } = closingOnError(src, () => {
    const w = openaiClipWeights(src);
    const config = fileConfig ?? openClipConfig(openaiConfigFromStateDict(src), `${weightsPath} (config read off its tensor shapes)`);
    checkWeightShapes(w, config);
    return { w, config, logitScale: logitScaleOf(w, Math.log(1 / 0.07)) };
  });
  const files = [weightsPath, cfgFile];
  return {
    family: 'open-clip', path, projectionDim: config.projectionDim,
    image: imageTower(config, w, files),
    text: built((o) => buildTextGraph(config, w, o), files, textSource(config)),
    textInputs: 'clip', outputs: OURS, textPadding: 'longest',
    tokenizerDir: tokenizerIn(dirname(weightsPath), opts),
    tokenizerMode: 'openai',
    contextLength: config.text.contextLength,
    preprocess: { kind: 'openai', size: config.vision.imageSize, mean, std },
    logitScale,
    config, weights: w,
  };
}

/** transformers.js layout: onnx/vision_model.onnx (pixel_values -> image_embeds), onnx/text_model.onnx. */
function onnxFamily(dir: string, cfgJson: Record<string, any>, opts: OpenOptions): Checkpoint {
  const variant = opts.onnxVariant ?? '';
  const vision = requireFile(join(dir, 'onnx'), [`vision_model${variant}.onnx`], 'ONNX image tower');
  const text = requireFile(join(dir, 'onnx'), [`text_model${variant}.onnx`], 'ONNX text tower');
  const chinese = cfgJson.model_type === 'chinese_clip';
  const cfgPath = join(dir, 'config.json');
  const config = chinese ? chineseClipConfig(cfgJson, cfgPath) : clipConfigFromHF(cfgJson, cfgPath);
  return {
    family: 'onnx', path: dir, projectionDim: config.projectionDim,
    image: { kind: 'onnx', path: vision }, text: { kind: 'onnx', path: text },
    textInputs: 'onnx-hf', textPadding: 'max',
    outputs: { image: 'image_embeds', text: 'text_embeds' },
    tokenizerDir: tokenizerIn(dir, opts), tokenizerMode: 'hf',
    contextLength: config.text.contextLength,
    preprocess: hfPreprocess(dir, config.vision.imageSize),
    // The exported towers carry no logit_scale; read it from the weights when they are there too.
    logitScale: readLogitScale(dir) ?? config.logitScaleInit,
    config,
  };
}

function readLogitScale(dir: string): number | undefined {
  const p = findFile(dir, ['model.safetensors']);
  if (!p) return undefined;
  const f = new SafetensorsFile(p);
  try {
    if (!f.has('logit_scale')) return undefined;
    const t = f.get('logit_scale');
    if (t.shape.some((d) => d !== 1)) throw new Error(`${p}: tensor "logit_scale" has shape [${t.shape.join(', ')}], expected []`);
    return checkLogitScale(toFloat32(t)[0]!, `${p}: tensor "logit_scale"`);
  } finally {
    f.close();
  }
}

/**
 * Taiyi pairing file (`clip-pair.json`): a BERT classifier as the text tower and another CLIP checkpoint's
 * image tower and logit_scale. {"text": "<dir>", "image": "<dir>", "attention_mask": false}
 */
function pairFamily(file: string, opts: OpenOptions): Checkpoint {
  const spec = readJson(file);
  if (typeof spec.text !== 'string' || typeof spec.image !== 'string') throw new Error(`${file}: a pairing file needs "text" and "image" directories`);
  const base = dirname(file);
  const textDir = resolve(base, spec.text);
  const image = openCheckpoint(resolve(base, spec.image), { ...opts, tokenizerDir: undefined });
  const tcfgPath = requireFile(textDir, ['config.json'], 'config.json');
  const tcfg = taiyiBertConfig(readJson(tcfgPath), join(textDir, 'config.json'));
  const weightsPath = requireFile(textDir, ['model.safetensors', 'pytorch_model.bin'], 'weights');
  const pair = Fields.of(spec, file);
  const contextLength = pair.int('context_length', tcfg.contextLength, 1, tcfg.contextLength);
  if (tcfg.numLabels !== image.projectionDim) {
    throw new Error(`${file}: text features have ${tcfg.numLabels} dimensions but the image tower gives ${image.projectionDim}`);
  }
  const src = openWeights(weightsPath);
  const w = closingOnError(src, () => {
    const w = taiyiWeights(src);
    checkWeightShapes(w, { text: tcfg, projectionDim: tcfg.numLabels, numLabels: tcfg.numLabels });
    return w;
  });
  const masked = opts.textMask ?? spec.attention_mask === true;
  return {
    ...image,
    family: 'taiyi', path: file,
    text: built((o) => buildBertTextGraph(tcfg, w, { ...o, masked }), [weightsPath, tcfgPath], { bert: tcfg, masked }),
    textInputs: masked ? 'bert-masked' : 'bert', textPadding: 'longest',
    tokenizerDir: tokenizerIn(textDir, opts), tokenizerMode: 'hf',
    // Taiyi's seed call pads to the longest text and keeps BERT's 512 positions.
    contextLength,
  };
}

export function openCheckpoint(path: string, opts: OpenOptions = {}): Checkpoint {
  if (!existsSync(path)) throw new Error(`model path ${path} does not exist`);
  const isDir = statSync(path).isDirectory();
  if (!isDir && path.endsWith('.json')) return pairFamily(path, opts);
  // The `onnx/` folder (or a file in it) of a transformers.js-layout directory.
  const onnxParent = isDir && basename(path) === 'onnx' ? dirname(path) : !isDir && path.endsWith('.onnx') ? dirname(dirname(path)) : undefined;
  if (onnxParent && existsSync(join(onnxParent, 'config.json'))) {
    const variant = !isDir ? /_(quantized|fp16|int8|uint8|q4|bnb4|q4f16)\.onnx$/.exec(path)?.[0].replace('.onnx', '') : undefined;
    return onnxFamily(onnxParent, readJson(join(onnxParent, 'config.json')), { ...opts, onnxVariant: opts.onnxVariant ?? variant });
  }
  if (isDir && existsSync(join(path, 'clip-pair.json'))) return pairFamily(join(path, 'clip-pair.json'), opts);
  const dir = isDir ? path : dirname(path);
  const file = isDir ? undefined : path;

  const ocPath = join(dir, 'open_clip_config.json');
  if (existsSync(ocPath)) {
    const weightsPath = file ?? requireFile(dir, ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin', 'model.safetensors'], 'weights');
    return openaiFamily(path, readJson(ocPath), weightsPath, opts, ocPath);
  }
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) {
    // A bare OpenAI checkpoint (their released TorchScript .pt, or a state dict): the shapes say the config.
    if (file) {
      const src = openWeights(file);
      const isOpenai = src.has('token_embedding.weight') || src.has('visual.proj') || src.has('visual.attnpool.c_proj.weight');
      src.close?.();
      if (!isOpenai) {
        throw new Error(`${file}: not an OpenAI CLIP state dict, and no config.json beside it to say what it is (put it in its model directory)`);
      }
      return openaiFamily(path, opts.configPath ? readJson(opts.configPath) : undefined, file, opts, opts.configPath);
    }
    throw new Error(`${path}: not a recognized checkpoint (no config.json, open_clip_config.json or clip-pair.json)`);
  }
  const cfgJson = readJson(cfgPath);
  const weightNames = ['model.safetensors', 'pytorch_model.bin'];
  const hasWeights = !!file || !!findFile(dir, weightNames);
  const wantOnnx = opts.format === 'onnx' || (opts.format !== 'weights' && !hasWeights && existsSync(join(dir, 'onnx')));
  if (wantOnnx) return onnxFamily(dir, cfgJson, opts);

  if (cfgJson.model_type === 'clip' || cfgJson.text_config?.model_type === 'clip_text_model') {
    const config = clipConfigFromHF(cfgJson, cfgPath);
    const weightsPath = file ?? requireFile(dir, weightNames, 'weights');
    const src = openWeights(weightsPath);
    const { w, logitScale } = closingOnError(src, () => {
      const w = hfClipWeights(src);
      checkWeightShapes(w, config);
      return { w, logitScale: logitScaleOf(w, config.logitScaleInit) };
    });
    const files = [weightsPath, cfgPath];
    return {
      family: 'hf-clip', path, projectionDim: config.projectionDim,
      image: imageTower(config, w, files),
      text: built((o) => buildTextGraph(config, w, o), files, textSource(config)),
      textInputs: 'clip', outputs: OURS, textPadding: 'longest',
      tokenizerDir: tokenizerIn(dir, opts), tokenizerMode: 'hf',
      contextLength: config.text.contextLength,
      preprocess: hfPreprocess(dir, config.vision.imageSize),
      logitScale,
      config, weights: w,
    };
  }
  // Family hook (SigLIP; the family's rules are in families/siglip.ts, its towers in siglip.ts).
  if (isSiglipConfig(cfgJson, cfgPath)) {
    const config = siglipConfig(cfgJson, cfgPath);
    const weightsPath = file ?? requireFile(dir, weightNames, 'weights');
    const src = openWeights(weightsPath);
    const { w, logitScale, logitBias } = closingOnError(src, () => {
      const w = siglipWeights(src);
      checkWeightShapes(w, config);
      return { w, logitScale: logitScaleOf(w, config.logitScaleInit), logitBias: logitBiasOf(w) };
    });
    const files = [weightsPath, cfgPath];
    return {
      family: 'siglip', path, projectionDim: config.projectionDim,
      image: built((o) => buildSiglipImageGraph(config.vision, w, o), files, { siglip: config.vision }),
      text: built((o) => buildSiglipTextGraph(config.text, w, o), files, { siglip: config.text }),
      // input_ids only, padded to the full length: the tower pools the last position (no mask, as SiglipModel is called).
      textInputs: 'bert', outputs: OURS, textPadding: 'max',
      // tokenizer.json, or the spiece.model google/siglip-* ship (text/sentencepiece.ts).
      tokenizerDir: opts.tokenizerDir ?? (existsSync(join(dir, 'spiece.model')) ? dir : tokenizerIn(dir, opts)), tokenizerMode: 'hf',
      contextLength: config.text.contextLength,
      preprocess: hfPreprocess(dir, config.vision.imageSize, siglipPreprocessDefaults(config.vision.imageSize)),
      logitScale, logitBias, scoring: 'sigmoid',
      config, weights: w,
    };
  }
  if (cfgJson.model_type === 'chinese_clip') {
    const config = chineseClipConfig(cfgJson, cfgPath);
    const weightsPath = file ?? requireFile(dir, weightNames, 'weights');
    const src = openWeights(weightsPath);
    const { w, logitScale } = closingOnError(src, () => {
      const w = chineseClipWeights(src);
      checkWeightShapes(w, config);
      return { w, logitScale: logitScaleOf(w, config.logitScaleInit) };
    });
    const files = [weightsPath, cfgPath];
    return {
      family: 'chinese-clip', path, projectionDim: config.projectionDim,
      image: imageTower(config, w, files),
      text: built((o) => buildBertTextGraph(config, w, { ...o, masked: true }), files, { ...textSource(config), masked: true }),
      textInputs: 'bert-masked', outputs: OURS, textPadding: 'longest',
      tokenizerDir: tokenizerIn(dir, opts), tokenizerMode: 'hf',
      contextLength: CHINESE_CLIP_CONTEXT,
      preprocess: hfPreprocess(dir, config.vision.imageSize),
      logitScale,
      config, weights: w,
    };
  }
  throw new Error(`${cfgPath}: model_type "${cfgJson.model_type}" is not a supported CLIP family (clip, chinese_clip, siglip; or a clip-pair.json for Taiyi)`);
}
