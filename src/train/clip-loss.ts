// The contrastive losses over both towers in one graph (plain ops only, so it can be differentiated):
//   logits = exp(logit_scale) * norm(img) @ norm(txt)^T (+ logit_bias for SigLIP), and
//   'softmax' (CLIP): loss = (CE(logits, arange) + CE(logits^T, arange)) / 2
//   'sigmoid' (SigLIP): loss = -sum_ij log sigmoid(z_ij * logits_ij) / n, z = +1 on the diagonal, -1 off it
import { attr, Graph } from '../graph/graph.js';
import { l2normalize, linear } from '../graph/ops.js';
import type { ClipConfig } from '../models/config.js';
import { buildClipText } from '../models/text-transformer.js';
import { param } from '../models/transformer.js';
import { buildVit } from '../models/vision-transformer.js';
import { buildSiglipText, buildSiglipVision } from '../models/siglip.js';
import type { TowerWeights } from '../models/weights.js';

export const LOSS = 'loss';
export const LOGITS = 'logits_per_image';

/**
 * buildVit folds the class embedding into row 0 of the position table ('visual.pos+cls') as one
 * precomputed constant. Training needs both as parameters, so that constant is replaced by the same
 * sum computed in the graph (pos + [cls; 0]), placed first so it precedes its use.
 */
export function untieClassAndPosition(g: Graph, w: TowerWeights): void {
  const tied = g.initializers.get('visual.pos+cls');
  if (!tied) throw new Error('expected the ViT tower\'s "visual.pos+cls" table (vision-transformer.ts changed?)');
  g.initializers.delete(tied.name);
  const start = g.nodes.length;
  const pos = param(g, w, 'visual.pos');
  const row = g.op('Unsqueeze', [param(g, w, 'visual.cls'), g.constI64([0])]);
  const table = g.op('Pad', [row, g.constI64([0, 0, tied.dims[0]! - 1, 0])]);
  g.node('Add', [pos, table], {}, { outputs: [tied.name] });
  g.nodes.unshift(...g.nodes.splice(start));
}

export type LossKind = 'softmax' | 'sigmoid';

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

/**
 * Inputs: pixel_values [B, 3, S, S], input_ids [B, T], pool_index [B] (flat b*T + eot; SigLIP's text tower
 * pools the last position and leaves it unused). Output: scalar `loss`. `loss` defaults to the family's own
 * (sigmoid for SigLIP, softmax for CLIP).
 */
export function buildClipLossGraph(cfg: ClipConfig, w: TowerWeights, opts: { logits?: boolean; loss?: LossKind } = {}): Graph {
  const v = cfg.vision;
  const t = cfg.text;
  const g = new Graph('clip_loss');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, v.imageSize, v.imageSize]);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const pool = g.input('pool_index', 'int64', ['batch']);

  let img: string;
  let txt: string;
  if (v.kind === 'siglip-vit' && t.kind === 'siglip-text') {
    // The pooled head outputs are the features (SigLIP has no projections).
    img = l2normalize(g, buildSiglipVision(g, pixels, w, v).pooled);
    txt = l2normalize(g, buildSiglipText(g, ids, w, t).pooled);
  } else if (v.kind === 'vit' && t.kind === 'clip-text') {
    const vis = buildVit(g, pixels, w, v);
    untieClassAndPosition(g, w);
    img = l2normalize(g, linear(g, vis.pooled, param(g, w, 'visual.proj', { linear: true })));
    const txtTower = buildClipText(g, ids, pool, w, t);
    txt = l2normalize(g, linear(g, txtTower.pooled, param(g, w, 'text.proj', { linear: true })));
  } else {
    throw new Error('training supports the ViT image tower with the CLIP text tower, and SigLIP\'s towers');
  }
  const hasBias = w.has('logit_bias');
  const kind = opts.loss ?? (hasBias ? 'sigmoid' : 'softmax');
  if (kind === 'sigmoid' && !hasBias) {
    throw new Error('the sigmoid loss needs a logit_bias, which this checkpoint does not have (SigLIP checkpoints do; a CLIPModel has none to train or save)');
  }

  const ls = w.has('logit_scale') ? w.get('logit_scale').data[0]! : cfg.logitScaleInit;
  const scale = g.op('Exp', [g.init('logit_scale', Float32Array.of(ls), [])]);
  let logits = g.op('Mul', [g.op('MatMul', [img, g.op('Transpose', [txt], { perm: attr.ints([1, 0]) })]), scale]);
  // A softmax loss ignores a shared shift, so with it logit_bias gets a zero gradient and stays as it is.
  if (hasBias) logits = g.op('Add', [logits, g.init('logit_bias', Float32Array.of(w.get('logit_bias').data[0]!), [])]);
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
  return g;
}

/** Parameters of a built graph: the initializers a checkpoint key maps to (not shape/mask constants). */
export function graphParams(g: Graph, isParam: (name: string) => boolean): string[] {
  return [...g.initializers.values()].filter((t) => t.type === 'float32' && isParam(t.name)).map((t) => t.name);
}
