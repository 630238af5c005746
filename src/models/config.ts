// Tower configurations as plain data. Every family's config file is translated into these.
import type { Activation } from '../graph/ops.js';
import { checkHeads, CONFIG_LIMITS, Fields } from './config-fields.js';

export interface TransformerConfig {
  width: number;
  layers: number;
  heads: number;
  mlpWidth: number;
  act: Activation;
  eps: number;
}

export interface VitConfig extends TransformerConfig {
  kind: 'vit';
  imageSize: number;
  patchSize: number;
  /**
   * A convolutional stem (clip-ts's extension, `vision_config.conv_stem`, after Xiao et al. 2021, "Early
   * convolutions help transformers see better"): the output channels of 3x3, stride-2, pad-1 conv + ReLU
   * layers run on the pixels; the patch embedding then covers patchSize / 2^layers cells of their output.
   * Absent: CLIP's patchify.
   */
  convStem?: number[];
}

/** Most conv stem layers: each halves the resolution, and 2^layers must divide the patch size. */
export const MAX_STEM_LAYERS = 6;

/** The patch embedding's kernel and input channels: the stem's last layer when there is one. */
export function vitPatchKernel(v: VitConfig): { size: number; channels: number } {
  const stem = v.convStem ?? [];
  return { size: v.patchSize / 2 ** stem.length, channels: stem.at(-1) ?? 3 };
}

/** Patches per side: each stem layer maps n pixels to ceil(n / 2), then the patch kernel tiles what is left. */
export function vitGrid(v: VitConfig): number {
  let n = v.imageSize;
  for (const _ of v.convStem ?? []) n = Math.ceil(n / 2);
  return Math.floor(n / vitPatchKernel(v).size);
}

export interface ResNetConfig {
  kind: 'resnet';
  imageSize: number;
  layers: number[];
  width: number;
  heads: number;
  outputDim: number;
}

/**
 * Image tower configs by `kind`. A tower module that brings its own kind adds it here by declaration merging
 * (`declare module './config.js' { interface VisionConfigKinds { ... } }`), so this file names no family's
 * tower; code that switches on `kind` then has to say what it does with a kind it does not know.
 */
export interface VisionConfigKinds {
  vit: VitConfig;
  resnet: ResNetConfig;
}
export type VisionConfig = VisionConfigKinds[keyof VisionConfigKinds];

export interface ClipTextConfig extends TransformerConfig {
  kind: 'clip-text';
  vocabSize: number;
  contextLength: number;
  eosTokenId: number;
  /** HF legacy checkpoints (eos_token_id == 2) pool at argmax(input_ids). */
  poolAtArgmax: boolean;
}

export interface BertConfig extends TransformerConfig {
  kind: 'bert';
  vocabSize: number;
  contextLength: number;
  typeVocabSize: number;
  /**
   * 'cls-projection' = [CLS] of the last hidden state -> projection (Chinese-CLIP); 'mean-projection' = the
   * attention-mask-weighted mean of the last hidden state -> projection (open_clip's mean_pooler);
   * 'classifier' = Taiyi logits.
   */
  pooling: 'cls-projection' | 'mean-projection' | 'classifier';
  /** The *-projection head: 'linear' (text.proj, no bias; the default) or 'mlp' (Linear-GELU-Linear, no biases). */
  projection?: 'linear' | 'mlp';
  /**
   * RoBERTa's position ids: cumsum(attention mask) * mask + positionOffset (its padding_idx), so the first
   * token reads row offset + 1. Undefined: BERT's 0..T-1.
   */
  positionOffset?: number;
}

/** Text tower configs by `kind`; open to tower modules like VisionConfigKinds. */
export interface TextConfigKinds {
  'clip-text': ClipTextConfig;
  bert: BertConfig;
}
export type TextConfig = TextConfigKinds[keyof TextConfigKinds];

export interface ClipConfig {
  vision: VisionConfig;
  text: TextConfig;
  projectionDim: number;
  logitScaleInit: number;
}

type Json = Record<string, any>;

