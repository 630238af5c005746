// The SigLIP family (transformers' SiglipModel; SigLIP 2 checkpoints saved in the same layout, e.g.
// google/siglip2-base-patch16-224 whose config says model_type "siglip"): config.json -> tower configs,
// checkpoint key names -> canonical names, and how the family is called (texts padded to the full
// length with no mask, features = the pooled head outputs, per-label sigmoid scores with logit_bias).
// SigLIP 2's NaFlex variant (model_type "siglip2": variable resolution, Linear patch embedding) is not
// supported and is refused by name.
import type { Activation } from '../../graph/ops.js';
import type { TensorSource } from '../../io/tensor.js';
import { checkHeads, CONFIG_LIMITS, Fields } from '../config-fields.js';
import { hfTransformerFields, type ClipConfig } from '../config.js';
import type { SiglipTextConfig, SiglipVisionConfig } from '../siglip.js';
import { TowerWeights } from '../weights.js';
import { hfClipKeys } from './hf-clip.js';

type Json = Record<string, any>;

/** SiglipConfig's initial logit_scale (log 10), the paper's; a checkpoint's own logit_scale is what is used. */
export const SIGLIP_LOGIT_SCALE_INIT = Math.log(10);

/** SigLIP's texts are padded to 64 tokens (max_position_embeddings of every released model). */
export const SIGLIP_CONTEXT = 64;

export interface SiglipConfig extends ClipConfig {
  vision: SiglipVisionConfig;
  text: SiglipTextConfig;
}

/** Whether config.json describes a SiglipModel; throws for the SigLIP 2 NaFlex layout. */
export function isSiglipConfig(cfg: Json, origin: string): boolean {
  if (cfg?.model_type === 'siglip2') {
    throw new Error(`${origin}: model_type "siglip2" is SigLIP 2's NaFlex variant (variable resolution), which clip-ts does not build; `
      + 'the fixed-resolution SigLIP 2 checkpoints (model_type "siglip") load');
  }
  return cfg?.model_type === 'siglip' || cfg?.text_config?.model_type === 'siglip_text_model';
}

/** The shared HF transformer fields; hidden_act "gelu_pytorch_tanh" (SigLIP's) is the tanh approximation our towers call gelu_new. */
function transformer(f: Fields) {
  const tanh: Activation = 'gelu_new';
  const read = f.obj.hidden_act === 'gelu_pytorch_tanh' ? new Fields({ ...f.obj, hidden_act: tanh }, f.origin, f.path) : f;
  return hfTransformerFields(read, { width: 768, layers: 12, heads: 12, mlpWidth: 3072, act: tanh, eps: 1e-6 });
}

/** HF SiglipConfig (config.json) -> tower configs; defaults are SiglipVisionConfig's / SiglipTextConfig's. */
export function siglipConfig(json: Json, origin = 'config.json'): SiglipConfig {
  if (!json?.text_config || !json?.vision_config) throw new Error(`${origin}: expected a SigLIP config with text_config and vision_config`);
  const f = Fields.of(json, origin);
  const v = f.sub('vision_config');
  if (v.has('vision_use_head') && v.obj.vision_use_head !== true) v.fail('vision_use_head', 'must be true: a tower without its pooling head gives no image embedding');
  if (v.has('num_channels') && v.obj.num_channels !== 3) v.fail('num_channels', `must be 3, got ${JSON.stringify(v.obj.num_channels)}`);
  const imageSize = v.int('image_size', 224, 1, CONFIG_LIMITS.imageSize);
  const vision: SiglipVisionConfig = { kind: 'siglip-vit', ...transformer(v), imageSize, patchSize: v.int('patch_size', 16, 1, imageSize) };
  const t = f.sub('text_config');
  const tt = transformer(t);
  const text: SiglipTextConfig = {
    kind: 'siglip-text',
    ...tt,
    vocabSize: t.int('vocab_size', 32000, 1, CONFIG_LIMITS.vocab),
    contextLength: t.int('max_position_embeddings', SIGLIP_CONTEXT, 1, CONFIG_LIMITS.positions),
    projectionDim: t.int('projection_size', tt.width, 1, CONFIG_LIMITS.width),
  };
  checkHeads(v, 'hidden_size', vision.width, 'num_attention_heads', vision.heads);
  // The image features are the head's output (vision width), the text features the text head's.
  if (text.projectionDim !== vision.width) {
    t.fail(text.projectionDim === tt.width ? 'hidden_size' : 'projection_size',
      `${text.projectionDim} differs from vision_config.hidden_size ${vision.width}: image and text features would not be comparable`);
  }
  return { vision, text, projectionDim: vision.width, logitScaleInit: SIGLIP_LOGIT_SCALE_INIT };
}

// Canonical names of the tower code (models/siglip.ts) that CLIPModel does not have, or names differently.
const DIRECT: Record<string, string> = {
  'visual.head.probe': 'vision_model.head.probe',
  'visual.head.attn.qkv.weight': 'vision_model.head.attention.in_proj_weight',
  'visual.head.attn.qkv.bias': 'vision_model.head.attention.in_proj_bias',
  'visual.head.attn.out.weight': 'vision_model.head.attention.out_proj.weight',
  'visual.head.attn.out.bias': 'vision_model.head.attention.out_proj.bias',
  'visual.head.ln.weight': 'vision_model.head.layernorm.weight',
  'visual.head.ln.bias': 'vision_model.head.layernorm.bias',
  'visual.head.mlp.fc1.weight': 'vision_model.head.mlp.fc1.weight',
  'visual.head.mlp.fc1.bias': 'vision_model.head.mlp.fc1.bias',
  'visual.head.mlp.fc2.weight': 'vision_model.head.mlp.fc2.weight',
  'visual.head.mlp.fc2.bias': 'vision_model.head.mlp.fc2.bias',
  'text.proj': 'text_model.head.weight',
  'text.proj.bias': 'text_model.head.bias',
  logit_bias: 'logit_bias',
};
// CLIP names SigLIP has no tensor for (no class token, no pre-LN, no projections).
const ABSENT = new Set(['visual.cls', 'visual.ln_pre.weight', 'visual.ln_pre.bias', 'visual.proj', 'visual.proj.bias']);

/** Checkpoint key(s) behind a canonical name: SigLIP's own, else CLIPModel's (encoder layers, embeddings, LNs). */
export function siglipKeys(canonical: string): string[] | undefined {
  if (DIRECT[canonical]) return [DIRECT[canonical]];
  if (ABSENT.has(canonical)) return undefined;
  return hfClipKeys(canonical);
}

export function siglipWeights(src: TensorSource): TowerWeights {
  return TowerWeights.fromSource(src, (name) => {
    const keys = siglipKeys(name);
    return keys && { keys };
  });
}

/** logit_bias as stored: added to every scaled similarity before the sigmoid. */
export function logitBiasOf(w: TowerWeights): number {
  const v = w.get('logit_bias').data[0]!;
  if (!(Math.abs(v) <= 1000)) throw new Error(`${w.origin}: tensor "${w.keys('logit_bias')[0]}" must be a number from -1000 to 1000, got ${v}`);
  return v;
}

/**
 * SiglipImageProcessor's defaults, for keys a preprocessor_config.json leaves out (the reader's defaults are
 * CLIPImageProcessor's): resize to the square input with no crop, bilinear, mean = std = 0.5.
 */
export function siglipPreprocessDefaults(imageSize: number): Record<string, unknown> {
  return {
    size: { height: imageSize, width: imageSize }, do_center_crop: false, resample: 2,
    image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
  };
}
