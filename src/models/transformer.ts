// The pre-LN residual transformer block shared by the ViT and CLIP text towers.
// Canonical weight names under `${p}` (PyTorch layouts):
//   ln1.{weight,bias}, attn.qkv.{weight [3D,D], bias [3D]}, attn.out.{weight,bias},
//   ln2.{weight,bias}, mlp.fc1.{weight,bias}, mlp.fc2.{weight,bias}
import { attr, type Graph } from '../graph/graph.js';
import { activation, layerNorm, linear, selfAttention } from '../graph/ops.js';
import type { TransformerConfig } from './config.js';
import type { StoredTensor, TowerWeights } from './weights.js';

const made = new WeakMap<Graph, Map<string, string>>();

/** A checkpoint tensor as an initializer, under its own key and in its stored layout (once per graph). */
function stored(g: Graph, w: TowerWeights, part: StoredTensor): string {
  if (g.initializers.has(part.key)) return part.key;
  const t = w.loadStored(part);
  g.init(part.key, t.data, t.shape);
  g.weights.add(part.key);
  return part.key;
}

/**
 * A canonical weight as a graph value. The checkpoint's tensors enter as initializers as they are stored;
 * the family's layout (q/k/v stacked: Concat; OpenAI's [in, out] projections: Transpose) and, for
 * `linear`, the [in, out] layout MatMul reads a Linear weight in are nodes, so training gets gradients
 * for the stored tensors and inference folds the nodes away (graph/fold.ts). The value is named after
 * the canonical weight when a node makes it (the folded initializer keeps that name).
 */
export function param(g: Graph, w: TowerWeights, name: string, opts: { linear?: boolean } = {}): string {
  const memo = made.get(g) ?? made.set(g, new Map()).get(g)!;
  const id = opts.linear ? `${name} (linear)` : name;
  const known = memo.get(id);
  if (known) return known;
  const ref = w.ref(name);
  const parts = ref.parts.map((p) => stored(g, w, p));
  // Transposed storage read by MatMul as [in, out]: the two transposes cancel.
  const flip = ref.transpose !== !!opts.linear;
  let v = parts[0]!;
  if (parts.length > 1 || flip) {
    const out = g.initializers.has(name) ? `${name}:${flip ? 'T' : 'packed'}` : name;
    if (parts.length > 1) v = g.node('Concat', parts, { axis: attr.i(0) }, { outputs: [flip ? g.fresh(`${name}:packed`) : out] })[0]!;
    if (flip) v = g.node('Transpose', [v], { perm: attr.ints([1, 0]) }, { outputs: [out] })[0]!;
  }
  memo.set(id, v);
  return v;
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
