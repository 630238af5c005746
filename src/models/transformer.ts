// The pre-LN residual transformer block shared by the ViT and CLIP text towers.
// Canonical weight names under `${p}` (PyTorch layouts):
//   ln1.{weight,bias}, attn.qkv.{weight [3D,D], bias [3D]}, attn.out.{weight,bias},
//   ln2.{weight,bias}, mlp.fc1.{weight,bias}, mlp.fc2.{weight,bias}
import type { Graph } from '../graph/graph.js';
import { activation, layerNorm, linear, selfAttention } from '../graph/ops.js';
import type { TransformerConfig } from './config.js';
import { transpose2d, type TowerWeights } from './weights.js';

/** Add a weight to the graph as an initializer under its canonical name (Linear weights transposed). */
export function param(g: Graph, w: TowerWeights, name: string, opts: { linear?: boolean } = {}): string {
  if (g.initializers.has(name)) return name;
  let t = w.get(name);
  if (opts.linear) t = transpose2d(t);
  return g.init(name, t.data, t.shape);
}

export interface BlockOptions {
  causal?: boolean;
  causalTable?: string;
  fused?: boolean;
}

export function transformerBlock(g: Graph, x: string, w: TowerWeights, p: string, cfg: TransformerConfig, opts: BlockOptions): string {
  const h = layerNorm(g, x, param(g, w, `${p}.ln1.weight`), param(g, w, `${p}.ln1.bias`), cfg.eps);
  const a = selfAttention(g, h, {
    qkvW: param(g, w, `${p}.attn.qkv.weight`, { linear: true }),
    qkvB: param(g, w, `${p}.attn.qkv.bias`),
    outW: param(g, w, `${p}.attn.out.weight`, { linear: true }),
    outB: param(g, w, `${p}.attn.out.bias`),
  }, cfg.heads, cfg.width, opts);
  const x1 = g.op('Add', [x, a]);
  const h2 = layerNorm(g, x1, param(g, w, `${p}.ln2.weight`), param(g, w, `${p}.ln2.bias`), cfg.eps);
  const m = linear(g, h2, param(g, w, `${p}.mlp.fc1.weight`, { linear: true }), param(g, w, `${p}.mlp.fc1.bias`));
  const m2 = linear(g, activation(g, m, cfg.act), param(g, w, `${p}.mlp.fc2.weight`, { linear: true }), param(g, w, `${p}.mlp.fc2.bias`));
  return g.op('Add', [x1, m2]);
}
