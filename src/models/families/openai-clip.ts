// The OpenAI / open_clip family: open_clip's config file, OpenAI state-dict key names -> canonical tower names
// (open_clip hub layout, a bare OpenAI .pt (TorchScript) or state dict), and its descriptor.
// OpenAI stores projections as [in, out] (x @ proj); the key plan flags them and the graph uses them as stored.
import { dirname, join, resolve } from 'node:path';
import type { Activation } from '../../graph/ops.js';
import type { TensorSource } from '../../io/tensor.js';
import { htmlUnescape } from '../../text/html-unescape.js';
import { openaiPipeline, type RGBTriple } from '../../image/pipeline-config.js';
import { weightFilesOf } from '../../io/sharded.js';
import { buildTextGraph } from '../clip-graph.js';
import { checkHeads, checkInt, CONFIG_LIMITS, Fields } from '../config-fields.js';
import { hfBertConfig, type BertConfig, type ClipConfig, type ClipTextConfig, type ResNetConfig, type VitConfig } from '../config.js';
import { buildBertTextGraph } from '../extra-graphs.js';
import {
  BERT_MASKED_INPUTS, built, CLIP_TEXT_INPUTS, closingOnError, findFile, imageTower, logitScaleOf, MissingHubFiles, openWeights, OURS, readJson,
  requireFile, SOFTMAX, withShards, textSource, tokenizerIn, type Checkpoint, type CheckpointLocation, type FamilyDescriptor,
} from '../family.js';
import { openaiConfigFromStateDict } from '../openai-state-dict.js';
import { checkWeightShapes } from '../shapes.js';
import { TowerWeights } from '../weights.js';
import { bertKeys } from './chinese-clip.js';

type Json = Record<string, any>;

const BLOCK = /^(visual|text)\.blocks\.(\d+)\.(.+)$/;
const BLOCK_PARTS: Record<string, string> = {
  'ln1.weight': 'ln_1.weight', 'ln1.bias': 'ln_1.bias',
  'ln2.weight': 'ln_2.weight', 'ln2.bias': 'ln_2.bias',
  'attn.qkv.weight': 'attn.in_proj_weight', 'attn.qkv.bias': 'attn.in_proj_bias',
  'attn.out.weight': 'attn.out_proj.weight', 'attn.out.bias': 'attn.out_proj.bias',
  'mlp.fc1.weight': 'mlp.c_fc.weight', 'mlp.fc1.bias': 'mlp.c_fc.bias',
  'mlp.fc2.weight': 'mlp.c_proj.weight', 'mlp.fc2.bias': 'mlp.c_proj.bias',
};
const DIRECT: Record<string, string> = {
  'visual.patch.weight': 'visual.conv1.weight',
  'visual.cls': 'visual.class_embedding',
  'visual.pos': 'visual.positional_embedding',
  'visual.ln_pre.weight': 'visual.ln_pre.weight',
  'visual.ln_pre.bias': 'visual.ln_pre.bias',
  'visual.ln_post.weight': 'visual.ln_post.weight',
  'visual.ln_post.bias': 'visual.ln_post.bias',
  'text.tok': 'token_embedding.weight',
  'text.pos': 'positional_embedding',
  'text.ln_final.weight': 'ln_final.weight',
  'text.ln_final.bias': 'ln_final.bias',
  logit_scale: 'logit_scale',
  // A bias CLIP's patch conv does not have: named only so that a checkpoint holding one is refused (shapes.ts).
  'visual.patch.bias': 'visual.conv1.bias',
};
const TRANSPOSED: Record<string, string> = { 'visual.proj': 'visual.proj', 'text.proj': 'text_projection' };

export function openaiClipKey(canonical: string): string | undefined {
  if (DIRECT[canonical]) return DIRECT[canonical];
  const m = BLOCK.exec(canonical);
  if (!m) return undefined;
  const [, tower, i, part] = m;
  const prefix = tower === 'visual' ? `visual.transformer.resblocks.${i}.` : `transformer.resblocks.${i}.`;
  return BLOCK_PARTS[part!] ? prefix + BLOCK_PARTS[part!] : undefined;
}

