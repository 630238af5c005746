// Post-build weight quantization: every MatMul against a large 2-D float weight becomes ORT's
// DynamicQuantizeMatMul (activations quantized per call to uint8, weights int8 per output channel).
//
// Why 7 bits: ORT's AVX2 u8*s8 kernel multiplies pairs with vpmaddubsw, whose int16 sums saturate when
// activations and weights are both near full range; weights in [-63, 63] can never overflow, at the cost
// of one bit of weight precision.
import { floatsToHalf } from '../io/tensor.js';
import type { Graph, Initializer } from './graph.js';

export interface QuantizeOptions {
  /** Weight range: 7 (default, [-63, 63]) or 8 ([-127, 127]). */
  bits?: 7 | 8;
  /** Only weights with at least this many elements (small ones gain nothing). */
  minElements?: number;
}

export interface QuantizeReport {
  quantized: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** Per-output-column symmetric quantization of a [K, N] weight. */
export function quantizeColumns(w: Float32Array, k: number, n: number, qmax: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(n);
  for (let r = 0; r < k; r++) {
    const row = r * n;
    for (let c = 0; c < n; c++) {
      const a = Math.abs(w[row + c]!);
      if (a > scale[c]!) scale[c] = a;
    }
  }
  for (let c = 0; c < n; c++) scale[c] = scale[c]! > 0 ? scale[c]! / qmax : 1;
  const q = new Int8Array(k * n);
  for (let r = 0; r < k; r++) {
    const row = r * n;
    for (let c = 0; c < n; c++) q[row + c] = Math.max(-qmax, Math.min(qmax, Math.round(w[row + c]! / scale[c]!)));
  }
  return { q, scale };
}

export function quantizeGraph(g: Graph, opts: QuantizeOptions = {}): QuantizeReport {
  const qmax = (opts.bits ?? 7) === 7 ? 63 : 127;
  const minElements = opts.minElements ?? 4096;
  const report: QuantizeReport = { quantized: 0, bytesBefore: 0, bytesAfter: 0 };
  const done = new Map<string, { q: string; scale: string; zp: string }>();
  const uses = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const node of g.nodes) {
    if (node.op !== 'MatMul' || node.domain) continue;
    const wName = node.inputs[1]!;
    const w = g.initializers.get(wName) as Initializer | undefined;
    if (!w || w.type !== 'float32' || w.dims.length !== 2 || w.data.length < minElements) continue;
    let qi = done.get(wName);
    if (!qi) {
      const [k, n] = w.dims as [number, number];
      const { q, scale } = quantizeColumns(w.data as Float32Array, k, n, qmax);
      qi = {
        q: g.init(`${wName}.int8`, q, [k, n], 'int8'),
        scale: g.init(`${wName}.scale`, scale, [n]),
        zp: g.init(`${wName}.zero_point`, new Int8Array(n), [n], 'int8'),
      };
      done.set(wName, qi);
      report.quantized++;
      report.bytesBefore += w.data.byteLength;
      report.bytesAfter += q.byteLength + scale.byteLength + n;
    }
    node.op = 'DynamicQuantizeMatMul';
    node.domain = 'com.microsoft';
    node.inputs = [node.inputs[0]!, qi.q, qi.scale, qi.zp];
  }
  // Drop float weights no longer read by any node.
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const name of done.keys()) if (!read.has(name)) g.initializers.delete(name);
  return report;
}

/**
 * Store large float weights as float16 (half the model bytes) behind a Cast back to float32:
 * ORT folds the Cast once at session creation, so compute stays fp32 (CPU has no fast fp16 GEMM).
 */
export function storeWeightsAsHalf(g: Graph, minElements = 4096): number {
  let n = 0;
  for (const [name, init] of [...g.initializers]) {
    if (init.type !== 'float32' || init.data.length < minElements) continue;
    const half = floatsToHalf(init.data as Float32Array);
    g.initializers.delete(name);
    g.init(`${name}.fp16`, half, init.dims, 'float16');
    g.nodes.unshift({ op: 'Cast', domain: '', name: `${name}.cast`, inputs: [`${name}.fp16`], outputs: [name], attrs: { to: { i: 1 } } });
    n++;
  }
  return n;
}
