// The SigLIP family (transformers' SiglipModel; SigLIP 2's fixed-resolution checkpoints saved in the same layout,
// e.g. google/siglip2-base-patch16-224 whose config says model_type "siglip"): its descriptor, config.json ->
// tower configs, checkpoint key names -> canonical names, its tokenizer rules (SigLIP's over spiece.model,
// SigLIP 2's over Gemma's tokenizer.json), and how the family is called (texts padded to the full length with no
// mask, features = the pooled head outputs, per-label sigmoid scores with logit_bias, the pairwise sigmoid loss).
// Its towers are in models/siglip.ts. SigLIP 2's NaFlex variant (model_type "siglip2", Siglip2Model: variable
// resolution, Linear patch embedding) is not supported and is refused by name.
import type { Activation } from '../../graph/ops.js';
import type { TensorSource } from '../../io/tensor.js';
import { specialTokensOf, type TokenizerJson } from '../../text/hf-tokenizer.js';
import { SPM_CONTROL, SPM_UNKNOWN, type SentencePieceModel } from '../../text/sentencepiece.js';
import { checkHeads, CONFIG_LIMITS, Fields } from '../config-fields.js';
import { hfTransformerFields, type ClipConfig } from '../config.js';
import {
  built, hfPreprocess, logitScaleOf, openHfLayout, OURS, textInputs, tokenizerIn,
  type FamilyDescriptor, type ScoreRule,
} from '../family.js';
import { checkShapes, LOGIT_SCALE, surplus } from '../shapes.js';
import {
  buildSiglipImageGraph, buildSiglipText, buildSiglipTextGraph, buildSiglipVision, siglipTextShapes, siglipVisionShapes,
  type SiglipTextConfig, type SiglipVisionConfig,
} from '../siglip.js';
import { TowerWeights } from '../weights.js';
import { HF_META, HF_WEIGHTS, hfClipKeys } from './hf-clip.js';

type Json = Record<string, any>;

/** SiglipConfig's initial logit_scale (log 10), the paper's; a checkpoint's own logit_scale is what is used. */
export const SIGLIP_LOGIT_SCALE_INIT = Math.log(10);

/** SigLIP's texts are padded to 64 tokens (max_position_embeddings of every released model). */
export const SIGLIP_CONTEXT = 64;

export interface SiglipConfig extends ClipConfig {
  vision: SiglipVisionConfig;
  text: SiglipTextConfig;
}

/** config.json of a SiglipModel. */
const isSiglipConfig = (cfg: Json): boolean => cfg?.model_type === 'siglip' || cfg?.text_config?.model_type === 'siglip_text_model';
/** SigLIP 2's NaFlex layout: claimed by the detector so that it is refused by name rather than as an unknown type. */
const isNaflexConfig = (cfg: Json): boolean => cfg?.model_type === 'siglip2';

/** The shared HF transformer fields; hidden_act "gelu_pytorch_tanh" (SigLIP's) is the tanh approximation our towers call gelu_new. */
function transformer(f: Fields) {
  const tanh: Activation = 'gelu_new';
  const read = f.obj.hidden_act === 'gelu_pytorch_tanh' ? new Fields({ ...f.obj, hidden_act: tanh }, f.origin, f.path) : f;
  return hfTransformerFields(read, { width: 768, layers: 12, heads: 12, mlpWidth: 3072, act: tanh, eps: 1e-6 });
}

