// The contrastive losses over both towers in one graph (plain ops only, so it can be differentiated):
//   logits = exp(logit_scale) * norm(img) @ norm(txt)^T (+ logit_bias for the sigmoid), and
//   'softmax' (CLIP): loss = (CE(logits, arange) + CE(logits^T, arange)) / 2
//   'sigmoid' (SigLIP): loss = -sum_ij log sigmoid(z_ij * logits_ij) / n, z = +1 on the diagonal, -1 off it
// The towers are the inference towers built without the fold: parameters are the checkpoint's tensors
// under their own names and layout (graph.weights), so gradients and saved weights need no conversion.
import { attr, Graph } from '../graph/graph.js';
import { l2normalize, linear } from '../graph/ops.js';
import { buildBertText } from '../models/bert-text.js';
import type { ClipConfig } from '../models/config.js';
import type { LossKind, LossTowers } from '../models/family.js';
import { buildModifiedResNet } from '../models/modified-resnet.js';
import { buildClipText } from '../models/text-transformer.js';
import { param } from '../models/transformer.js';
import { buildVit } from '../models/vision-transformer.js';
import type { TowerWeights } from '../models/weights.js';

export const LOSS = 'loss';
export const LOGITS = 'logits_per_image';

/** What the text tower reads besides input_ids: the pooled position (CLIP), the attention mask (BERT), or nothing (a family's own tower). */
export type TrainTextInputs = 'pool_index' | 'attention_mask' | 'none';

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
export function trainableTowersError(cfg: ClipConfig, freeze?: 'vision' | 'text', own?: LossTowers): string | undefined {
  if (own) return undefined;
  if (cfg.vision.kind !== 'vit' && cfg.vision.kind !== 'resnet') return `training does not build a ${cfg.vision.kind} image tower`;
  if (cfg.text.kind !== 'clip-text' && cfg.text.kind !== 'bert') return `training does not build a ${cfg.text.kind} text tower`;
  if (cfg.vision.kind === 'resnet' && freeze !== 'vision') return 'training builds the ModifiedResNet image tower only frozen (--freeze vision): its BatchNorm layers have no training rule';
  if (cfg.text.kind === 'bert' && cfg.text.pooling === 'classifier') return 'training builds the BERT text tower with a projection head (pooled at [CLS] or by the mask-weighted mean), not a classifier head';
  return undefined;
}

/** Weights the graph gained while `build` ran. */
function added(g: Graph, build: () => string): { value: string; weights: Set<string> } {
  const before = new Set(g.weights);
  const value = build();
  return { value, weights: new Set([...g.weights].filter((n) => !before.has(n))) };
}

/**
 * SigLIP's pairwise sigmoid loss on logits [n, n] (image i, text j; pair i is positive): the sum over all
 * pairs of -log sigmoid(z * logit), divided by n as in the paper and SiglipModel. log sigmoid(x) is taken as
 * log_softmax([0, x])[1], which stays finite for any x (log(sigmoid(x)) is -inf once sigmoid underflows).
 */
export function sigmoidLoss(g: Graph, logits: string): string {
  const z = g.op('Sub', [g.op('Mul', [g.op('EyeLike', [logits]), g.constF([2], [])]), g.constF([1], [])]);
  const x = g.op('Unsqueeze', [g.op('Mul', [logits, z]), g.constI64([-1])]); // [n, n, 1]
  const zero = g.op('Mul', [x, g.constF([0], [])]); // same shape and type as x
  const pair = g.op('Concat', [zero, x], { axis: attr.i(-1) });
  const logSig = g.op('Slice', [g.op('LogSoftmax', [pair], { axis: attr.i(-1) }), g.constI64([1]), g.constI64([2]), g.constI64([-1])]);
  const perImage = g.op('ReduceSum', [logSig, g.constI64([1, 2])], { keepdims: attr.i(0) }); // [n]
  return g.op('Neg', [g.op('ReduceMean', [perImage], { keepdims: attr.i(0) })]);
}

export interface LossOptions {
  /** Also output `logits_per_image`. */
  logits?: boolean;
  freeze?: 'vision' | 'text';
  /** The objective (default softmax); 'sigmoid' needs the checkpoint's logit_bias. */
  loss?: LossKind;
  /** The family's own towers (its descriptor's train.towers), for kinds this file does not build. */
  towers?: LossTowers;
}

