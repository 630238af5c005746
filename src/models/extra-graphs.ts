// Whole-tower graphs for the ModifiedResNet image tower and the BERT text towers, with the same
// input/output names as clip-graph.ts so the loader and sessions treat every family alike.
import { Graph } from '../graph/graph.js';
import { l2normalize } from '../graph/ops.js';
import { buildBertText } from './bert-text.js';
import { foldFor, type BuildOptions } from './clip-graph.js';
import type { BertConfig, ClipConfig } from './config.js';
import { buildModifiedResNet, type ResNetOptions } from './modified-resnet.js';
import type { TowerOutput } from './vision-transformer.js';
import type { TowerWeights } from './weights.js';

/** Both towers' pooled outputs are already projected: only the outputs remain to be added. */
function finish(g: Graph, out: TowerOutput, prefix: 'image' | 'text', opts: BuildOptions): Graph {
  g.output(out.pooled, `${prefix}_features`, 'float32', ['batch', 'dim']);
  g.output(l2normalize(g, out.pooled), `${prefix}_embeds`, 'float32', ['batch', 'dim']);
  if (opts.hiddenStates) out.hidden.forEach((h, i) => g.output(h, `${prefix}_hidden_${i}`));
  return foldFor(g, opts);
}

/** pixel_values [B, 3, S, S] -> image_features (unnormalized, projected) and image_embeds (L2-normalized). */
export function buildResNetImageGraph(cfg: ClipConfig, w: TowerWeights, opts: BuildOptions & ResNetOptions = {}): Graph {
  const v = cfg.vision;
  if (v.kind !== 'resnet') throw new Error(`image tower kind ${v.kind} is not built by this function`);
  const g = new Graph('clip_image_resnet');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, v.imageSize, v.imageSize]);
  const fold = opts.fold === false || typeof opts.fold === 'object' ? opts.fold : { batchNorm: opts.foldBatchNorm ?? true };
  return finish(g, buildModifiedResNet(g, pixels, w, v), 'image', { ...opts, fold });
}

export interface BertGraphOptions extends BuildOptions {
  /**
   * true: an `attention_mask` int64 [B, T] input (HF's call with the tokenizer's mask);
   * false: no mask input, every position attends (HF's call with input_ids only, as Taiyi's seed does).
   */
  masked: boolean;
}

/**
 * input_ids int64 [B, T] (+ attention_mask) -> text_features and text_embeds. Token types are all zero,
 * as for any single-sentence input. `cfg` is a whole CLIP config (Chinese-CLIP) or a bare BERT config (Taiyi).
 */
export function buildBertTextGraph(cfg: ClipConfig | BertConfig, w: TowerWeights, opts: BertGraphOptions): Graph {
  const t = 'kind' in cfg ? cfg : cfg.text;
  if (t.kind !== 'bert') throw new Error(`text tower kind ${t.kind} is not built by this function`);
  const g = new Graph('bert_text');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = opts.masked ? g.input('attention_mask', 'int64', ['batch', 'sequence']) : undefined;
  return finish(g, buildBertText(g, ids, w, t, { mask, fused: opts.fused }), 'text', opts);
}