/** HF SiglipConfig (config.json) -> tower configs; defaults are SiglipVisionConfig's / SiglipTextConfig's. */
export function siglipConfig(json: Json, origin = 'config.json'): SiglipConfig {
  if (isNaflexConfig(json)) {
    throw new Error(`${origin}: model_type "siglip2" is SigLIP 2's NaFlex variant (variable resolution), which clip-ts does not build; `
      + 'the fixed-resolution SigLIP 2 checkpoints (model_type "siglip") load');
  }
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
function siglipKeys(canonical: string): string[] | undefined {
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
function logitBiasOf(w: TowerWeights): number {
  const v = w.get('logit_bias').data[0]!;
  if (!(Math.abs(v) <= 1000)) throw new Error(`${w.origin}: tensor "${w.keys('logit_bias')[0]}" must be a number from -1000 to 1000, got ${v}`);
  return v;
}

/**
 * SiglipImageProcessor's defaults, for keys a preprocessor_config.json leaves out (the reader's defaults are
 * CLIPImageProcessor's): resize to the square input with no crop, bilinear, mean = std = 0.5.
 */
function siglipPreprocessDefaults(imageSize: number): Record<string, unknown> {
  return {
    size: { height: imageSize, width: imageSize }, do_center_crop: false, resample: 2,
    image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
  };
}

/** ASCII punctuation, Python's string.punctuation, as a regex class. */
const PUNCTUATION = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~]";

/**
 * tokenizer.json for SiglipTokenizer over a Unigram sentencepiece model: lower-case, drop ASCII punctuation,
 * collapse and strip whitespace, prefix "▁" (SiglipTokenizer encodes with add_dummy_prefix off after adding
 * it), NFKC (sentencepiece's nmt_nfkc), the Unigram pieces with their scores, and `eos` appended.
 */
function siglipTokenizerJson(model: SentencePieceModel, eos = '</s>', file = 'spiece.model'): TokenizerJson {
  if (model.modelType !== 1) throw new Error(`${file}: a SigLIP tokenizer needs a Unigram sentencepiece model, this one has model_type ${model.modelType}`);
  if (model.byteFallback) throw new Error(`${file}: byte-fallback sentencepiece models are not supported`);
  const unk = model.pieces.findIndex((p) => p.type === SPM_UNKNOWN);
  const eosId = model.pieces.findIndex((p) => p.piece === eos);
  if (unk < 0) throw new Error(`${file}: no unknown piece`);
  if (eosId < 0) throw new Error(`${file}: no end-of-text piece ${JSON.stringify(eos)}`);
  const special = model.pieces.flatMap((p, id) => (p.type === SPM_CONTROL || p.type === SPM_UNKNOWN
    ? [{ id, content: p.piece, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }] : []));
  return {
    version: '1.0',
    added_tokens: special,
    normalizer: {
      type: 'Sequence', normalizers: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'Lowercase' },
        { type: 'Replace', pattern: { Regex: PUNCTUATION }, content: '' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Strip', strip_left: true, strip_right: true },
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'NFKC' },
      ],
    },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'never', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: eos, type_id: 0 } }],
      special_tokens: { [eos]: { id: eos, ids: [eosId], tokens: [eos] } },
    },
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: unk, vocab: model.pieces.map((p) => [p.piece, p.score]), byte_fallback: false },
  } as unknown as TokenizerJson;
}

/** A sentencepiece BPE with byte fallback converted to tokenizer.json: Gemma's, the tokenizer SigLIP 2 ships. */
const isGemmaBpe = (json: TokenizerJson): boolean => json?.model?.type === 'BPE' && json.model.byte_fallback === true;

/**
 * SigLIP 2's text rules over its shipped tokenizer.json (GemmaTokenizerFast's conversion): the model was trained
 * on lower-cased text (big_vision's `lower` before the tokenizer; transformers' siglip2 docs and Siglip2Tokenizer),
 * which the file does not do, so Lowercase goes before its normalizer; no <bos> and <eos> appended, as
 * convert_siglip2_to_hf.py saves it (add_bos_token=False, add_eos_token=True): a file with another template
 * gets that one. Padding (<pad> to 64) is tokenizer_config.json's pad_token and the config's length, as for any
 * tokenizer. Any other tokenizer.json (SigLIP's Unigram) is used as it is.
 */
export function siglip2TokenizerJson(json: TokenizerJson, file = 'tokenizer.json'): TokenizerJson {
  if (!isGemmaBpe(json)) return json;
  const norm = json.normalizer as { type?: string; normalizers?: Array<{ type?: string }> } | null | undefined;
  const lowers = norm?.type === 'Lowercase' || (norm?.type === 'Sequence' && norm.normalizers?.[0]?.type === 'Lowercase');
  const normalizer = lowers ? norm : norm ? { type: 'Sequence', normalizers: [{ type: 'Lowercase' }, norm] } : { type: 'Lowercase' };
  const { prefix, suffix } = specialTokensOf(json.post_processor);
  if (prefix.length === 0 && suffix.length === 1) return { ...json, normalizer };
  const vocab = json.model.vocab as Record<string, number> | undefined;
  const eos = vocab?.[GEMMA_EOS] ?? json.added_tokens?.find((t) => t.content === GEMMA_EOS)?.id;
  if (!Number.isInteger(eos)) throw new Error(`${file}: a SigLIP 2 (Gemma) tokenizer needs an ${GEMMA_EOS} token to end each text`);
  const post_processor = {
    type: 'TemplateProcessing',
    single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: GEMMA_EOS, type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: GEMMA_EOS, type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: GEMMA_EOS, type_id: 1 } }],
    special_tokens: { [GEMMA_EOS]: { id: GEMMA_EOS, ids: [eos!], tokens: [GEMMA_EOS] } },
  };
  return { ...json, normalizer, post_processor } as TokenizerJson;
}
const GEMMA_EOS = '<eos>';

