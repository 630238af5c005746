// The OpenAI / open_clip family: open_clip's config file, OpenAI state-dict key names -> canonical tower names
// (open_clip hub layout, a bare OpenAI .pt (TorchScript) or state dict), and its descriptor.
// OpenAI stores projections as [in, out] (x @ proj); the key plan flags them and the graph uses them as stored.
import { dirname, join } from 'node:path';
import type { Activation } from '../../graph/ops.js';
import type { TensorSource } from '../../io/tensor.js';
import { openaiPipeline, type RGBTriple } from '../../image/pipeline-config.js';
import { weightFilesOf } from '../../io/sharded.js';
import { buildTextGraph } from '../clip-graph.js';
import { checkHeads, checkInt, CONFIG_LIMITS, Fields } from '../config-fields.js';
import type { ClipConfig, ClipTextConfig, ResNetConfig, VitConfig } from '../config.js';
import {
  built, CLIP_TEXT_INPUTS, closingOnError, imageTower, logitScaleOf, openWeights, OURS, readJson,
  requireFile, SOFTMAX, withShards, textSource, tokenizerIn, type Checkpoint, type CheckpointLocation, type FamilyDescriptor,
} from '../family.js';
import { openaiConfigFromStateDict } from '../openai-state-dict.js';
import { checkWeightShapes } from '../shapes.js';
import { TowerWeights } from '../weights.js';

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

export function openaiClipWeights(src: TensorSource, prefix = ''): TowerWeights {
  return TowerWeights.fromSource(src, (name) => {
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
  if (t.obj.hf_model_name) throw new Error(`${origin}: Hugging Face text towers (${String(t.obj.hf_model_name)}) are not supported`);
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
  towers: { image: ['vit', 'resnet'], text: ['clip-text'], pooling: { image: ['class-token', 'attention-pool'], text: ['argmax'] } },
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
  ['hf_model_name', 'a Hugging Face text tower (e.g. XLM-RoBERTa for multilingual search)'],
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
  for (const [key, why] of REFUSED_MODEL_CFG) refuse(m, key, why);
  for (const tower of ['vision_cfg', 'text_cfg']) {
    if (!m.has(tower)) continue;
    const t = m.sub(tower);
    for (const [key, why] of REFUSED_TOWER_CFG) refuse(t, key, why);
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
