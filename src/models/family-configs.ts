// Config files of the non-HF-CLIP families -> the tower configs of config.ts.
import type { Activation } from '../graph/ops.js';
import { clipConfigFromHF, type BertConfig, type ClipConfig, type ClipTextConfig, type ResNetConfig, type VitConfig } from './config.js';

type Json = Record<string, any>;

/** ln(1 / 0.07): CLIP's initial temperature; the checkpoint's own logit_scale is what inference uses. */
const LOGIT_SCALE_INIT = Math.log(1 / 0.07);
const SUPPORTED_ACTS: Activation[] = ['gelu', 'gelu_new', 'quick_gelu', 'relu'];

function activationOf(name: unknown, origin: string): Activation {
  const act = (name ?? 'gelu') as Activation;
  if (!SUPPORTED_ACTS.includes(act)) throw new Error(`${origin}: unsupported hidden_act "${String(name)}"`);
  return act;
}

/**
 * open_clip's `open_clip_config.json` (the whole file, or its `model_cfg`). Defaults are open_clip's
 * CLIPVisionCfg / CLIPTextCfg defaults; head counts follow OpenAI: width // 64 for a ViT, width * 32 // 64
 * for a ModifiedResNet's attention pool.
 */
export function openClipConfig(json: Json, origin = 'open_clip_config.json'): ClipConfig {
  const m: Json = json.model_cfg ?? json;
  const v: Json = m.vision_cfg;
  const t: Json = m.text_cfg;
  if (!v || !t || m.embed_dim === undefined) throw new Error(`${origin}: expected model_cfg with embed_dim, vision_cfg and text_cfg`);
  if (v.timm_model_name) throw new Error(`${origin}: timm vision towers (${v.timm_model_name}) are not supported`);
  if (t.hf_model_name) throw new Error(`${origin}: Hugging Face text towers (${t.hf_model_name}) are not supported`);
  const act: Activation = m.quick_gelu ? 'quick_gelu' : 'gelu';
  const embedDim: number = m.embed_dim;
  const imageSize: number = Array.isArray(v.image_size) ? v.image_size[0] : (v.image_size ?? 224);
  const vWidth: number = v.width ?? 768;
  let vision: ResNetConfig | VitConfig;
  if (Array.isArray(v.layers)) {
    vision = {
      kind: 'resnet',
      imageSize,
      layers: v.layers,
      width: vWidth,
      heads: Math.floor((vWidth * 32) / (v.head_width ?? 64)),
      outputDim: embedDim,
    };
  } else {
    vision = {
      kind: 'vit',
      width: vWidth,
      layers: v.layers ?? 12,
      heads: Math.floor(vWidth / (v.head_width ?? 64)),
      mlpWidth: Math.round(vWidth * (v.mlp_ratio ?? 4)),
      act,
      eps: 1e-5,
      imageSize,
      patchSize: v.patch_size ?? 16,
    };
  }
  const tWidth: number = t.width ?? 512;
  const text: ClipTextConfig = {
    kind: 'clip-text',
    width: tWidth,
    layers: t.layers ?? 12,
    heads: t.heads ?? 8,
    mlpWidth: Math.round(tWidth * (t.mlp_ratio ?? 4)),
    act,
    eps: 1e-5,
    vocabSize: t.vocab_size ?? 49408,
    contextLength: t.context_length ?? 77,
    eosTokenId: 49407,
    // OpenAI pools at tokens.argmax(): the EOT id is the vocabulary's largest, so that is the first EOT.
    poolAtArgmax: true,
  };
  return { vision, text, projectionDim: embedDim, logitScaleInit: LOGIT_SCALE_INIT };
}

/** A HF BertConfig-style block (BertForSequenceClassification's config.json, Chinese-CLIP's text_config). */
function bertFrom(t: Json, pooling: BertConfig['pooling'], origin: string): BertConfig {
  return {
    kind: 'bert',
    width: t.hidden_size ?? 768,
    layers: t.num_hidden_layers ?? 12,
    heads: t.num_attention_heads ?? 12,
    mlpWidth: t.intermediate_size ?? 3072,
    act: activationOf(t.hidden_act, origin),
    eps: t.layer_norm_eps ?? 1e-12,
    vocabSize: t.vocab_size ?? 21128,
    contextLength: t.max_position_embeddings ?? 512,
    typeVocabSize: t.type_vocab_size ?? 2,
    pooling,
  };
}

/** HF ChineseCLIPConfig: CLIP ViT vision tower + BERT text tower pooled at [CLS] and projected. */
export function chineseClipConfig(json: Json, origin = 'config.json'): ClipConfig {
  if (!json.text_config || !json.vision_config) throw new Error(`${origin}: expected a Chinese-CLIP config with text_config and vision_config`);
  if ((json.text_config.position_embedding_type ?? 'absolute') !== 'absolute') {
    throw new Error(`${origin}: position_embedding_type "${json.text_config.position_embedding_type}" is not supported`);
  }
  // The vision half reads exactly like a CLIPConfig's (same keys, same defaults).
  const { vision, projectionDim, logitScaleInit } = clipConfigFromHF(json, origin);
  return { vision, text: bertFrom(json.text_config, 'cls-projection', origin), projectionDim, logitScaleInit };
}

/** HF BertForSequenceClassification (Taiyi): the classifier's logits are the text features. */
export interface TaiyiBertConfig extends BertConfig {
  pooling: 'classifier';
  /** Width of the text features (the classifier's output). */
  numLabels: number;
}

export function taiyiBertConfig(json: Json, origin = 'config.json'): TaiyiBertConfig {
  if (json.model_type && json.model_type !== 'bert') throw new Error(`${origin}: expected a BERT config, got model_type "${json.model_type}"`);
  const numLabels = json.num_labels ?? (json.id2label ? Object.keys(json.id2label).length : 2);
  return { ...bertFrom(json, 'classifier', origin), pooling: 'classifier', numLabels };
}
