// The OpenAI / open_clip family: open_clip's config file, OpenAI state-dict key names -> canonical tower names
// (open_clip hub layout, a bare OpenAI .pt (TorchScript) or state dict), and its descriptor.
// OpenAI stores projections as [in, out] (x @ proj); canonical is Linear's [out, in], so they are transposed here.
import { dirname, join } from 'node:path';
import type { Activation } from '../../graph/ops.js';
import type { TensorSource } from '../../io/tensor.js';
import { openaiPipeline } from '../../image/pipeline-config.js';
import { buildTextGraph } from '../clip-graph.js';
import { checkHeads, checkInt, CONFIG_LIMITS, Fields } from '../config-fields.js';
import type { ClipConfig, ClipTextConfig, ResNetConfig, VitConfig } from '../config.js';
import {
  built, CLIP_TEXT_INPUTS, closingOnError, imageTower, logitScaleOf, OPENAI_MEAN, OPENAI_STD, openWeights, OURS, readJson,
  requireFile, SOFTMAX, textSource, tokenizerIn, type Checkpoint, type CheckpointLocation, type FamilyDescriptor,
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
  const w = Math.round(width * ratio);
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
// The hub fetches any of these; a local directory is read from the first three (as before the registry).
const OPEN_CLIP_WEIGHTS = ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin', 'model.safetensors', 'pytorch_model.bin'];

/** A weight file openWeights reads (a bare .onnx is an ONNX export's tower, not ours). */
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt)$/;

/** OpenAI-family weights (open_clip hub layout, or a bare OpenAI .pt / state dict). */
function openaiCheckpoint(path: string, cfgJson: Json | undefined, weightsPath: string, loc: CheckpointLocation, cfgFile?: string): Checkpoint {
  const cfgOrigin = cfgFile ?? join(dirname(weightsPath), CONFIG_FILE);
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
    textInputs: CLIP_TEXT_INPUTS, outputs: OURS,
    tokenizerDir: tokenizerIn(dirname(weightsPath), loc.opts),
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
      const weightsPath = file ?? requireFile(dir, OPEN_CLIP_WEIGHTS.slice(0, 3), 'weights');
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
  train: { loss: 'contrastive', saveAs: 'open-clip-files' },
  hub: { marker: CONFIG_FILE, meta: [CONFIG_FILE], weights: OPEN_CLIP_WEIGHTS, onnx: false },
};