/** open_clip's HFTextEncoder: the HF model under `text.transformer.`, its projection under `text.proj.`. */
const HF_PROJ_KEYS: Record<string, string> = {
  'text.proj': 'text.proj.weight', 'text.proj.bias': 'text.proj.bias',
  'text.proj.fc1': 'text.proj.0.weight', 'text.proj.fc2': 'text.proj.2.weight',
  'text.proj.fc1.bias': 'text.proj.0.bias', 'text.proj.fc2.bias': 'text.proj.2.bias',
};

export function openaiClipWeights(src: TensorSource, prefix = '', hfText = false): TowerWeights {
  return TowerWeights.fromSource(src, (name) => {
    if (hfText) {
      const bert = bertKeys(name);
      if (bert) return { keys: bert.map((k) => `${prefix}text.transformer.${k}`) };
      if (HF_PROJ_KEYS[name]) return { keys: [prefix + HF_PROJ_KEYS[name]] };
      if (name.startsWith('text.')) return undefined; // no CLIP text tower here
    }
    if (TRANSPOSED[name]) return { keys: [prefix + TRANSPOSED[name]], transpose: true };
    // The canonical name is itself the key for the ResNet tower's own weights (visual.layer1...).
    return { keys: [prefix + (openaiClipKey(name) ?? name)] };
  });
}

/** ln(1 / 0.07): CLIP's initial temperature; the checkpoint's own logit_scale is what inference uses. */
const LOGIT_SCALE_INIT = Math.log(1 / 0.07);

/** A ratio such as mlp_ratio: positive and finite, and the width it gives within bounds. */
function mlpWidth(f: Fields, width: number): number {
  const ratio = f.num('mlp_ratio', 4, { gt: 0 });
  // open_clip sizes the MLP as int(width * mlp_ratio): ViT-g-14's 1408 * 4.3637 = 6144.09 -> 6144.
  const w = Math.floor(width * ratio);
  if (w < 1 || w > CONFIG_LIMITS.mlpWidth) f.fail('mlp_ratio', `${ratio} gives an MLP width of ${w} (must be 1 to ${CONFIG_LIMITS.mlpWidth})`);
  return w;
}

/** open_clip options that change a tower's structure, with the value of the plain CLIP tower (if any). */
const UNSUPPORTED_OPEN_CLIP: ['vision_cfg' | 'text_cfg', string, unknown][] = [
  ['vision_cfg', 'ls_init_value', undefined], ['vision_cfg', 'attentional_pool', undefined],
  ['vision_cfg', 'pool_type', 'tok'], ['vision_cfg', 'final_ln_after_pool', undefined],
  ['text_cfg', 'ls_init_value', undefined], ['text_cfg', 'embed_cls', undefined], ['text_cfg', 'proj_bias', undefined],
  ['text_cfg', 'pool_type', 'argmax'], ['text_cfg', 'final_ln_after_pool', undefined],
];

/**
 * open_clip's `open_clip_config.json` (the whole file, or its `model_cfg`). Defaults are open_clip's
 * CLIPVisionCfg / CLIPTextCfg defaults; head counts follow OpenAI: width // 64 for a ViT, width * 32 // 64
 * for a ModifiedResNet's attention pool.
 */
