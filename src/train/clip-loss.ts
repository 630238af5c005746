// The contrastive CLIP loss over both towers in one graph (plain ops only, so it can be differentiated):
//   logits = exp(logit_scale) * norm(img) @ norm(txt)^T,  loss = (CE(logits, arange) + CE(logits^T, arange)) / 2
import { attr, Graph } from '../graph/graph.js';
import { l2normalize, linear } from '../graph/ops.js';
import type { ClipConfig } from '../models/config.js';
import { buildClipText } from '../models/text-transformer.js';
import { param } from '../models/transformer.js';
import { buildVit } from '../models/vision-transformer.js';
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

/** Inputs: pixel_values [B, 3, S, S], input_ids [B, T], pool_index [B] (flat b*T + eot). Output: scalar `loss`. */
export function buildClipLossGraph(cfg: ClipConfig, w: TowerWeights, opts: { logits?: boolean } = {}): Graph {
  const v = cfg.vision;
  const t = cfg.text;
  if (v.kind !== 'vit' || t.kind !== 'clip-text') throw new Error('training supports the ViT image tower with the CLIP text tower');
  const g = new Graph('clip_loss');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, v.imageSize, v.imageSize]);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const pool = g.input('pool_index', 'int64', ['batch']);

  const vis = buildVit(g, pixels, w, v);
  untieClassAndPosition(g, w);
  const img = l2normalize(g, linear(g, vis.pooled, param(g, w, 'visual.proj', { linear: true })));
  const txtTower = buildClipText(g, ids, pool, w, t);
  const txt = l2normalize(g, linear(g, txtTower.pooled, param(g, w, 'text.proj', { linear: true })));

  const ls = w.has('logit_scale') ? w.get('logit_scale').data[0]! : cfg.logitScaleInit;
  const scale = g.op('Exp', [g.init('logit_scale', Float32Array.of(ls), [])]);
  const logits = g.op('Mul', [g.op('MatMul', [img, g.op('Transpose', [txt], { perm: attr.ints([1, 0]) })]), scale]);
  if (opts.logits) g.output(logits, LOGITS, 'float32', ['batch', 'batch']);

  // Row i's target is column i: pick the diagonal of both log-softmaxes with an identity mask.
  const both = g.op('Add', [g.op('LogSoftmax', [logits], { axis: attr.i(1) }), g.op('LogSoftmax', [logits], { axis: attr.i(0) })]);
  const diag = g.op('ReduceSum', [g.op('Mul', [both, g.op('EyeLike', [logits])]), g.constI64([1])], { keepdims: attr.i(0) });
  const loss = g.op('Mul', [g.op('ReduceMean', [diag], { keepdims: attr.i(0) }), g.constF([-0.5], [])]);
  g.output(loss, LOSS, 'float32', []);
  return g;
}

/** Parameters of a built graph: the initializers a checkpoint key maps to (not shape/mask constants). */
export function graphParams(g: Graph, isParam: (name: string) => boolean): string[] {
  return [...g.initializers.values()].filter((t) => t.type === 'float32' && isParam(t.name)).map((t) => t.name);
}
