// Hugging Face ChineseCLIPModel key names -> canonical names. The vision tower, both projections and
// logit_scale use CLIPModel's key names exactly, so hf-clip's mapping serves them; the BERT text tower
// sits under `text_model.` (no pooler: Chinese-CLIP pools the [CLS] hidden state itself).
import type { TensorSource } from '../../io/tensor.js';
import { TowerWeights } from '../weights.js';
import { hfClipKeys } from './hf-clip.js';

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