export function openClipConfig(json: Json, origin = 'open_clip_config.json'): ClipConfig {
  // Options that change the towers beyond what is read below are refused by name (checkOpenClipModelCfg).
  checkOpenClipModelCfg(json, origin);
  const root = Fields.of(json, origin);
  const m = root.has('model_cfg') ? root.sub('model_cfg') : root;
  if (!m.has('vision_cfg') || !m.has('text_cfg') || !m.has('embed_dim')) throw new Error(`${origin}: expected model_cfg with embed_dim, vision_cfg and text_cfg`);
  const v = m.sub('vision_cfg');
  const t = m.sub('text_cfg');
  if (v.obj.timm_model_name) throw new Error(`${origin}: timm vision towers (${String(v.obj.timm_model_name)}) are not supported`);
  if (t.obj.hf_model_name) throw new Error(`${origin}: text_cfg.hf_model_name names a Hugging Face text tower: its config is read with openClipHfConfig`);
  // Tower variants whose extra weights our towers would silently ignore: refused by name.
  for (const [f, key, plain] of UNSUPPORTED_OPEN_CLIP) {
    const cfg = f === 'vision_cfg' ? v : t;
    const val = cfg.obj[key];
    if (val !== undefined && val !== null && val !== false && val !== plain) cfg.fail(key, `${JSON.stringify(val)} is not supported (a tower variant clip-ts does not build)`);
  }
  const act: Activation = m.obj.quick_gelu ? 'quick_gelu' : 'gelu';
  const embedDim = m.int('embed_dim', undefined, 1, CONFIG_LIMITS.width);
  let imageSize: number;
  if (Array.isArray(v.obj.image_size)) {
    const [h, w] = v.obj.image_size as unknown[];
    const fail = (msg: string): never => v.fail('image_size', msg);
    if (v.obj.image_size.length !== 2) fail(`must be a number or [height, width], got ${JSON.stringify(v.obj.image_size)}`);
    imageSize = checkInt(h, 1, CONFIG_LIMITS.imageSize, fail);
    if (checkInt(w, 1, CONFIG_LIMITS.imageSize, fail) !== imageSize) fail(`${JSON.stringify(v.obj.image_size)} is not square (only square inputs are supported)`);
  } else {
    imageSize = v.int('image_size', 224, 1, CONFIG_LIMITS.imageSize);
  }
  const vWidth = v.int('width', 768, 1, CONFIG_LIMITS.width);
  const headWidth = v.int('head_width', 64, 1, CONFIG_LIMITS.width);
  let vision: ResNetConfig | VitConfig;
  if (Array.isArray(v.obj.layers)) {
    const layers = v.obj.layers as unknown[];
    if (layers.length !== 4) v.fail('layers', `must list the blocks of 4 ResNet stages, got ${JSON.stringify(layers)}`);
    layers.forEach((n, i) => checkInt(n, 1, CONFIG_LIMITS.layers, (msg) => v.fail(`layers[${i}]`, msg)));
    // The stem halves the width; the attention pool works on width * 32 channels over a (size / 32)² grid.
    if (vWidth % 2 !== 0) v.fail('width', `of a ModifiedResNet must be even, got ${vWidth}`);
    if (imageSize % 32 !== 0) v.fail('image_size', `of a ModifiedResNet must be a multiple of 32, got ${imageSize}`);
    checkHeads(v, 'width * 32', vWidth * 32, 'head_width', headWidth);
    vision = { kind: 'resnet', imageSize, layers: layers as number[], width: vWidth, heads: (vWidth * 32) / headWidth, outputDim: embedDim };
  } else {
    checkHeads(v, 'width', vWidth, 'head_width', headWidth);
    vision = {
      kind: 'vit',
      width: vWidth,
      layers: v.int('layers', 12, 1, CONFIG_LIMITS.layers),
      heads: vWidth / headWidth,
      mlpWidth: mlpWidth(v, vWidth),
      act,
      eps: 1e-5,
      imageSize,
      patchSize: v.int('patch_size', 16, 1, imageSize),
    };
  }
  const tWidth = t.int('width', 512, 1, CONFIG_LIMITS.width);
  const heads = t.int('heads', 8, 1, CONFIG_LIMITS.width);
  checkHeads(t, 'width', tWidth, 'heads', heads);
  const vocabSize = t.int('vocab_size', 49408, 1, CONFIG_LIMITS.vocab);
  const text: ClipTextConfig = {
    kind: 'clip-text',
    width: tWidth,
    layers: t.int('layers', 12, 1, CONFIG_LIMITS.layers),
    heads,
    mlpWidth: mlpWidth(t, tWidth),
    act,
    eps: 1e-5,
    vocabSize,
    contextLength: t.int('context_length', 77, 1, CONFIG_LIMITS.positions),
    eosTokenId: Math.min(49407, vocabSize - 1),
    // OpenAI pools at tokens.argmax(): the EOT id is the vocabulary's largest, so that is the first EOT.
    poolAtArgmax: true,
  };
  return { vision, text, projectionDim: embedDim, logitScaleInit: LOGIT_SCALE_INIT };
}

