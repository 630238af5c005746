// Inference-time constant folding. Towers add checkpoint tensors as initializers in their stored names and
// layout, and express every change of layout as nodes (Transpose of a Linear weight, Concat of q/k/v, the
// class row added to the position table, Conv followed by eval-mode BatchNorm): training differentiates
// through those nodes and so gets gradients for the stored tensors. For inference they are constants, so
// this pass evaluates them once into new initializers (named after the node's output) and drops the stored
// tensors nothing reads any more. It runs before quantization and fp16 storage, which therefore see the
// same MatMul weights ([in, out], packed) as when towers wrote them pre-transposed.
import type { Graph, Initializer, NodeDef, TensorData } from './graph.js';

export interface FoldOptions {
  /** Fold eval-mode BatchNormalization into the Conv before it (default true). */
  batchNorm?: boolean;
}

export interface FoldReport {
  /** Nodes evaluated into initializers. */
  folded: number;
  /** BatchNormalization nodes merged into their Conv. */
  batchNorms: number;
}

type Attrs = NodeDef['attrs'];
const ints = (a: Attrs, k: string) => (a[k] as { ints?: number[] } | undefined)?.ints;
const int = (a: Attrs, k: string, d: number) => (a[k] as { i?: number } | undefined)?.i ?? d;
const float = (a: Attrs, k: string, d: number) => (a[k] as { f?: number } | undefined)?.f ?? d;
const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

/** Element type and a same-typed empty array of n elements. */
function like(t: Initializer, n: number): TensorData {
  const C = t.data.constructor as new (n: number) => TensorData;
  return new C(n);
}

function intsOf(t: Initializer | undefined): number[] | undefined {
  if (!t || t.type !== 'int64') return undefined;
  return Array.from(t.data as BigInt64Array, Number);
}

/** out[idx] = in[map(idx)] over every output index: the one loop behind Transpose, Pad, Gather and Concat. */
function gatherIndex(src: Initializer, outDims: number[], source: (idx: number[]) => number): TensorData {
  const out = like(src, size(outDims));
  const idx = new Array<number>(outDims.length).fill(0);
  const pad = src.type === 'int64' ? 0n : 0;
  for (let k = 0; k < out.length; k++) {
    const j = source(idx);
    (out as unknown as (number | bigint)[])[k] = j < 0 ? pad : (src.data as unknown as (number | bigint)[])[j]!;
    for (let d = outDims.length - 1; d >= 0; d--) {
      if (++idx[d]! < outDims[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

type Result = { dims: number[]; data: TensorData } | undefined;

/** Matrix transpose, blocked so that reads and writes both stay cache-friendly on large weights. */
function transpose2d(src: TensorData, rows: number, cols: number, out: TensorData): void {
  const [s, o] = [src as Float32Array, out as Float32Array];
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(i0 + B, rows);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(j0 + B, cols);
      for (let i = i0; i < i1; i++) {
        const base = i * cols;
        for (let j = j0; j < j1; j++) o[j * rows + i] = s[base + j]!;
      }
    }
  }
}

function transpose(x: Initializer, a: Attrs): Result {
  const r = x.dims.length;
  const perm = ints(a, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
  if (r === 2 && perm[0] === 1) {
    const out = like(x, x.data.length);
    transpose2d(x.data, x.dims[0]!, x.dims[1]!, out);
    return { dims: [x.dims[1]!, x.dims[0]!], data: out };
  }
  const dims = perm.map((p) => x.dims[p]!);
  const st = strides(x.dims);
  return { dims, data: gatherIndex(x, dims, (idx) => idx.reduce((s, v, i) => s + v * st[perm[i]!]!, 0)) };
}

function concat(xs: Initializer[], a: Attrs): Result {
  const r = xs[0]!.dims.length;
  const axis = (int(a, 'axis', 0) + r) % r;
  if (xs.some((x) => x.type !== xs[0]!.type || x.dims.length !== r)) return undefined;
  const dims = [...xs[0]!.dims];
  dims[axis] = xs.reduce((s, x) => s + x.dims[axis]!, 0);
  // Row-major: the output is, for each index before `axis`, the inputs' blocks one after the other.
  const outer = size(dims.slice(0, axis));
  const out = like(xs[0]!, size(dims));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const x of xs) {
      const block = size(x.dims.slice(axis));
      (out as Float32Array).set((x.data as Float32Array).subarray(i * block, (i + 1) * block), o);
      o += block;
    }
  }
  return { dims, data: out };
}

function pad(x: Initializer, pads: number[] | undefined, a: Attrs, value: Initializer | undefined): Result {
  const r = x.dims.length;
  if (!pads || pads.length !== 2 * r || pads.some((p) => p < 0) || ((a.mode as { s?: string } | undefined)?.s ?? 'constant') !== 'constant') return undefined;
  if (value && size(value.dims) !== 1) return undefined;
  const dims = x.dims.map((d, i) => d + pads[i]! + pads[i + r]!);
  const st = strides(x.dims);
  const data = gatherIndex(x, dims, (idx) => {
    let j = 0;
    for (let i = 0; i < r; i++) {
      const s = idx[i]! - pads[i]!;
      if (s < 0 || s >= x.dims[i]!) return -1;
      j += s * st[i]!;
    }
    return j;
  });
  if (value) {
    const v = (value.data as unknown as (number | bigint)[])[0]!;
    if (v !== 0 && v !== 0n) return undefined; // only the default zero fill is used by our towers
  }
  return { dims, data };
}

function gather(x: Initializer, indices: Initializer, a: Attrs): Result {
  const idx = intsOf(indices);
  if (!idx) return undefined;
  const r = x.dims.length;
  const axis = (int(a, 'axis', 0) + r) % r;
  const n = x.dims[axis]!;
  if (idx.some((i) => i < -n || i >= n)) return undefined;
  const dims = [...x.dims.slice(0, axis), ...indices.dims, ...x.dims.slice(axis + 1)];
  const st = strides(x.dims);
  const q = indices.dims.length;
  const ist = strides(indices.dims);
  return {
    dims,
    data: gatherIndex(x, dims, (o) => {
      let flat = 0;
      for (let i = 0; i < q; i++) flat += o[axis + i]! * ist[i]!;
      const sel = (idx[flat]! + n) % n;
      let j = sel * st[axis]!;
      for (let i = 0; i < axis; i++) j += o[i]! * st[i]!;
      for (let i = axis + 1; i < r; i++) j += o[i + q - 1]! * st[i]!;
      return j;
    }),
  };
}

/** numpy broadcasting of float32 elementwise arithmetic. */
function arith(op: string, xs: Initializer[]): Result {
  if (xs.length !== 2 || xs.some((x) => x.type !== 'float32')) return undefined;
  const [a, b] = xs as [Initializer, Initializer];
  const r = Math.max(a.dims.length, b.dims.length);
  const padL = (d: number[]) => [...new Array<number>(r - d.length).fill(1), ...d];
  const [da, db] = [padL(a.dims), padL(b.dims)];
  const dims: number[] = [];
  for (let i = 0; i < r; i++) {
    if (da[i] !== db[i] && da[i] !== 1 && db[i] !== 1) return undefined;
    dims.push(Math.max(da[i]!, db[i]!));
  }
  const [sa, sb] = [strides(da), strides(db)];
  const f = { Add: (x: number, y: number) => x + y, Sub: (x: number, y: number) => x - y, Mul: (x: number, y: number) => x * y, Div: (x: number, y: number) => x / y }[op]!;
  const out = new Float32Array(size(dims));
  const idx = new Array<number>(r).fill(0);
  const [A, B] = [a.data as Float32Array, b.data as Float32Array];
  for (let k = 0; k < out.length; k++) {
    let ia = 0;
    let ib = 0;
    for (let i = 0; i < r; i++) {
      if (da[i] !== 1) ia += idx[i]! * sa[i]!;
      if (db[i] !== 1) ib += idx[i]! * sb[i]!;
    }
    out[k] = f(A[ia]!, B[ib]!);
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d]! < dims[d]!) break;
      idx[d] = 0;
    }
  }
  return { dims, data: out };
}

