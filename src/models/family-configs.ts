// Config files of the non-HF-CLIP families -> the tower configs of config.ts.
import type { Activation } from '../graph/ops.js';
import { checkHeads, checkInt, CONFIG_LIMITS, Fields } from './config-fields.js';
import { checkOpenClipModelCfg } from './families/open-clip-hub.js';
import { hfProjectionDim, hfTransformerFields, hfVisionConfig, type BertConfig, type ClipConfig, type ClipTextConfig, type ResNetConfig, type VitConfig } from './config.js';

type Json = Record<string, any>;

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
  // Options that change the towers beyond what is read below are refused by name (families/open-clip-hub.ts).
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

/** A HF BertConfig-style block (BertForSequenceClassification's config.json, Chinese-CLIP's text_config). */
function bertFrom(t: Fields, pooling: BertConfig['pooling']): BertConfig {
  return {
    kind: 'bert',
    ...hfTransformerFields(t, { width: 768, layers: 12, heads: 12, mlpWidth: 3072, act: 'gelu', eps: 1e-12 }),
    vocabSize: t.int('vocab_size', 21128, 1, CONFIG_LIMITS.vocab),
    contextLength: t.int('max_position_embeddings', 512, 1, CONFIG_LIMITS.positions),
    typeVocabSize: t.int('type_vocab_size', 2, 1, CONFIG_LIMITS.typeVocab),
    pooling,
  };
}

/** Chinese-CLIP's tokenizer makes 52-token texts; the BERT tower needs that many positions. */
export const CHINESE_CLIP_CONTEXT = 52;

/** HF ChineseCLIPConfig: CLIP ViT vision tower + BERT text tower pooled at [CLS] and projected. */
export function chineseClipConfig(json: Json, origin = 'config.json'): ClipConfig {
  if (!json?.text_config || !json?.vision_config) throw new Error(`${origin}: expected a Chinese-CLIP config with text_config and vision_config`);
  if ((json.text_config.position_embedding_type ?? 'absolute') !== 'absolute') {
    throw new Error(`${origin}: position_embedding_type "${json.text_config.position_embedding_type}" is not supported`);
  }
  const f = Fields.of(json, origin);
  const text = bertFrom(f.sub('text_config'), 'cls-projection');
  if (text.contextLength < CHINESE_CLIP_CONTEXT) {
    f.sub('text_config').fail('max_position_embeddings', `must be at least ${CHINESE_CLIP_CONTEXT} (Chinese-CLIP's text length), got ${text.contextLength}`);
  }
  // The vision half reads exactly like a CLIPConfig's (same keys, same defaults).
  return {
    vision: hfVisionConfig(f.sub('vision_config')),
    text,
    projectionDim: hfProjectionDim(f),
    logitScaleInit: f.num('logit_scale_init_value', 2.6592, { min: -100, max: 100 }),
  };
}

/** HF BertForSequenceClassification (Taiyi): the classifier's logits are the text features. */
export interface TaiyiBertConfig extends BertConfig {
  pooling: 'classifier';
  /** Width of the text features (the classifier's output). */
  numLabels: number;
}

export function taiyiBertConfig(json: Json, origin = 'config.json'): TaiyiBertConfig {
  if (json.model_type && json.model_type !== 'bert') throw new Error(`${origin}: expected a BERT config, got model_type "${json.model_type}"`);
  const f = Fields.of(json, origin);
  const labels = json.id2label && typeof json.id2label === 'object' ? Object.keys(json.id2label).length : 2;
  const numLabels = f.int('num_labels', labels, 1, CONFIG_LIMITS.width);
  return { ...bertFrom(f, 'classifier'), pooling: 'classifier', numLabels };
}
