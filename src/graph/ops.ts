// Building blocks shared by every tower. Each emits plain ONNX ops so the same graph can be
// differentiated for training; ORT's optimizer fuses the usual patterns (LayerNorm, Gelu) itself.
import { attr, type Graph } from './graph.js';

/** x @ W (+ b), W already laid out [in, out]. */
export function linear(g: Graph, x: string, w: string, b?: string): string {
  const y = g.op('MatMul', [x, w]);
  return b ? g.op('Add', [y, b]) : y;
}

export function layerNorm(g: Graph, x: string, scale: string, bias: string, eps: number): string {
  return g.op('LayerNormalization', [x, scale, bias], { axis: attr.i(-1), epsilon: attr.f(eps) });
}

export type Activation = 'quick_gelu' | 'gelu' | 'gelu_new' | 'relu';

export function activation(g: Graph, x: string, act: Activation): string {
  switch (act) {
    case 'quick_gelu': // x * sigmoid(1.702 x), OpenAI's approximation
      return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.constF([1.702], [])])])]);
    case 'gelu': { // exact: 0.5 x (1 + erf(x / sqrt 2))
      const e = g.op('Erf', [g.op('Mul', [x, g.constF([Math.SQRT1_2], [])])]);
      return g.op('Mul', [g.op('Mul', [x, g.constF([0.5], [])]), g.op('Add', [e, g.constF([1], [])])]);
    }
    case 'gelu_new': { // tanh approximation
      const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
      const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, g.constF([0.044715], [])])]), g.constF([Math.sqrt(2 / Math.PI)], [])]);
      const t = g.op('Add', [g.op('Tanh', [inner]), g.constF([1], [])]);
      return g.op('Mul', [g.op('Mul', [x, g.constF([0.5], [])]), t]);
    }
    case 'relu':
      return g.op('Relu', [x]);
  }
}

/** L2-normalize along the last axis (as torch's x / x.norm(dim=-1, keepdim=True)). */
export function l2normalize(g: Graph, x: string): string {
  const ss = g.op('ReduceSumSquare', [x], { axes: attr.ints([-1]), keepdims: attr.i(1) });
  return g.op('Div', [x, g.op('Sqrt', [ss])]);
}

/** Rows [0, n) of a [N, D] table where n = x.shape[axis]; lets sequence length stay dynamic. */
export function sliceToLengthOf(g: Graph, table: string, x: string, axis: number): string {
  const n = g.op('Shape', [x], { start: attr.i(axis), end: attr.i(axis + 1) });
  return g.op('Slice', [table, g.constI64([0]), n, g.constI64([0])]);
}

export interface AttentionWeights {
  /** [D, 3D] packed q,k,v projection and [3D] bias; q already includes nothing extra. */
  qkvW: string;
  qkvB: string;
  outW: string;
  outB: string;
}

/**
 * Multi-head self-attention on x [B, S, D]. `mask` (optional) is added to the scores and must broadcast
 * to [B, H, S, S]. `fused` uses ORT's com.microsoft Attention kernel (inference only).
 */
export function selfAttention(
  g: Graph, x: string, w: AttentionWeights, heads: number, width: number,
  opts: { causal?: boolean; fused?: boolean; causalTable?: string } = {},
): string {
  const hd = width / heads;
  if (opts.fused) {
    const a = g.op('Attention', [x, w.qkvW, w.qkvB], {
      num_heads: attr.i(heads),
      unidirectional: attr.i(opts.causal ? 1 : 0),
    }, 'com.microsoft');
    return linear(g, a, w.outW, w.outB);
  }
  const qkv = linear(g, x, w.qkvW, w.qkvB);
  // [B, S, 3D] -> [B, S, 3, H, hd] -> [3, B, H, S, hd]
  const r = g.op('Reshape', [qkv, g.constI64([0, 0, 3, heads, hd])]);
  const t = g.op('Transpose', [r], { perm: attr.ints([2, 0, 3, 1, 4]) });
  const [q, k, v] = g.node('Split', [t, g.constI64([1, 1, 1])], { axis: attr.i(0) }, { outputs: 3 }).map(
    (s) => g.op('Squeeze', [s, g.constI64([0])]),
  ) as [string, string, string];
  const qs = g.op('Mul', [q, g.constF([1 / Math.sqrt(hd)], [])]);
  let scores = g.op('MatMul', [qs, g.op('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) })]);
  if (opts.causal) {
    if (!opts.causalTable) throw new Error('causal attention needs a mask table');
    const rows = sliceToLengthOf(g, opts.causalTable, x, 1);
    const m = g.op('Slice', [rows, g.constI64([0]), g.op('Shape', [x], { start: attr.i(1), end: attr.i(2) }), g.constI64([1])]);
    scores = g.op('Add', [scores, m]);
  }
  const p = g.op('Softmax', [scores], { axis: attr.i(-1) });
  const ctx = g.op('MatMul', [p, v]); // [B, H, S, hd]
  const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: attr.ints([0, 2, 1, 3]) }), g.constI64([0, 0, width])]);
  return linear(g, merged, w.outW, w.outB);
}