function reshapeDims(x: Initializer, shape: number[] | undefined, allowZero: boolean): number[] | undefined {
  if (!shape) return undefined;
  const dims = shape.map((d, i) => (d === 0 && !allowZero ? x.dims[i]! : d));
  const known = dims.filter((d) => d !== -1);
  if (dims.length - known.length > 1) return undefined;
  const rest = size(known);
  const out = dims.map((d) => (d === -1 ? size(x.dims) / rest : d));
  return size(out) === size(x.dims) && out.every(Number.isInteger) ? out : undefined;
}

function squeezeDims(x: Initializer, axes: number[] | undefined): number[] {
  const r = x.dims.length;
  const drop = new Set((axes ?? x.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a + r) % r));
  return x.dims.filter((_, i) => !drop.has(i));
}

function unsqueezeDims(x: Initializer, axes: number[] | undefined): number[] | undefined {
  if (!axes) return undefined;
  const r = x.dims.length + axes.length;
  const at = new Set(axes.map((a) => (a + r) % r));
  const dims: number[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) dims.push(at.has(i) ? 1 : x.dims[j++]!);
  return dims;
}

/** The value of a node whose inputs are all initializers, or undefined when it is not one we fold. */
function evaluate(n: NodeDef, ins: (Initializer | undefined)[]): Result {
  const [x] = ins as [Initializer];
  const second = () => intsOf(ins[1]);
  switch (n.op) {
    case 'Transpose': return transpose(x, n.attrs);
    case 'Concat': return concat(ins as Initializer[], n.attrs);
    case 'Pad': return pad(x, second(), n.attrs, ins[2]);
    case 'Gather': return gather(x, ins[1]!, n.attrs);
    case 'Add': case 'Sub': case 'Mul': case 'Div': return arith(n.op, ins as Initializer[]);
    case 'Reshape': {
      const dims = reshapeDims(x, second(), int(n.attrs, 'allowzero', 0) === 1);
      return dims && { dims, data: x.data };
    }
    case 'Squeeze': return { dims: squeezeDims(x, ins[1] ? second() : undefined), data: x.data };
    case 'Unsqueeze': {
      const dims = unsqueezeDims(x, second());
      return dims && { dims, data: x.data };
    }
    case 'Identity': return { dims: x.dims, data: x.data };
    default: return undefined;
  }
}

