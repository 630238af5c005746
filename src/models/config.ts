// Tower configurations as plain data. Every family's config file is translated into these.
import type { Activation } from '../graph/ops.js';

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
}

export interface ResNetConfig {
  kind: 'resnet';
  imageSize: number;
  layers: number[];
  width: number;
  heads: number;
  outputDim: number;
}

export type VisionConfig = VitConfig | ResNetConfig;

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
  /** 'cls-projection' = Chinese-CLIP ([CLS] -> text_projection); 'classifier' = Taiyi logits. */
  pooling: 'cls-projection' | 'classifier';
}

export type TextConfig = ClipTextConfig | BertConfig;

export interface ClipConfig {
  vision: VisionConfig;
  text: TextConfig;
  projectionDim: number;
  logitScaleInit: number;
}

type Json = Record<string, any>;

/** HF CLIPConfig (config.json). The top-level projection_dim wins over the nested ones. */
export function clipConfigFromHF(cfg: Json, origin = 'config.json'): ClipConfig {
  const t = cfg.text_config;
  const v = cfg.vision_config;
  if (!t || !v) throw new Error(`${origin}: expected a CLIP config with text_config and vision_config`);
  const projectionDim = cfg.projection_dim ?? t.projection_dim ?? v.projection_dim ?? 512;
  const text: ClipTextConfig = {
    kind: 'clip-text',
    width: t.hidden_size ?? 512,
    layers: t.num_hidden_layers ?? 12,
    heads: t.num_attention_heads ?? 8,
    mlpWidth: t.intermediate_size ?? 2048,
    act: (t.hidden_act ?? 'quick_gelu') as Activation,
    eps: t.layer_norm_eps ?? 1e-5,
    vocabSize: t.vocab_size ?? 49408,
    contextLength: t.max_position_embeddings ?? 77,
    eosTokenId: t.eos_token_id ?? 49407,
    poolAtArgmax: t.eos_token_id === 2,
  };
  const vision: VitConfig = {
    kind: 'vit',
    width: v.hidden_size ?? 768,
    layers: v.num_hidden_layers ?? 12,
    heads: v.num_attention_heads ?? 12,
    mlpWidth: v.intermediate_size ?? 3072,
    act: (v.hidden_act ?? 'quick_gelu') as Activation,
    eps: v.layer_norm_eps ?? 1e-5,
    imageSize: v.image_size ?? 224,
    patchSize: v.patch_size ?? 32,
  };
  return { vision, text, projectionDim, logitScaleInit: cfg.logit_scale_init_value ?? 2.6592 };
}