/**
 * Inputs: pixel_values [B, 3, S, S], input_ids [B, T], and pool_index [B] (flat b*T + eot; CLIP text) or
 * attention_mask [B, T] (BERT text), or neither (a family's own text tower). Output: scalar `loss` (and
 * `logits_per_image` with opts.logits).
 */
export function buildClipLossGraph(cfg: ClipConfig, w: TowerWeights, opts: LossOptions = {}): LossGraph {
  const v = cfg.vision;
  const t = cfg.text;
  const refused = trainableTowersError(cfg, opts.freeze, opts.towers);
  if (refused) throw new Error(refused);
  const kind = opts.loss ?? 'softmax';
  if (kind === 'sigmoid' && !w.has('logit_bias')) {
    throw new Error(`${w.origin}: the sigmoid loss needs a logit_bias tensor (the bias of sigmoid scores), which this checkpoint does not have to train or save`);
  }
  const g = new Graph('clip_loss');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, v.imageSize, v.imageSize]);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);

  // The ResNet's attention pool already projects (c_proj); the ViT has a separate projection.
  const own = opts.towers;
  const img = added(g, () => own ? own.image(g, pixels, cfg, w)
    : v.kind === 'resnet' ? buildModifiedResNet(g, pixels, w, v).pooled
    : v.kind === 'vit' ? linear(g, buildVit(g, pixels, w, v).pooled, param(g, w, 'visual.proj', { linear: true }))
    : unbuilt(v.kind));
  let textInputs: TrainTextInputs;
  let txt: { value: string; weights: Set<string> };
  if (own) {
    textInputs = 'none';
    txt = added(g, () => own.text(g, ids, cfg, w));
  } else if (t.kind === 'clip-text') {
    textInputs = 'pool_index';
    const pool = g.input('pool_index', 'int64', ['batch']);
    txt = added(g, () => linear(g, buildClipText(g, ids, pool, w, t).pooled, param(g, w, 'text.proj', { linear: true })));
  } else if (t.kind === 'bert') {
    textInputs = 'attention_mask';
    const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
    txt = added(g, () => buildBertText(g, ids, w, t, { mask }).pooled);
  } else return unbuilt(t.kind);

  let scaleParam: string;
  if (w.has('logit_scale')) scaleParam = param(g, w, 'logit_scale');
  else {
    scaleParam = g.init('logit_scale', Float32Array.of(cfg.logitScaleInit), []);
    g.weights.add(scaleParam);
  }
  const scale = g.op('Exp', [scaleParam]);
  let logits = g.op('Mul', [g.op('MatMul', [l2normalize(g, img.value), g.op('Transpose', [l2normalize(g, txt.value)], { perm: attr.ints([1, 0]) })]), scale]);
  // Only the sigmoid reads the bias: a softmax ignores a shared shift, so there logit_bias is no parameter and is saved as it was.
  if (kind === 'sigmoid') logits = g.op('Add', [logits, param(g, w, 'logit_bias')]);
  if (opts.logits) g.output(logits, LOGITS, 'float32', ['batch', 'batch']);

  let loss: string;
  if (kind === 'sigmoid') loss = sigmoidLoss(g, logits);
  else {
    // Row i's target is column i: pick the diagonal of both log-softmaxes with an identity mask.
    const both = g.op('Add', [g.op('LogSoftmax', [logits], { axis: attr.i(1) }), g.op('LogSoftmax', [logits], { axis: attr.i(0) })]);
    const diag = g.op('ReduceSum', [g.op('Mul', [both, g.op('EyeLike', [logits])]), g.constI64([1])], { keepdims: attr.i(0) });
    loss = g.op('Mul', [g.op('ReduceMean', [diag], { keepdims: attr.i(0) }), g.constF([-0.5], [])]);
  }
  g.output(loss, LOSS, 'float32', []);
  return { graph: g, towers: { vision: img.weights, text: txt.weights }, textInputs };
}

function unbuilt(kind: string): never {
  throw new Error(`training does not build a ${kind} tower`);
}
