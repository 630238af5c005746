// CLIP's ViT image tower: patch conv, class token, positional embedding, pre-LN, transformer,
// post-LN on the class token. Canonical names under `visual.`:
//   patch.weight [D,3,P,P], cls [D], pos [N+1,D], ln_pre.*, blocks.{i}.*, ln_post.*
// and, with a conv stem, stem.{i}.{weight,bias} (patch.weight is then [D, C, P/2^n, P/2^n]).
import { attr, type Graph } from '../graph/graph.js';
import { layerNorm } from '../graph/ops.js';
import { vitPatchKernel, type VitConfig } from './config.js';
import { param, transformerBlock } from './transformer.js';
import type { TowerWeights } from './weights.js';

export interface TowerOutput {
  pooled: string;
  hidden: string[];
}

export function buildVit(g: Graph, pixels: string, w: TowerWeights, cfg: VitConfig, opts: { fused?: boolean } = {}): TowerOutput {
  const D = cfg.width;
  let x = pixels;
  // The optional conv stem: 3x3 stride-2 conv + ReLU layers (no norm: ln_pre follows the patch embedding).
  (cfg.convStem ?? []).forEach((_, i) => {
    x = g.op('Relu', [g.op('Conv', [x, param(g, w, `visual.stem.${i}.weight`), param(g, w, `visual.stem.${i}.bias`)], {
      kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]),
    })]);
  });
  const k = vitPatchKernel(cfg).size;
  const patches = g.op('Conv', [x, param(g, w, 'visual.patch.weight')], { kernel_shape: attr.ints([k, k]), strides: attr.ints([k, k]) });
  // [B, D, g, g] -> [B, g*g, D]
  const seq = g.op('Transpose', [g.op('Reshape', [patches, g.constI64([0, D, -1])])], { perm: { ints: [0, 2, 1] } });
  // Prepend a zero row, then add one table that holds pos + class embedding in row 0: the same numbers as
  // concat(cls, patches) + pos without a batch-dependent Expand. The table is made of the two stored
  // tensors in the graph (so both train); inference folds it into one constant.
  const padded = g.op('Pad', [seq, g.constI64([0, 1, 0, 0, 0, 0])]);
  const rows = w.ref('visual.pos').shape[0]!;
  const clsRow = g.op('Pad', [g.op('Unsqueeze', [param(g, w, 'visual.cls'), g.constI64([0])]), g.constI64([0, 0, rows - 1, 0])]);
  const table = g.node('Add', [param(g, w, 'visual.pos'), clsRow], {}, { outputs: ['visual.pos+cls'] })[0]!;
  x = g.op('Add', [padded, table]);
  x = layerNorm(g, x, param(g, w, 'visual.ln_pre.weight'), param(g, w, 'visual.ln_pre.bias'), cfg.eps);
  const hidden = [x];
  for (let i = 0; i < cfg.layers; i++) {
    x = transformerBlock(g, x, w, `visual.blocks.${i}`, cfg, { fused: opts.fused });
    hidden.push(x);
  }
  const clsTok = g.op('Gather', [x, g.constI64([0], [])], { axis: { i: 1 } });
  const pooled = layerNorm(g, clsTok, param(g, w, 'visual.ln_post.weight'), param(g, w, 'visual.ln_post.bias'), cfg.eps);
  return { pooled, hidden };
}