const CONFIG_FILE = 'open_clip_config.json';
/** OpenAI tokenization reads any of these (text/index.ts); without one, runtime/clip-vocab.ts gets CLIP's from the hub. */
const OPENAI_VOCAB_FILES = ['tokenizer.json', 'merges.txt', 'bpe_simple_vocab_16e6.txt.gz', 'bpe_simple_vocab_16e6.txt'];
// In order of preference, for the hub and local directories alike.
const OPEN_CLIP_WEIGHTS = ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin', 'model.safetensors', 'pytorch_model.bin'];

/** A weight file openWeights reads (a bare .onnx is an ONNX export's tower, not ours). */
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt)$/;

/** OpenAI-family weights (open_clip hub layout, or a bare OpenAI .pt / state dict). */
function openaiCheckpoint(path: string, cfgJson: Json | undefined, weightsPath: string, loc: CheckpointLocation, cfgFile?: string): Checkpoint {
  const cfgOrigin = cfgFile ?? join(dirname(weightsPath), CONFIG_FILE);
  if (cfgJson && hfTextModelName(cfgJson, cfgOrigin)) return hfTextCheckpoint(path, cfgJson, weightsPath, loc, cfgOrigin);
  const fileConfig = cfgJson && openClipConfig(cfgJson, cfgOrigin);
  // preprocess_cfg is checked before the weights are opened (at the config's input size).
  const { mean, std } = openClipPreprocess(cfgJson, cfgOrigin, fileConfig?.vision.imageSize ?? 224);
  const src = openWeights(weightsPath);
  const { w, config, logitScale } = closingOnError(src, () => {
    const w = openaiClipWeights(src);
    const config = fileConfig ?? openClipConfig(openaiConfigFromStateDict(src), `${weightsPath} (config read off its tensor shapes)`);
    checkWeightShapes(w, config);
    return { w, config, logitScale: logitScaleOf(w, Math.log(1 / 0.07)) };
  });
  const files = [...weightFilesOf(src, weightsPath), cfgFile];
  return {
    family: 'open-clip', path, projectionDim: config.projectionDim,
    image: imageTower(config, w, files),
    text: built((o) => buildTextGraph(config, w, o), files, textSource(config)),
    textInputs: CLIP_TEXT_INPUTS, outputs: OURS,
    tokenizerDir: tokenizerIn(dirname(weightsPath), loc.opts, OPENAI_VOCAB_FILES),
    tokenizerMode: 'openai',
    contextLength: config.text.contextLength,
    preprocess: { kind: 'openai', size: config.vision.imageSize, mean, std },
    logitScale, score: SOFTMAX,
    config, weights: w,
  };
}

// ---- open_clip with a Hugging Face text tower (text_cfg.hf_model_name: LAION's xlm-roberta-base /
// xlm-roberta-large multilingual releases). open_clip builds that tower from the hub config of the named
// model; the checkpoint ships neither it nor the tokenizer. We read both (config.json, tokenizer.json) from
// --tokenizer DIR, else from the checkpoint's directory, else the runtime fetches them from the hub repo
// `hf_model_name` into the hub cache (MissingHubFiles). The tower is bert-text.ts. ----

/**
 * open_clip's HFTokenizer cleans every text before the Hugging Face tokenizer: basic_clean (ftfy.fix_text, then
 * html.unescape twice, strip) and whitespace_clean (runs of whitespace to one space). ftfy is not ported (as for
 * OpenAI's SimpleTokenizer, text/openai-bpe.ts); the rest is.
 */
export const openClipHfClean = (text: string): string => htmlUnescape(htmlUnescape(text)).replace(/\s+/gu, ' ').trim();

/** The files of the `hf_model_name` repo the tower needs: its architecture and its tokenizer. */
export const HF_TEXT_FILES = ['config.json', 'tokenizer.json'] as const;

/** HF model_type -> position ids: BERT's 0..T-1, or RoBERTa's count of real tokens after padding_idx. */
const HF_TEXT_MODELS: Record<string, 'bert' | 'roberta'> = { bert: 'bert', roberta: 'roberta', 'xlm-roberta': 'roberta' };
/** open_clip's hf_pooler_type -> the tower's pooling (open_clip's cls_pooler reads the HF pooler: not built). */
const HF_POOLERS: Record<string, BertConfig['pooling']> = { mean_pooler: 'mean-projection', cls_last_hidden_state_pooler: 'cls-projection' };
const HF_PROJ_TYPES = ['linear', 'mlp'] as const;