/** Every tensor the towers read, with its shape (models/siglip.ts), and no encoder block past the config's count. */
export function checkSiglipShapes(w: TowerWeights, c: SiglipConfig): void {
  checkShapes(w, [LOGIT_SCALE, ...siglipVisionShapes(c.vision), ...siglipTextShapes(c.text)],
    [...surplus('vision', c.vision.layers), ...surplus('text', c.text.layers)]);
}

/** input_ids only, padded to the full length: the tower pools the last position (no mask, as SiglipModel is called). */
const SIGLIP_INPUTS = textInputs('siglip', { padding: 'max', rowsIndependent: false });
const SIGMOID: ScoreRule = { kind: 'sigmoid' };
/** The tokenizer files a SigLIP directory may hold: tokenizer.json (SigLIP 2's Gemma BPE, or a converted Unigram), or spiece.model as google/siglip-* ship it. */
const TOKENIZER_FILES = ['tokenizer.json', 'spiece.model'];

const asSiglip = (cfg: ClipConfig): SiglipConfig => {
  if (cfg.vision.kind !== 'siglip-vit' || cfg.text.kind !== 'siglip-text') throw new Error(`not SigLIP towers: ${cfg.vision.kind} + ${cfg.text.kind}`);
  return cfg as SiglipConfig;
};

/** HF SiglipModel: config.json (model_type "siglip"), model.safetensors, spiece.model or tokenizer.json. */
export const siglip: FamilyDescriptor = {
  name: 'siglip',
  summary: 'Hugging Face SiglipModel (SigLIP, SigLIP 2 fixed resolution): config.json (model_type "siglip"), model.safetensors, spiece.model, a Unigram or Gemma BPE tokenizer.json, sigmoid scores',
  detect: (loc) => {
    const cfg = loc.config();
    return !!cfg && (isSiglipConfig(cfg) || isNaflexConfig(cfg));
  },
  matchesConfig: isSiglipConfig,
  parseConfig: (json, origin) => siglipConfig(json, origin),
  weights: siglipWeights,
  open(loc) {
    const { config, w, files, logitScale, logitBias } = openHfLayout(loc, HF_WEIGHTS, siglipConfig, siglipWeights, (w, config) => {
      checkSiglipShapes(w, config);
      return { logitScale: logitScaleOf(w, config.logitScaleInit), logitBias: logitBiasOf(w) };
    });
    return {
      family: 'siglip', path: loc.path, projectionDim: config.projectionDim,
      image: built((o) => buildSiglipImageGraph(config.vision, w, o), files, { siglip: config.vision }),
      text: built((o) => buildSiglipTextGraph(config.text, w, o), files, { siglip: config.text }),
      textInputs: SIGLIP_INPUTS, outputs: OURS,
      tokenizerDir: tokenizerIn(loc.dir, loc.opts, TOKENIZER_FILES), tokenizerMode: 'hf',
      contextLength: config.text.contextLength,
      preprocess: hfPreprocess(loc.dir, config.vision.imageSize, siglipPreprocessDefaults(config.vision.imageSize)),
      logitScale, score: SIGMOID, logitBias,
      config, weights: w,
    };
  },
  towers: { image: ['siglip-vit'], text: ['siglip-text'], pooling: { image: ['attention-pool'], text: ['last'] } },
  tokenizer: { mode: 'hf', sentencepiece: siglipTokenizerJson, tokenizerJson: siglip2TokenizerJson },
  score: SIGMOID,
  train: {
    loss: 'sigmoid',
    // Fine-tuning changes no architecture field: config.json is saved as it was.
    saveAs: 'config-as-is',
    // The pooled head outputs are the features (SigLIP has no projections).
    towers: {
      image: (g, pixels, cfg, w) => buildSiglipVision(g, pixels, w, asSiglip(cfg).vision).pooled,
      text: (g, ids, cfg, w) => buildSiglipText(g, ids, w, asSiglip(cfg).text).pooled,
    },
  },
  hub: { marker: 'config.json', meta: [...HF_META, 'spiece.model'], weights: HF_WEIGHTS, onnx: false },
};
