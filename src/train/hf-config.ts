// The JSON files that make a trained model an HF CLIPModel directory: config.json (a complete
// CLIPConfig that transformers' CLIPModel.from_pretrained and our loader both read) and
// preprocessor_config.json (CLIPImageProcessor). Key names follow transformers' configuration_clip.
import type { PreprocessSpec } from '../models/checkpoint.js';
import type { ClipConfig } from '../models/config.js';
import { CONFIG_LIMITS, Fields } from '../models/config-fields.js';
import { OPENAI_MEAN, OPENAI_STD } from '../models/checkpoint.js';
import type { TextTokenizer } from '../text/types.js';

type Json = Record<string, any>;

/** Special token ids the text config must agree with (HF pools at eos_token_id). */
export interface TokenIds {
  bos?: number;
  eos: number;
  pad: number;
  vocab: number;
}

export function tokenIdsOf(t: TextTokenizer): TokenIds {
  if (t.endId === undefined) throw new Error('the tokenizer has no end token: the CLIP text tower pools at it');
  return { bos: t.startId, eos: t.endId, pad: t.padId, vocab: t.vocabSize };
}

/**
 * A complete CLIPConfig for `cfg`. Fields of `base` (the source config.json) that we do not model are
 * kept (initializer_range, ...), the ones we do are overwritten from `cfg` so the file says what was trained.
 */
export function hfClipConfigJson(cfg: ClipConfig, base: Json = {}, tokens?: TokenIds): Json {
  const v = cfg.vision;
  const t = cfg.text;
  if (v.kind !== 'vit' || t.kind !== 'clip-text') throw new Error('only ViT + CLIP text towers are saved as an HF CLIPModel');
  const tower = (b: Json | undefined) => ({
    attention_dropout: 0.0, initializer_factor: 1.0, initializer_range: 0.02, ...(b ?? {}),
  });
  const text = {
    ...tower(base.text_config),
    bos_token_id: tokens?.bos ?? base.text_config?.bos_token_id ?? 49406,
    eos_token_id: t.poolAtArgmax ? 2 : t.eosTokenId,
    pad_token_id: tokens?.pad ?? base.text_config?.pad_token_id ?? 1,
    hidden_act: t.act, hidden_size: t.width, intermediate_size: t.mlpWidth, layer_norm_eps: t.eps,
    max_position_embeddings: t.contextLength, model_type: 'clip_text_model',
    num_attention_heads: t.heads, num_hidden_layers: t.layers,
    projection_dim: cfg.projectionDim, vocab_size: t.vocabSize,
  };
  const vision = {
    ...tower(base.vision_config),
    hidden_act: v.act, hidden_size: v.width, image_size: v.imageSize, intermediate_size: v.mlpWidth,
    layer_norm_eps: v.eps, model_type: 'clip_vision_model', num_attention_heads: v.heads, num_channels: 3,
    num_hidden_layers: v.layers, patch_size: v.patchSize, projection_dim: cfg.projectionDim,
    // Not a transformers field: from_pretrained would ignore it and the stem's weights (see config.ts convStem).
    ...(v.convStem ? { conv_stem: v.convStem } : {}),
  };
  const { text_config: _t, vision_config: _v, ...rest } = base;
  return {
    ...rest,
    architectures: ['CLIPModel'],
    dtype: 'float32',
    initializer_factor: base.initializer_factor ?? 1.0,
    logit_scale_init_value: cfg.logitScaleInit,
    model_type: 'clip',
    projection_dim: cfg.projectionDim,
    text_config: text,
    vision_config: vision,
  };
}

/**
 * A scratch config.json as the user wrote it (any subset of CLIPConfig), with the text side made to agree
 * with the tokenizer: vocab_size at least its vocabulary, eos/bos/pad its special tokens.
 */
export function completeScratchConfig(user: Json, tokens: TokenIds, origin: string): Json {
  if (!user?.text_config || !user?.vision_config) throw new Error(`${origin}: expected a CLIPConfig with text_config and vision_config`);
  // Range-checked here because it is compared before clipConfigFromHF reads the completed config.
  const text = { ...user.text_config };
  text.vocab_size = Fields.of(user, origin).sub('text_config').int('vocab_size', tokens.vocab, 1, CONFIG_LIMITS.vocab);
  if (text.vocab_size < tokens.vocab) throw new Error(`${origin}: text_config.vocab_size ${text.vocab_size} is smaller than the tokenizer's vocabulary (${tokens.vocab})`);
  if (text.eos_token_id !== undefined && text.eos_token_id !== tokens.eos && text.eos_token_id !== 2) {
    throw new Error(`${origin}: text_config.eos_token_id ${text.eos_token_id} is not the tokenizer's end token ${tokens.eos}`);
  }
  text.eos_token_id = tokens.eos;
  text.bos_token_id = tokens.bos ?? text.bos_token_id;
  text.pad_token_id = tokens.pad;
  return { ...user, text_config: text };
}

/** CLIPImageProcessor settings at resolution `size`: the defaults runtime/preprocess.ts applies when a model has no file. */
export function clipImageProcessorJson(size: number, mean: number[] = OPENAI_MEAN, std: number[] = OPENAI_STD): Json {
  return {
    crop_size: { height: size, width: size },
    do_center_crop: true, do_convert_rgb: true, do_normalize: true, do_rescale: true, do_resize: true,
    image_mean: mean, image_std: std,
    image_processor_type: 'CLIPImageProcessor',
    resample: 3, rescale_factor: 1 / 255,
    size: { shortest_edge: size },
  };
}

/**
 * preprocessor_config.json for a spec: the checkpoint's own file when it had one, else CLIPImageProcessor
 * at the tower's resolution (for OpenAI-family models this is HF's rendering of their torchvision
 * transform: same resize, crop, mean and std, up to the crop-offset rounding on odd excesses).
 */
export function hfPreprocessorJson(spec: PreprocessSpec): Json {
  return spec.kind === 'hf' && spec.hfConfig ? spec.hfConfig : clipImageProcessorJson(spec.size, spec.mean, spec.std);
}