const modelCfgOf = (json: Json): Json => (json?.model_cfg && typeof json.model_cfg === 'object' ? json.model_cfg : json);

/** text_cfg.hf_model_name when it is set. */
export function hfTextModelName(json: Json, origin = CONFIG_FILE): string | undefined {
  const name = modelCfgOf(json)?.text_cfg?.hf_model_name;
  if (name === undefined || name === null || name === '' || name === false) return undefined;
  // A hub repo id: it goes into messages and, when the files are fetched, into hub paths (checked there too).
  if (typeof name !== 'string' || name.length > 96) throw new Error(`${origin}: model_cfg.text_cfg.hf_model_name must be a hub model id (org/name), got ${JSON.stringify(name).slice(0, 60)}`);
  return name;
}

/**
 * open_clip_config.json with an HF text tower + the HF model's config.json -> tower configs, and the text
 * context length (text_cfg.context_length, as open_clip's HFTokenizer pads and truncates).
 */
export function openClipHfConfig(json: Json, origin: string, hf: Json, hfOrigin: string): { config: ClipConfig; contextLength: number } {
  checkOpenClipModelCfg(json, origin);
  const root = Fields.of(json, origin);
  const tcfg = (root.has('model_cfg') ? root.sub('model_cfg') : root).sub('text_cfg');
  // The image tower and the refusals are the plain config's; its text half is replaced below.
  const { text_cfg: _text, custom_text: _custom, ...rest } = modelCfgOf(json);
  const base = openClipConfig({ ...json, model_cfg: { ...rest, text_cfg: {} } }, origin);
  const h = Fields.of(hf, hfOrigin);
  const kind = HF_TEXT_MODELS[String(hf.model_type)];
  if (!kind) h.fail('model_type', `${JSON.stringify(hf.model_type)} is not a text model clip-ts builds (supported: ${Object.keys(HF_TEXT_MODELS).join(', ')})`);
  if ((hf.position_embedding_type ?? 'absolute') !== 'absolute') h.fail('position_embedding_type', `${JSON.stringify(hf.position_embedding_type)} is not supported (absolute only)`);
  const poolerName = tcfg.obj.hf_pooler_type ?? 'mean_pooler';
  const pooling = HF_POOLERS[String(poolerName)];
  if (!pooling) tcfg.fail('hf_pooler_type', `${JSON.stringify(poolerName)} is not supported (supported: ${Object.keys(HF_POOLERS).join(', ')})`);
  const projName = tcfg.obj.hf_proj_type ?? 'mlp';
  if (!(HF_PROJ_TYPES as readonly unknown[]).includes(projName)) tcfg.fail('hf_proj_type', `${JSON.stringify(projName)} is not supported (supported: ${HF_PROJ_TYPES.join(', ')})`);
  const bert: BertConfig = { ...hfBertConfig(h, pooling), projection: projName as 'linear' | 'mlp' };
  let room = bert.contextLength;
  if (kind === 'roberta') {
    bert.positionOffset = h.int('pad_token_id', 1, 0, bert.contextLength - 2);
    room = bert.contextLength - bert.positionOffset - 1;
  }
  const contextLength = tcfg.int('context_length', 77, 3, CONFIG_LIMITS.positions);
  if (contextLength > room) tcfg.fail('context_length', `${contextLength} needs more positions than ${hfOrigin} has (max_position_embeddings allows ${room})`);
  return { config: { ...base, text: bert }, contextLength };
}

/** Where the HF text tower's files are: --tokenizer DIR, else the checkpoint's directory. */
function hfTextDir(loc: CheckpointLocation, modelDir: string): string | undefined {
  return [loc.opts.tokenizerDir, modelDir].find((d): d is string => !!d && !!findFile(d, ['config.json']));
}

