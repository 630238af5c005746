// The Chinese-CLIP family: its descriptor, config parser, and HF ChineseCLIPModel key names -> canonical names. The vision tower, both projections and
// logit_scale use CLIPModel's key names exactly, so hf-clip's mapping serves them; the BERT text tower
// sits under `text_model.` (no pooler: Chinese-CLIP pools the [CLS] hidden state itself).
import type { TensorSource } from '../../io/tensor.js';
import { Fields } from '../config-fields.js';
import { hfBertConfig, hfProjectionDim, hfVisionConfig, type ClipConfig } from '../config.js';
import { buildBertTextGraph } from '../extra-graphs.js';
import {
  BERT_MASKED_INPUTS, built, hfPreprocess, imageTower, logitScaleOf, openHfLayout, OURS, SOFTMAX,
  textSource, tokenizerIn, type FamilyDescriptor,
} from '../family.js';
import { checkWeightShapes } from '../shapes.js';
import { TowerWeights } from '../weights.js';
import { HF_META, HF_WEIGHTS, hfClipKeys } from './hf-clip.js';

type Json = Record<string, any>;

// HF BertModel key names (relative to the model's prefix), shared with the Taiyi family.
const BERT_DIRECT: Record<string, string> = {
  'bert.embeddings.word': 'embeddings.word_embeddings.weight',
  'bert.embeddings.pos': 'embeddings.position_embeddings.weight',
  'bert.embeddings.type': 'embeddings.token_type_embeddings.weight',
  'bert.embeddings.ln.weight': 'embeddings.LayerNorm.weight',
  'bert.embeddings.ln.bias': 'embeddings.LayerNorm.bias',
  'bert.pooler.weight': 'pooler.dense.weight',
  'bert.pooler.bias': 'pooler.dense.bias',
};
const BERT_BLOCK = /^bert\.blocks\.(\d+)\.(.+)$/;
const BERT_PARTS: Record<string, string> = {
  'attn.out.weight': 'attention.output.dense.weight', 'attn.out.bias': 'attention.output.dense.bias',
  'ln1.weight': 'attention.output.LayerNorm.weight', 'ln1.bias': 'attention.output.LayerNorm.bias',
  'mlp.fc1.weight': 'intermediate.dense.weight', 'mlp.fc1.bias': 'intermediate.dense.bias',
  'mlp.fc2.weight': 'output.dense.weight', 'mlp.fc2.bias': 'output.dense.bias',
  'ln2.weight': 'output.LayerNorm.weight', 'ln2.bias': 'output.LayerNorm.bias',
};

/** Key(s) relative to the BertModel prefix; qkv is packed from query/key/value. */
export function bertKeys(canonical: string): string[] | undefined {
  if (BERT_DIRECT[canonical]) return [BERT_DIRECT[canonical]];
  const m = BERT_BLOCK.exec(canonical);
  if (!m) return undefined;
  const [, i, part] = m;
  const prefix = `encoder.layer.${i}.`;
  if (part === 'attn.qkv.weight' || part === 'attn.qkv.bias') {
    const kind = part.endsWith('weight') ? 'weight' : 'bias';
    return ['query', 'key', 'value'].map((x) => `${prefix}attention.self.${x}.${kind}`);
  }
  return BERT_PARTS[part!] ? [prefix + BERT_PARTS[part!]] : undefined;
}

export function chineseClipKeys(canonical: string): string[] | undefined {
  const bert = bertKeys(canonical);
  if (bert) return bert.map((k) => `text_model.${k}`);
  if (canonical.startsWith('text.') && canonical !== 'text.proj') return undefined; // no CLIP text tower here
  return hfClipKeys(canonical);
}

export function chineseClipWeights(src: TensorSource): TowerWeights {
  return TowerWeights.fromSource(src, (name) => {
    const keys = chineseClipKeys(name);
    return keys && { keys };
  });
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
  const text = hfBertConfig(f.sub('text_config'), 'cls-projection');
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

const isChineseClipConfig = (json: Json): boolean => json.model_type === 'chinese_clip';

/** HF ChineseCLIPModel: config.json (model_type "chinese_clip"), a BERT text tower masked and pooled at [CLS]. */
export const chineseClip: FamilyDescriptor = {
  name: 'chinese-clip',
  summary: `Hugging Face ChineseCLIPModel: config.json (model_type "chinese_clip"), BERT text tower, WordPiece, ${CHINESE_CLIP_CONTEXT} tokens`,
  detect: (loc) => {
    const cfg = loc.config();
    return !!cfg && isChineseClipConfig(cfg);
  },
  matchesConfig: isChineseClipConfig,
  parseConfig: (json, origin) => chineseClipConfig(json, origin),
  weights: chineseClipWeights,
  open(loc) {
    const { config, w, files, logitScale } = openHfLayout(loc, HF_WEIGHTS, chineseClipConfig, chineseClipWeights, (w, config) => {
      checkWeightShapes(w, config);
      return { logitScale: logitScaleOf(w, config.logitScaleInit) };
    });
    return {
      family: 'chinese-clip', path: loc.path, projectionDim: config.projectionDim,
      image: imageTower(config, w, files),
      text: built((o) => buildBertTextGraph(config, w, { ...o, masked: true }), files, { ...textSource(config), masked: true }),
      textInputs: BERT_MASKED_INPUTS, outputs: OURS,
      tokenizerDir: tokenizerIn(loc.dir, loc.opts), tokenizerMode: 'hf',
      contextLength: CHINESE_CLIP_CONTEXT,
      preprocess: hfPreprocess(loc.dir, config.vision.imageSize),
      logitScale, score: SOFTMAX,
      config, weights: w,
    };
  },
  towers: { image: ['vit'], text: ['bert'], pooling: { image: ['class-token'], text: ['cls'] } },
  tokenizer: { mode: 'hf', contextLength: CHINESE_CLIP_CONTEXT },
  score: SOFTMAX,
  train: { loss: 'softmax', saveAs: 'config-as-is' },
  hub: { marker: 'config.json', meta: HF_META, weights: HF_WEIGHTS, onnx: true },
};
