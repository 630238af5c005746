// The Taiyi family: a pairing file (`clip-pair.json`) joins a HF BertForSequenceClassification (Taiyi's text
// encoder, whose classifier logits are the text features) with another CLIP checkpoint's image tower and
// logit_scale. Key names: the encoder under `bert.`, the pooler, and the classifier.
import { isShardIndex, weightFilesOf } from '../../io/sharded.js';
import { dirname, join, resolve } from 'node:path';
import type { TensorSource } from '../../io/tensor.js';
import { CONFIG_LIMITS, Fields } from '../config-fields.js';
import { hfBertConfig, type BertConfig } from '../config.js';
import { buildBertTextGraph } from '../extra-graphs.js';
import {
  BERT_INPUTS, BERT_MASKED_INPUTS, built, closingOnError, openWeights, readJson, requireFile, SOFTMAX, tokenizerIn, withShards, type FamilyDescriptor,
} from '../family.js';
import { checkWeightShapes } from '../shapes.js';
import { TowerWeights } from '../weights.js';
import { bertKeys } from './chinese-clip.js';

type Json = Record<string, any>;

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
  return { ...hfBertConfig(f, 'classifier'), pooling: 'classifier', numLabels };
}

const PAIR_FILE = 'clip-pair.json';


/**
 * Taiyi pairing file (`clip-pair.json`): a BERT classifier as the text tower and another CLIP checkpoint's
 * image tower and logit_scale. {"text": "<dir>", "image": "<dir>", "attention_mask": false}
 */
export const taiyi: FamilyDescriptor = {
  name: 'taiyi',
  summary: 'Taiyi: a clip-pair.json {"text": "<BertForSequenceClassification dir>", "image": "<CLIP dir>", "attention_mask": false}',
  detect: (loc) => (!loc.isDir && loc.path.endsWith('.json') && !isShardIndex(loc.path)) || (loc.isDir && loc.has(PAIR_FILE)),
  parseConfig: (json, origin) => taiyiBertConfig(json, origin),
  weights: taiyiWeights,
  open(loc, ctx) {
    const file = loc.isDir ? join(loc.path, PAIR_FILE) : loc.path;
    const opts = loc.opts;
    const spec = readJson(file);
    if (typeof spec.text !== 'string' || typeof spec.image !== 'string') throw new Error(`${file}: a pairing file needs "text" and "image" directories`);
    const base = dirname(file);
    const textDir = resolve(base, spec.text);
    const image = ctx.openCheckpoint(resolve(base, spec.image), { ...opts, tokenizerDir: undefined });
    const tcfgPath = requireFile(textDir, ['config.json'], 'config.json');
    const tcfg = taiyiBertConfig(readJson(tcfgPath), join(textDir, 'config.json'));
    const weightsPath = requireFile(textDir, withShards(['model.safetensors', 'pytorch_model.bin']), 'weights');
    const pair = Fields.of(spec, file);
    const contextLength = pair.int('context_length', tcfg.contextLength, 1, tcfg.contextLength);
    if (tcfg.numLabels !== image.projectionDim) {
      throw new Error(`${file}: text features have ${tcfg.numLabels} dimensions but the image tower gives ${image.projectionDim}`);
    }
    const src = openWeights(weightsPath);
    const w = closingOnError(src, () => {
      const w = taiyiWeights(src);
      checkWeightShapes(w, { text: tcfg, projectionDim: tcfg.numLabels, numLabels: tcfg.numLabels });
      return w;
    });
    const masked = opts.textMask ?? spec.attention_mask === true;
    return {
      ...image,
      family: 'taiyi', path: file,
      text: built((o) => buildBertTextGraph(tcfg, w, { ...o, masked }), [...weightFilesOf(src, weightsPath), tcfgPath], { bert: tcfg, masked }),
      textInputs: masked ? BERT_MASKED_INPUTS : BERT_INPUTS,
      tokenizerDir: tokenizerIn(textDir, opts), tokenizerMode: 'hf',
      // Taiyi's seed call pads to the longest text and keeps BERT's 512 positions.
      contextLength,
      score: SOFTMAX,
    };
  },
  // The image tower is the paired checkpoint's, whatever its family.
  towers: { image: [], text: ['bert'], pooling: { image: [], text: ['classifier'] } },
  tokenizer: { mode: 'hf' },
  score: SOFTMAX,
};