function hfTextCheckpoint(path: string, cfgJson: Json, weightsPath: string, loc: CheckpointLocation, cfgOrigin: string): Checkpoint {
  const name = hfTextModelName(cfgJson, cfgOrigin)!;
  const modelDir = dirname(weightsPath);
  const textDir = hfTextDir(loc, modelDir);
  if (!textDir) {
    const where = HF_TEXT_FILES.map((f) => `https://huggingface.co/${name}/resolve/main/${f}`).join(' and ');
    throw new MissingHubFiles(name, HF_TEXT_FILES, modelDir,
      `${path}: its text tower is the Hugging Face model "${name}" (${cfgOrigin}: model_cfg.text_cfg.hf_model_name), whose ` +
      `${HF_TEXT_FILES.join(' and ')} the checkpoint does not ship. Fix: load it online once (they are fetched into the hub cache), ` +
      `or download ${where} into ${resolve(modelDir)}, or pass --tokenizer DIR (a directory holding both)`);
  }
  const hfPath = join(textDir, 'config.json');
  const { config, contextLength } = openClipHfConfig(cfgJson, cfgOrigin, readJson(hfPath), hfPath);
  const { mean, std } = openClipPreprocess(cfgJson, cfgOrigin, config.vision.imageSize);
  const src = openWeights(weightsPath);
  const { w, logitScale } = closingOnError(src, () => {
    const w = openaiClipWeights(src, '', true);
    checkWeightShapes(w, config);
    return { w, logitScale: logitScaleOf(w, LOGIT_SCALE_INIT) };
  });
  const files = [...weightFilesOf(src, weightsPath), cfgOrigin, hfPath];
  return {
    family: 'open-clip', path, projectionDim: config.projectionDim,
    image: imageTower(config, w, files),
    text: built((o) => buildBertTextGraph(config, w, { ...o, masked: true }), files, { ...textSource(config), masked: true }),
    textInputs: BERT_MASKED_INPUTS, outputs: OURS,
    tokenizerDir: findFile(textDir, ['tokenizer.json']) ? textDir : undefined,
    tokenizerMode: 'hf', textClean: openClipHfClean,
    contextLength,
    preprocess: { kind: 'openai', size: config.vision.imageSize, mean, std },
    logitScale, score: SOFTMAX,
    config, weights: w,
  };
}

/**
 * open_clip hub layout (open_clip_config.json + open_clip_model.safetensors), or a bare OpenAI file (their
 * released TorchScript .pt, or a state dict) with no config.json beside it: the shapes say the config.
 */
export const openClip: FamilyDescriptor = {
  name: 'open-clip',
  summary: 'OpenAI / open_clip: open_clip_config.json + open_clip_model.safetensors, or a bare OpenAI .pt / state dict',
  detect: (loc) => loc.has(CONFIG_FILE) || (!!loc.file && WEIGHT_FILE.test(loc.file) && !loc.has('config.json')),
  parseConfig: (json, origin) => openClipConfig(json, origin),
  weights: (src) => openaiClipWeights(src),
  open(loc) {
    const { path, dir, file } = loc;
    if (loc.has(CONFIG_FILE)) {
      const ocPath = join(dir, CONFIG_FILE);
      const weightsPath = file ?? requireFile(dir, withShards(OPEN_CLIP_WEIGHTS), 'weights');
      return openaiCheckpoint(path, readJson(ocPath), weightsPath, loc, ocPath);
    }
    const src = openWeights(file!);
    const isOpenai = src.has('token_embedding.weight') || src.has('visual.proj') || src.has('visual.attnpool.c_proj.weight');
    src.close?.();
    if (!isOpenai) {
      throw new Error(`${file}: not an OpenAI CLIP state dict, and no config.json beside it to say what it is (put it in its model directory)`);
    }
    const configPath = loc.opts.configPath;
    return openaiCheckpoint(path, configPath ? readJson(configPath) : undefined, file!, loc, configPath);
  },
  towers: { image: ['vit', 'resnet'], text: ['clip-text', 'bert'], pooling: { image: ['class-token', 'attention-pool'], text: ['argmax', 'mean', 'cls'] } },
  tokenizer: { mode: 'openai' },
  score: SOFTMAX,
  train: { loss: 'softmax', saveAs: 'open-clip-files' },
  hub: { marker: CONFIG_FILE, meta: [CONFIG_FILE], weights: OPEN_CLIP_WEIGHTS, onnx: false },
};