/** The transformer fields every HF tower config (CLIP text/vision, BERT) shares, range-checked. */
export function hfTransformerFields(f: Fields, d: { width: number; layers: number; heads: number; mlpWidth: number; act: Activation; eps: number }): TransformerConfig {
  const width = f.int('hidden_size', d.width, 1, CONFIG_LIMITS.width);
  const heads = f.int('num_attention_heads', d.heads, 1, CONFIG_LIMITS.width);
  checkHeads(f, 'hidden_size', width, 'num_attention_heads', heads);
  return {
    width,
    layers: f.int('num_hidden_layers', d.layers, 1, CONFIG_LIMITS.layers),
    heads,
    mlpWidth: f.int('intermediate_size', d.mlpWidth, 1, CONFIG_LIMITS.mlpWidth),
    act: f.act('hidden_act', d.act),
    eps: f.num('layer_norm_eps', d.eps, { gt: 0, max: 1 }),
  };
}

/** HF CLIPVisionConfig (a CLIPConfig's or ChineseCLIPConfig's vision_config). */
export function hfVisionConfig(v: Fields): VitConfig {
  const imageSize = v.int('image_size', 224, 1, CONFIG_LIMITS.imageSize);
  const patchSize = v.int('patch_size', 32, 1, imageSize);
  const cfg: VitConfig = {
    kind: 'vit',
    ...hfTransformerFields(v, { width: 768, layers: 12, heads: 12, mlpWidth: 3072, act: 'quick_gelu', eps: 1e-5 }),
    imageSize,
    patchSize,
  };
  if (!v.has('conv_stem')) return cfg;
  const stem = v.intList('conv_stem', 1, MAX_STEM_LAYERS, 1, CONFIG_LIMITS.width);
  if (patchSize % 2 ** stem.length !== 0) {
    v.fail('conv_stem', `has ${stem.length} stride-2 layers, so patch_size ${patchSize} must be a multiple of ${2 ** stem.length}`);
  }
  return { ...cfg, convStem: stem };
}

/** A HF BertConfig-style block (BertForSequenceClassification's config.json, Chinese-CLIP's text_config). */
export function hfBertConfig(t: Fields, pooling: BertConfig['pooling']): BertConfig {
  return {
    kind: 'bert',
    ...hfTransformerFields(t, { width: 768, layers: 12, heads: 12, mlpWidth: 3072, act: 'gelu', eps: 1e-12 }),
    vocabSize: t.int('vocab_size', 21128, 1, CONFIG_LIMITS.vocab),
    contextLength: t.int('max_position_embeddings', 512, 1, CONFIG_LIMITS.positions),
    typeVocabSize: t.int('type_vocab_size', 2, 1, CONFIG_LIMITS.typeVocab),
    pooling,
  };
}

/** The projection width: the top-level projection_dim wins over the nested ones (as in transformers). */
export function hfProjectionDim(f: Fields): number {
  const where = f.has('projection_dim') ? f : [f.sub('text_config'), f.sub('vision_config')].find((s) => s.has('projection_dim'));
  return where ? where.int('projection_dim', undefined, 1, CONFIG_LIMITS.width) : 512;
}

/** HF CLIPConfig (config.json). */
export function clipConfigFromHF(cfg: Json, origin = 'config.json'): ClipConfig {
  if (!cfg?.text_config || !cfg?.vision_config) throw new Error(`${origin}: expected a CLIP config with text_config and vision_config`);
  const f = Fields.of(cfg, origin);
  const t = f.sub('text_config');
  const vocabSize = t.int('vocab_size', 49408, 1, CONFIG_LIMITS.vocab);
  const eosTokenId = t.int('eos_token_id', Math.min(49407, vocabSize - 1), 0, vocabSize - 1);
  const text: ClipTextConfig = {
    kind: 'clip-text',
    ...hfTransformerFields(t, { width: 512, layers: 12, heads: 8, mlpWidth: 2048, act: 'quick_gelu', eps: 1e-5 }),
    vocabSize,
    contextLength: t.int('max_position_embeddings', 77, 1, CONFIG_LIMITS.positions),
    eosTokenId,
    poolAtArgmax: eosTokenId === 2,
  };
  const vision = hfVisionConfig(f.sub('vision_config'));
  const logitScaleInit = f.num('logit_scale_init_value', 2.6592, { min: -100, max: 100 });
  return { vision, text, projectionDim: hfProjectionDim(f), logitScaleInit };
}
