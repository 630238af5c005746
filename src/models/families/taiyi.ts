// Hugging Face BertForSequenceClassification (Taiyi's text encoder) key names -> canonical names:
// the encoder under `bert.`, the pooler, and the classifier whose logits are the text features.
import type { TensorSource } from '../../io/tensor.js';
import { TowerWeights } from '../weights.js';
import { bertKeys } from './chinese-clip.js';

export function taiyiKeys(canonical: string): string[] | undefined {
  if (canonical === 'classifier.weight' || canonical === 'classifier.bias') return [canonical];
  return bertKeys(canonical)?.map((k) => `bert.${k}`);
}

export function taiyiWeights(src: TensorSource): TowerWeights {
  return TowerWeights.fromSource(src, (name) => {
    const keys = taiyiKeys(name);
    return keys && { keys };
  });
}