/**
 * Conv (no group, float32 initializer weight) whose only reader is an eval-mode BatchNormalization with
 * initializer statistics: scale the weight per output channel and add a bias, in float64, rounded once
 * (the same numbers as the conv-then-BN up to float32 rounding).
 */
function foldBatchNorm(g: Graph, conv: NodeDef, bn: NodeDef): boolean {
  const w = g.initializers.get(conv.inputs[1]!);
  const b = conv.inputs[2] ? g.initializers.get(conv.inputs[2]) : undefined;
  const [gamma, beta, mean, variance] = bn.inputs.slice(1, 5).map((i) => g.initializers.get(i));
  if (!w || w.type !== 'float32' || (conv.inputs[2] && !b) || !gamma || !beta || !mean || !variance) return false;
  if (int(bn.attrs, 'training_mode', 0) !== 0 || bn.outputs.filter(Boolean).length !== 1) return false;
  const cout = w.dims[0]!;
  if ([gamma, beta, mean, variance].some((t) => t.type !== 'float32' || t.data.length !== cout)) return false;
  const eps = float(bn.attrs, 'epsilon', 1e-5);
  const cw = w.data as Float32Array;
  const per = cw.length / cout;
  const fw = new Float32Array(cw.length);
  const fb = new Float32Array(cout);
  const [G, Bt, M, V] = [gamma, beta, mean, variance].map((t) => t.data as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array];
  for (let o = 0; o < cout; o++) {
    const s = G[o]! / Math.sqrt(V[o]! + eps);
    for (let j = 0; j < per; j++) fw[o * per + j] = cw[o * per + j]! * s;
    fb[o] = b ? ((b.data as Float32Array)[o]! - M[o]!) * s + Bt[o]! : Bt[o]! - M[o]! * s;
  }
  const stem = w.name.endsWith('.weight') ? w.name.slice(0, -'.weight'.length) : w.name;
  const wName = g.init(`${stem}.weight+bn`, fw, w.dims);
  const bName = g.init(`${stem}.bias+bn`, fb, [cout]);
  conv.inputs = [conv.inputs[0]!, wName, bName];
  conv.outputs = [bn.outputs[0]!];
  return true;
}

/** Evaluate constant subgraphs into initializers (see the file comment); mutates and returns `g`'s report. */
export function foldConstants(g: Graph, opts: FoldOptions = {}): FoldReport {
  const report: FoldReport = { folded: 0, batchNorms: 0 };
  const outputs = new Set(g.outputs.map((o) => o.name));
  const candidates = new Set<string>();
  const readers = new Map<string, NodeDef[]>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) (readers.get(i) ?? readers.set(i, []).get(i)!).push(n);

  const kept: NodeDef[] = [];
  const dropped = new Set<NodeDef>();
  for (const n of g.nodes) {
    if (dropped.has(n)) continue;
    const ins = n.inputs.map((i) => (i ? g.initializers.get(i) : undefined));
    const allConst = !n.domain && n.inputs.length > 0 && n.inputs.every((i, k) => !i || ins[k]) && n.outputs.length === 1 && !outputs.has(n.outputs[0]!);
    const value = allConst ? evaluate(n, ins) : undefined;
    if (value && !g.initializers.has(n.outputs[0]!)) {
      g.init(n.outputs[0]!, value.data, value.dims, ins[0]!.type);
      n.inputs.forEach((i) => i && candidates.add(i));
      report.folded++;
      continue;
    }
    if ((opts.batchNorm ?? true) && n.op === 'Conv' && !n.domain && int(n.attrs, 'group', 1) === 1 && !outputs.has(n.outputs[0]!)) {
      const next = readers.get(n.outputs[0]!);
      const bn = next?.length === 1 && next[0]!.op === 'BatchNormalization' && !next[0]!.domain && next[0]!.inputs[0] === n.outputs[0] ? next[0]! : undefined;
      if (bn) {
        const inputs = [...n.inputs];
        if (foldBatchNorm(g, n, bn)) {
          dropped.add(bn);
          [...inputs.slice(1), ...bn.inputs.slice(1)].forEach((i) => i && candidates.add(i));
          report.batchNorms++;
        }
      }
    }
    kept.push(n);
  }
  g.nodes.splice(0, g.nodes.length, ...kept);
  // Stored tensors, and folded values read only by later folds (a Concat then transposed), nothing reads now.
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const name of candidates) {
    if (read.has(name) || outputs.has(name)) continue;
    g.initializers.delete(name);
    g.weights.delete(name);
  }
  return report;
}