// ---- open_clip's hub layout (open_clip_config.json as the LAION releases ship it): what of its model_cfg and
// preprocess_cfg we build, and a clear refusal, naming the field, of every option that would change the towers
// in a way we do not build. ----

/** Why an option is refused: what it would need that our towers do not have. */
const REFUSED_MODEL_CFG: [string, string][] = [
  ['custom_text', 'a CustomTextCLIP (text tower under "text.", e.g. a Hugging Face text model)'],
  ['init_logit_bias', 'a sigmoid-loss (SigLIP-style) model'],
  ['multimodal_cfg', 'a CoCa captioning decoder'],
];
const REFUSED_TOWER_CFG: [string, string][] = [
  ['timm_model_name', 'a timm image tower'],
  ['norm_kwargs', 'LayerNorm options other than eps 1e-5'],
  ['act_kwargs', 'activation options'],
  ['no_ln_pre', 'an image tower without ln_pre'],
  ['no_causal_mask', 'a text tower without the causal mask'],
  ['tokenizer_kwargs', 'tokenizer options (e.g. another text cleaning)'],
];

const present = (v: unknown) => v !== undefined && v !== null && v !== false && !(typeof v === 'object' && Object.keys(v as object).length === 0);

/**
 * Refuse model_cfg options whose weights or computation our towers do not reproduce, naming the field
 * (`model_cfg.text_cfg.hf_model_name "xlm-roberta-base" is not supported: ...`). Called before the tower
 * config is read.
 */
export function checkOpenClipModelCfg(json: Json, origin: string): void {
  const root = Fields.of(json, origin);
  const m = root.has('model_cfg') ? root.sub('model_cfg') : root;
  const refuse = (f: Fields, key: string, why: string) => {
    if (present(f.obj[key])) f.fail(key, `${JSON.stringify(f.obj[key]).slice(0, 60)} is not supported: it makes ${why}, which clip-ts does not build`);
  };
  // open_clip sets custom_text itself for an HF text tower (its weights then sit under "text.", as read here).
  const hfText = m.has('text_cfg') && present(m.sub('text_cfg').obj.hf_model_name);
  for (const [key, why] of REFUSED_MODEL_CFG) if (!(hfText && key === 'custom_text')) refuse(m, key, why);
  for (const tower of ['vision_cfg', 'text_cfg']) {
    if (!m.has(tower)) continue;
    const t = m.sub(tower);
    for (const [key, why] of REFUSED_TOWER_CFG) refuse(t, key, why);
    if (tower === 'vision_cfg') refuse(t, 'hf_model_name', 'a Hugging Face image tower');
    const pos = t.obj.pos_embed_type;
    if (pos !== undefined && pos !== null && pos !== 'learnable') refuse(t, 'pos_embed_type', 'fixed (non-learnable) position embeddings');
  }
}

/** open_clip's image_transform options we reproduce: its defaults (torchvision Resize on the shortest edge, bicubic). */
const PREPROCESS_SUPPORTED: Record<string, string[]> = {
  interpolation: ['bicubic'],
  resize_mode: ['shortest'],
};

/**
 * preprocess_cfg -> mean and std for OpenAI's pipeline at `size`, the tower's image_size. Options that
 * change the resize (interpolation, resize_mode) are accepted only at the values that pipeline implements.
 */
export function openClipPreprocess(json: Json | undefined, origin: string, size: number): { mean: number[]; std: number[] } {
  const pp = json?.preprocess_cfg ?? {};
  const where = `${origin}: preprocess_cfg`;
  if (!pp || typeof pp !== 'object' || Array.isArray(pp)) throw new Error(`${where} must be an object`);
  for (const [key, ok] of Object.entries(PREPROCESS_SUPPORTED)) {
    const v = pp[key];
    if (v !== undefined && v !== null && !ok.includes(v)) {
      throw new Error(`${where}.${key} ${JSON.stringify(v)?.slice(0, 40)} is not supported (supported: ${ok.join(', ')})`);
    }
  }
  // One rule for the values (image/pipelines.ts), applied now so a bad file fails at load.
  const p = openaiPipeline(size, pp.mean as RGBTriple | undefined, pp.std as RGBTriple | undefined, where);
  return { mean: [...p.mean], std: [...p.std] };
}
