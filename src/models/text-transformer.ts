// CLIP's causal text tower, pooled at the EOT token. Canonical names under `text.`:
//   tok [V,D], pos [C,D], blocks.{i}.*, ln_final.*
// The pooling position comes in as an input (flat index b*T + t): the tokenizer knows where EOT is,
// and the causal mask makes trailing padding irrelevant, so batches pad to their longest text.
import type { Graph } from '../graph/graph.js';
import { layerNorm, sliceToLengthOf } from '../graph/ops.js';
import type { ClipTextConfig } from './config.js';
import { param, transformerBlock } from './transformer.js';
import type { TowerOutput } from './vision-transformer.js';
import type { TowerWeights } from './weights.js';

export function buildClipText(g: Graph, ids: string, poolIndex: string, w: TowerWeights, cfg: ClipTextConfig, opts: { fused?: boolean } = {}): TowerOutput {
  const tok = g.op('Gather', [param(g, w, 'text.tok'), ids], { axis: { i: 0 } });
  let x = g.op('Add', [tok, sliceToLengthOf(g, param(g, w, 'text.pos'), ids, 1)]);
  const C = cfg.contextLength;
  const mask = new Float32Array(C * C);
  for (let i = 0; i < C; i++) for (let j = i + 1; j < C; j++) mask[i * C + j] = -Infinity;
  const causalTable = opts.fused ? undefined : g.init('text.causal_mask', mask, [C, C]);
  const hidden = [x];
  for (let i = 0; i < cfg.layers; i++) {
    x = transformerBlock(g, x, w, `text.blocks.${i}`, cfg, { causal: true, causalTable, fused: opts.fused });
    hidden.push(x);
  }
  const last = layerNorm(g, x, param(g, w, 'text.ln_final.weight'), param(g, w, 'text.ln_final.bias'), cfg.eps);
  hidden.push(last);
  const flat = g.op('Reshape', [last, g.constI64([-1, cfg.width])]);
  const pooled = g.op('Gather', [flat, poolIndex], { axis: { i: 0 } });
  return { pooled, hidden };
}
