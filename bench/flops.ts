// FLOPs of a graph's matrix products, from the statically inferred shapes (graph/grad-rules/shapes.ts)
// with the symbolic dims ('batch', 'sequence') bound to a run's sizes. Elementwise ops, norms and
// softmax are not counted (a few % of a transformer); one multiply-add counts as 2 FLOPs.
import type { Graph } from '../src/graph/graph.js';
import { ShapeInfo, type SymDim } from '../src/graph/grad-rules/shapes.js';

function bind(d: SymDim[] | undefined, sym: Record<string, number>, what: string): number[] {
  if (!d) throw new Error(`flops: no static shape for ${what}`);
  return d.map((x) => {
    const v = typeof x === 'number' ? x : x !== null ? sym[x] : undefined;
    if (v === undefined) throw new Error(`flops: dim ${x} of ${what} is not known`);
    return v;
  });
}

const prod = (a: number[]): number => a.reduce((x, y) => x * y, 1);

/** Sum of 2·M·N·K over MatMul/Gemm and 2·out·(Cin/groups)·kernel over Conv among the first `nodeCount` nodes. */
export function matmulFlops(g: Graph, sym: Record<string, number>, nodeCount = g.nodes.length): number {
  const info = new ShapeInfo(g);
  let flops = 0;
  for (const n of g.nodes.slice(0, nodeCount)) {
    if (n.op === 'MatMul' || n.op === 'Gemm') {
      const a = bind(info.dims(n.inputs[0]!), sym, `${n.op} "${n.name}" input A`);
      const y = bind(info.dims(n.outputs[0]!), sym, `${n.op} "${n.name}" output`);
      const transA = n.op === 'Gemm' && (n.attrs.transA as { i?: number } | undefined)?.i === 1;
      const k = transA ? a[a.length - 2]! : a[a.length - 1]!;
      flops += 2 * prod(y) * k;
    } else if (n.op === 'Conv') {
      const w = bind(info.dims(n.inputs[1]!), sym, `Conv "${n.name}" weight`);
      const y = bind(info.dims(n.outputs[0]!), sym, `Conv "${n.name}" output`);
      flops += 2 * prod(y) * prod(w.slice(1));
    }
  }
  return flops;
}
