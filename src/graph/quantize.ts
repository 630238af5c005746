// Post-build weight quantization: every MatMul against a large 2-D float weight runs on int8 weights
// (symmetric, per output channel) and uint8 activations quantized per row (per token), so that each row's
// result depends on that row alone: an embedding is the same whether computed alone or within any batch.
//
// ORT's DynamicQuantizeMatMul would be one fused node, but it quantizes activations per tensor (one scale for
// the whole batch), which makes every row depend on its neighbours' ranges. Its MatMulIntegerToFloat takes
// only a per-tensor activation scale and zero point, so the per-row scale is applied to the output instead:
//   s = max|x_row| / 127,  q = round(x / s) + 128  (uint8, zero point 128 shared by all rows)
//   y = (q - 128) . Wq * wscale[col] * s[row]
// The integer product is exact, so the result is bit-identical whatever else is in the batch.
//
// Why 7-bit weights: ORT's AVX2 u8*s8 kernel multiplies pairs with vpmaddubsw, whose int16 sums saturate when
// activations and weights are both near full range; weights in [-63, 63] can never overflow (2*255*63 < 32768),
// at the cost of one bit of weight precision.
import { floatsToHalf } from '../io/tensor.js';
import type { Graph, Initializer, NodeDef } from './graph.js';

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
  // One quantized copy of each activation, shared by the MatMuls that read it (q, k, v of one input).
  const quantizedInputs = new Map<string, { q: string; scale: string }>();
  let shared: { one: string; zp: string; inv: string; tiny: string } | undefined;
  const nodes = g.nodes.splice(0);
  const emit = (op: string, inputs: string[], attrs: NodeDef['attrs'] = {}, domain = ''): string => {
    const name = g.fresh(`q_${op}`);
    const out = `${name}_out`;
    g.nodes.push({ op, domain, name, inputs, outputs: [out], attrs });
    return out;
  };
  for (const node of nodes) {
    const w = node.op === 'MatMul' && !node.domain ? (g.initializers.get(node.inputs[1]!) as Initializer | undefined) : undefined;
    if (!w || w.type !== 'float32' || w.dims.length !== 2 || w.data.length < minElements) {
      g.nodes.push(node);
      continue;
    }
    const wName = node.inputs[1]!;
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
    shared ??= {
      one: g.init(g.fresh('q_one'), Float32Array.of(1), []),
      zp: g.init(g.fresh('q_zp'), Uint8Array.of(128), [], 'uint8'),
      inv: g.init(g.fresh('q_inv127'), Float32Array.of(1 / 127), []),
      tiny: g.init(g.fresh('q_tiny'), Float32Array.of(1e-30), []),
    };
    const x = node.inputs[0]!;
    let xq = quantizedInputs.get(x);
    if (!xq) {
      // Row range from max and min (two reads of x, no |x| temporary).
      const hi = emit('ReduceMax', [x], { axes: { ints: [-1] }, keepdims: { i: 1 } });
      const lo = emit('ReduceMin', [x], { axes: { ints: [-1] }, keepdims: { i: 1 } });
      const amax = emit('Max', [hi, emit('Neg', [lo]), shared.tiny]);
      const scale = emit('Mul', [amax, shared.inv]);
      const unit = emit('Div', [x, scale]); // |unit| <= 127
      // QuantizeLinear with scale 1 does round-half-even, + 128 and the uint8 cast in one pass.
      xq = { q: emit('QuantizeLinear', [unit, shared.one, shared.zp]), scale };
      quantizedInputs.set(x, xq);
    }
    const y = emit('MatMulIntegerToFloat', [xq.q, qi.q, shared.one, qi.scale, shared.zp, qi.zp], {}, 'com.microsoft');
    g.nodes.push({ op: 'Mul', domain: '', name: node.name, inputs: [y, xq.scale], outputs: node.outputs, attrs: {} });
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
