// The contrastive CLIP loss over both towers in one graph (plain ops only, so it can be differentiated):
//   logits = exp(logit_scale) * norm(img) @ norm(txt)^T,  loss = (CE(logits, arange) + CE(logits^T, arange)) / 2
// The towers are the inference towers built without the fold: parameters are the checkpoint's tensors
// under their own names and layout (graph.weights), so gradients and saved weights need no conversion.
import { attr, Graph } from '../graph/graph.js';
import { l2normalize, linear } from '../graph/ops.js';
import { buildBertText } from '../models/bert-text.js';
import type { ClipConfig } from '../models/config.js';
import { buildModifiedResNet } from '../models/modified-resnet.js';
import { buildClipText } from '../models/text-transformer.js';
import { param } from '../models/transformer.js';
import { buildVit } from '../models/vision-transformer.js';
import type { TowerWeights } from '../models/weights.js';

export const LOSS = 'loss';
export const LOGITS = 'logits_per_image';

/** What the text tower reads besides input_ids: the pooled position (CLIP) or the attention mask (BERT). */
export type TrainTextInputs = 'pool_index' | 'attention_mask';

export interface LossGraph {
  graph: Graph;
  /** Checkpoint tensors of each tower, projection included (logit_scale belongs to neither). */
  towers: { vision: Set<string>; text: Set<string> };
  textInputs: TrainTextInputs;
}

/**
 * Which towers training can build (one check for the early refusal and the trainer). ModifiedResNet only
 * frozen: its BatchNorm has no training rule, and a frozen tower gets no backward pass.
 */
export function trainableTowersError(cfg: ClipConfig, freeze?: 'vision' | 'text'): string | undefined {
  if (cfg.vision.kind === 'resnet' && freeze !== 'vision') return 'training builds the ModifiedResNet image tower only frozen (--freeze vision): its BatchNorm layers have no training rule';
  if (cfg.text.kind === 'bert' && cfg.text.pooling !== 'cls-projection') return 'training builds the BERT text tower pooled at [CLS] with a projection (Chinese-CLIP), not a classifier head';
  return undefined;
}

/** Weights the graph gained while `build` ran. */
function added(g: Graph, build: () => string): { value: string; weights: Set<string> } {
  const before = new Set(g.weights);
  const value = build();
  return { value, weights: new Set([...g.weights].filter((n) => !before.has(n))) };
}

/**
 * Inputs: pixel_values [B, 3, S, S], input_ids [B, T], and pool_index [B] (flat b*T + eot; CLIP text) or
 * attention_mask [B, T] (BERT text). Output: scalar `loss` (and `logits_per_image` with opts.logits).
 */
export function buildClipLossGraph(cfg: ClipConfig, w: TowerWeights, opts: { logits?: boolean; freeze?: 'vision' | 'text' } = {}): LossGraph {
  const v = cfg.vision;
  const t = cfg.text;
  const refused = trainableTowersError(cfg, opts.freeze);
  if (refused) throw new Error(refused);
  const g = new Graph('clip_loss');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, v.imageSize, v.imageSize]);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);

  // The ResNet's attention pool already projects (c_proj); the ViT has a separate projection.
  const img = added(g, () => v.kind === 'resnet' ? buildModifiedResNet(g, pixels, w, v).pooled
    : linear(g, buildVit(g, pixels, w, v).pooled, param(g, w, 'visual.proj', { linear: true })));
  let textInputs: TrainTextInputs;
  let txt: { value: string; weights: Set<string> };
  if (t.kind === 'clip-text') {
    textInputs = 'pool_index';
    const pool = g.input('pool_index', 'int64', ['batch']);
    txt = added(g, () => linear(g, buildClipText(g, ids, pool, w, t).pooled, param(g, w, 'text.proj', { linear: true })));
  } else {
    textInputs = 'attention_mask';
    const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
    txt = added(g, () => buildBertText(g, ids, w, t, { mask }).pooled);
  }

  let scaleParam: string;
  if (w.has('logit_scale')) scaleParam = param(g, w, 'logit_scale');
  else {
    scaleParam = g.init('logit_scale', Float32Array.of(cfg.logitScaleInit), []);
    g.weights.add(scaleParam);
  }
  const scale = g.op('Exp', [scaleParam]);
  const logits = g.op('Mul', [g.op('MatMul', [l2normalize(g, img.value), g.op('Transpose', [l2normalize(g, txt.value)], { perm: attr.ints([1, 0]) })]), scale]);
  if (opts.logits) g.output(logits, LOGITS, 'float32', ['batch', 'batch']);

  // Row i's target is column i: pick the diagonal of both log-softmaxes with an identity mask.
  const both = g.op('Add', [g.op('LogSoftmax', [logits], { axis: attr.i(1) }), g.op('LogSoftmax', [logits], { axis: attr.i(0) })]);
  const diag = g.op('ReduceSum', [g.op('Mul', [both, g.op('EyeLike', [logits])]), g.constI64([1])], { keepdims: attr.i(0) });
  const loss = g.op('Mul', [g.op('ReduceMean', [diag], { keepdims: attr.i(0) }), g.constF([-0.5], [])]);
  g.output(loss, LOSS, 'float32', []);
  return { graph: g, towers: { vision: img.weights, text: txt.weights }, textInputs };
}
