// Whole-tower graphs: inputs -> projected features and their L2-normalized embeddings.
import { foldConstants, type FoldOptions } from '../graph/fold.js';
import { Graph } from '../graph/graph.js';
import { l2normalize, linear } from '../graph/ops.js';
import type { ClipConfig } from './config.js';
import { buildClipText } from './text-transformer.js';
import { buildVit, type TowerOutput } from './vision-transformer.js';
import { param } from './transformer.js';
import type { TowerWeights } from './weights.js';

export interface BuildOptions {
  /** Use ORT's fused contrib kernels (inference only). */
  fused?: boolean;
  /** Also output every hidden state (debugging parity layer by layer). */
  hiddenStates?: boolean;
  /**
   * Fold the layout nodes over checkpoint tensors into constants (default true: inference graphs).
   * false keeps the checkpoint tensors as stored, as the training graph does.
   */
  fold?: boolean | FoldOptions;
}

/** The inference fold (graph/fold.ts) unless the caller keeps the graph as built. */
export function foldFor(g: Graph, opts: BuildOptions): Graph {
  if (opts.fold !== false) foldConstants(g, typeof opts.fold === 'object' ? opts.fold : {});
  return g;
}

function finish(g: Graph, w: TowerWeights, out: TowerOutput, projName: string, prefix: 'image' | 'text', opts: BuildOptions): Graph {
  const feats = linear(g, out.pooled, param(g, w, projName, { linear: true }));
  g.output(feats, `${prefix}_features`, 'float32', ['batch', 'dim']);
  g.output(l2normalize(g, feats), `${prefix}_embeds`, 'float32', ['batch', 'dim']);
  if (opts.hiddenStates) out.hidden.forEach((h, i) => g.output(h, `${prefix}_hidden_${i}`));
  return foldFor(g, opts);
}

export function buildImageGraph(cfg: ClipConfig, w: TowerWeights, opts: BuildOptions = {}): Graph {
  const g = new Graph('clip_image');
  const v = cfg.vision;
  if (v.kind !== 'vit') throw new Error(`image tower kind ${v.kind} is not built by this function`);
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, v.imageSize, v.imageSize]);
  return finish(g, w, buildVit(g, pixels, w, v, opts), 'visual.proj', 'image', opts);
}

export function buildTextGraph(cfg: ClipConfig, w: TowerWeights, opts: BuildOptions = {}): Graph {
  const g = new Graph('clip_text');
  const t = cfg.text;
  if (t.kind !== 'clip-text') throw new Error(`text tower kind ${t.kind} is not built by this function`);
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const pool = g.input('pool_index', 'int64', ['batch']);
  return finish(g, w, buildClipText(g, ids, pool, w, t, opts), 'text.proj', 'text', opts);
}
