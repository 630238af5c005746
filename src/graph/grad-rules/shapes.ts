// Static type and shape inference over the forward graph, just enough for the backward pass.
// Dims are numbers, symbols (graph input dims such as 'batch', or a Shape() of them), or null (unknown).
// Gradient rules use these to pick static ops where shapes prove it (no broadcast to undo, known ranks),
// and fall back to dynamic Shape-based ops otherwise, so ranks must be known but dims need not be.
import type { Graph, NodeDef } from '../graph.js';

export type SymDim = number | string | null;
/** 'float64' is not an ElemType of the IR (no initializers of it) but appears inside graphs via Cast. */
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export interface ValueMeta {
  type: DType;
  dims?: SymDim[];
}

const ONNX_TO_DTYPE: Record<number, DType> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' };
export const DTYPE_TO_ONNX: Partial<Record<DType, number>> = { float32: 1, float64: 11, float16: 10, int64: 7, int32: 6, bool: 9 };

export const isFloat = (t: DType): boolean => t === 'float32' || t === 'float64' || t === 'float16';

const SAME_SHAPE = new Set(['Identity', 'Neg', 'Exp', 'Log', 'Sqrt', 'Sigmoid', 'Tanh', 'Erf', 'Relu', 'Softmax', 'LogSoftmax',
  'Abs', 'Reciprocal', 'Not', 'Sign', 'Clip', 'EyeLike', 'ScatterElements', 'ScatterND', 'Dropout', 'CumSum']);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Greater', 'Less', 'And', 'Or']);
const BOOL_OUT = new Set(['Equal', 'Greater', 'Less', 'Not', 'And', 'Or', 'GreaterOrEqual', 'LessOrEqual']);
const REDUCE = new Set(['ReduceSum', 'ReduceMean', 'ReduceSumSquare', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL2', 'ReduceLogSumExp']);

function sameDim(a: SymDim, b: SymDim): boolean {
  return a !== null && a === b;
}

export function broadcastDims(shapes: SymDim[][]): SymDim[] {
  const r = Math.max(...shapes.map((s) => s.length));
  const out: SymDim[] = [];
  for (let i = 0; i < r; i++) {
    let d: SymDim = 1;
    for (const s of shapes) {
      const k = s.length - r + i;
      const e = k < 0 ? 1 : s[k]!;
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (!sameDim(d, e)) d = typeof d === 'number' ? d : typeof e === 'number' ? e : null;
    }
    out.push(d);
  }
  return out;
}

/** Resolve Reshape's target: 0 copies the input dim, -1 is whatever is left (when the symbols cancel). */
function reshapeDims(input: SymDim[] | undefined, target: SymDim[]): SymDim[] {
  const out = target.map((t, i) => (t === 0 ? (input?.[i] ?? null) : t));
  const free = out.indexOf(-1);
  if (free < 0) return out;
  out[free] = null;
  if (!input || input.some((d) => d === null) || out.some((d, i) => i !== free && d === null)) return out;
  let num = 1;
  const syms: string[] = [];
  for (const d of input) typeof d === 'number' ? (num *= d) : syms.push(d as string);
  for (const [i, d] of out.entries()) {
    if (i === free) continue;
    if (typeof d === 'number') num /= d;
    else {
      const k = syms.indexOf(d as string);
      if (k < 0) return out;
      syms.splice(k, 1);
    }
  }
  if (syms.length === 0 && Number.isInteger(num)) out[free] = num;
  else if (syms.length === 1 && num === 1) out[free] = syms[0]!;
  return out;
}

const normAxis = (a: number, rank: number): number => (a < 0 ? a + rank : a);

export class ShapeInfo {
  readonly meta = new Map<string, ValueMeta>();
  /** Known contents of small int64 tensors (shape vectors, axes, pads), possibly symbolic. */
  readonly values = new Map<string, SymDim[]>();

  constructor(private readonly g: Graph) {
    for (const v of g.inputs) this.meta.set(v.name, { type: v.type, dims: v.dims?.map((d) => d) });
    for (const t of g.initializers.values()) {
      this.meta.set(t.name, { type: t.type, dims: [...t.dims] });
      if (t.type === 'int64' && t.data.length <= 64) this.values.set(t.name, Array.from(t.data as BigInt64Array, Number));
    }
    for (const n of g.nodes) this.infer(n);
  }

  type(v: string): DType {
    const m = this.meta.get(v);
    if (!m) throw new Error(`autodiff: no type known for value "${v}"`);
    return m.type;
  }

  dims(v: string): SymDim[] | undefined {
    return this.meta.get(v)?.dims;
  }

  rank(v: string, why: string): number {
    const d = this.dims(v);
    if (!d) throw new Error(`autodiff: the rank of "${v}" is unknown (needed for ${why})`);
    return d.length;
  }

  /** Constant int64 contents (numbers only), or undefined when not a known constant. */
  constInts(v: string | undefined): number[] | undefined {
    if (!v) return undefined;
    const t = this.g.initializers.get(v);
    if (!t || t.type !== 'int64') return undefined;
    return Array.from(t.data as BigInt64Array, Number);
  }

  /** Give `name` the type, dims and known contents of `like` (a recomputed copy of it), or `meta`. */
  alias(name: string, like?: string, meta?: ValueMeta): void {
    const m = like !== undefined ? this.meta.get(like) : meta;
    if (m) this.meta.set(name, m);
    const v = like !== undefined ? this.values.get(like) : undefined;
    if (v) this.values.set(name, v);
  }

  private set(v: string, type: DType, dims?: SymDim[]): void {
    this.meta.set(v, { type, dims });
  }

  private infer(n: NodeDef): void {
    const ins = n.inputs.map((i) => (i ? this.meta.get(i) : undefined));
    const d0 = ins[0]?.dims;
    const t0: DType = ins[0]?.type ?? 'float32';
    const out = n.outputs[0]!;
    const ai = (k: string, dflt: number): number => ((n.attrs[k] as { i?: number })?.i ?? dflt);
    const aints = (k: string): number[] | undefined => (n.attrs[k] as { ints?: number[] })?.ints;
    const axesOf = (): number[] | undefined => aints('axes') ?? this.constInts(n.inputs[1]);
    if (SAME_SHAPE.has(n.op)) return this.set(out, BOOL_OUT.has(n.op) ? 'bool' : t0, d0);
    if (BROADCAST.has(n.op) || n.op === 'Where') {
      const shapes = ins.map((m) => m?.dims);
      const type = BOOL_OUT.has(n.op) ? 'bool' : n.op === 'Where' ? (ins[1]?.type ?? 'float32') : t0;
      return this.set(out, type, shapes.every((s) => s) ? broadcastDims(shapes as SymDim[][]) : undefined);
    }
    switch (n.op) {
      case 'Cast':
        return this.set(out, ONNX_TO_DTYPE[ai('to', 1)] ?? 'float32', d0);
      case 'MatMul': {
        const [a, b] = [d0, ins[1]?.dims];
        if (!a || !b || a.length < 2 || b.length < 2) return this.set(out, t0, undefined);
        return this.set(out, t0, [...broadcastDims([a.slice(0, -2), b.slice(0, -2)]), a[a.length - 2]!, b[b.length - 1]!]);
      }
      case 'LayerNormalization': {
        this.set(out, t0, d0);
        const axis = d0 ? normAxis(ai('axis', -1), d0.length) : 0;
        const stat = d0?.map((d, i) => (i >= axis ? 1 : d));
        for (const o of n.outputs.slice(1)) if (o) this.set(o, 'float32', stat);
        return;
      }
      case 'Reshape': {
        const target = this.values.get(n.inputs[1]!);
        return this.set(out, t0, target ? reshapeDims(d0, target) : undefined);
      }
      case 'Transpose': {
        const perm = aints('perm') ?? d0?.map((_, i) => d0.length - 1 - i);
        return this.set(out, t0, d0 && perm ? perm.map((p) => d0[p]!) : undefined);
      }
      case 'Split': {
        const axis = d0 ? normAxis(ai('axis', 0), d0.length) : 0;
        const sizes = this.constInts(n.inputs[1]) ?? aints('split');
        n.outputs.forEach((o, k) => this.set(o, t0, d0 && sizes ? d0.map((d, i) => (i === axis ? sizes[k]! : d)) : undefined));
        return;
      }
      case 'Squeeze': {
        const axes = axesOf();
        if (!d0) return this.set(out, t0, undefined);
        const ax = axes?.map((a) => normAxis(a, d0.length)) ?? d0.flatMap((d, i) => (d === 1 ? [i] : []));
        return this.set(out, t0, d0.filter((_, i) => !ax.includes(i)));
      }
      case 'Unsqueeze': {
        const axes = axesOf();
        if (!d0 || !axes) return this.set(out, t0, undefined);
        const r = d0.length + axes.length;
        const ax = axes.map((a) => normAxis(a, r));
        const rest = [...d0];
        return this.set(out, t0, Array.from({ length: r }, (_, i) => (ax.includes(i) ? 1 : rest.shift()!)));
      }
      case 'Gather': {
        const idx = ins[1]?.dims;
        if (!d0 || !idx) return this.set(out, t0, undefined);
        const a = normAxis(ai('axis', 0), d0.length);
        return this.set(out, t0, [...d0.slice(0, a), ...idx, ...d0.slice(a + 1)]);
      }
      case 'Slice':
        return this.set(out, t0, this.sliceDims(n, d0));
      case 'Pad': {
        const pads = this.constInts(n.inputs[1]);
        if (!d0 || !pads) return this.set(out, t0, d0?.map(() => null));
        const r = d0.length;
        return this.set(out, t0, d0.map((d, i) => (pads[i] === 0 && pads[i + r] === 0 ? d : typeof d === 'number' ? d + pads[i]! + pads[i + r]! : null)));
      }
      case 'Conv': {
        const w = ins[1]?.dims;
        if (!d0 || !w) return this.set(out, t0, undefined);
        const k = w.slice(2);
        const s = aints('strides') ?? k.map(() => 1);
        const p = aints('pads') ?? k.map(() => 0).concat(k.map(() => 0));
        const dl = aints('dilations') ?? k.map(() => 1);
        const sp = d0.slice(2).map((d, i) => (typeof d === 'number' && typeof k[i] === 'number'
          ? Math.floor((d + p[i]! + p[i + k.length]! - dl[i]! * ((k[i] as number) - 1) - 1) / s[i]!) + 1 : null));
        return this.set(out, t0, [d0[0]!, w[0]!, ...sp]);
      }
      case 'Concat': {
        const all = ins.map((m) => m?.dims);
        if (all.some((x) => !x)) return this.set(out, t0, undefined);
        const ds = all as SymDim[][];
        const a = normAxis(ai('axis', 0), ds[0]!.length);
        const dims = ds[0]!.map((d, i) => (i !== a ? d : ds.reduce<SymDim>((s, x) => (typeof s === 'number' && typeof x[i] === 'number' ? s + (x[i] as number) : null), 0)));
        this.set(out, t0, dims);
        const vals = n.inputs.map((v) => this.values.get(v));
        if (a === 0 && vals.every((v) => v)) this.values.set(out, vals.flat() as SymDim[]);
        return;
      }
      case 'Shape': {
        if (!d0) return this.set(out, 'int64', [null]);
        const r = d0.length;
        const start = normAxis(ai('start', 0), r);
        const end = n.attrs.end ? normAxis(ai('end', r), r) : r;
        const v = d0.slice(start, end);
        this.set(out, 'int64', [v.length]);
        this.values.set(out, v);
        return;
      }
      case 'Size':
        return this.set(out, 'int64', []);
      case 'ConstantOfShape': {
        const t = (n.attrs.value as { t?: { type: DType } })?.t?.type ?? 'float32';
        return this.set(out, t, this.values.get(n.inputs[0]!));
      }
      case 'Expand': {
        const s = this.values.get(n.inputs[1]!);
        return this.set(out, t0, d0 && s ? broadcastDims([d0, s]) : undefined);
      }
      case 'NonZero':
        return this.set(out, 'int64', d0 ? [d0.length, null] : undefined);
      case 'Constant': {
        const t = (n.attrs.value as { t?: { type: DType; dims: number[] } })?.t;
        return this.set(out, t?.type ?? 'float32', t ? [...t.dims] : undefined);
      }
    }
    if (REDUCE.has(n.op)) {
      if (!d0) return this.set(out, t0, undefined);
      const axes = axesOf();
      const keep = ai('keepdims', 1) === 1;
      const ax = axes && axes.length ? axes.map((a) => normAxis(a, d0.length)) : d0.map((_, i) => i);
      return this.set(out, t0, keep ? d0.map((d, i) => (ax.includes(i) ? 1 : d)) : d0.filter((_, i) => !ax.includes(i)));
    }
    for (const o of n.outputs) if (o) this.set(o, t0, undefined);
  }

  private sliceDims(n: NodeDef, d0: SymDim[] | undefined): SymDim[] | undefined {
    if (!d0) return undefined;
    const starts = this.values.get(n.inputs[1]!);
    const ends = this.values.get(n.inputs[2]!);
    const axes = n.inputs[3] ? this.constInts(n.inputs[3]) : starts?.map((_, i) => i);
    const steps = n.inputs[4] ? this.constInts(n.inputs[4]) : undefined;
    const out = [...d0];
    if (!starts || !ends || !axes || (steps && steps.some((s) => s !== 1))) {
      const sliced = axes?.map((a) => normAxis(a, d0.length));
      return out.map((d, i) => (!sliced || sliced.includes(i) ? null : d));
    }
    axes.forEach((a0, k) => {
      const a = normAxis(a0, d0.length);
      const [s, e, d] = [starts[k]!, ends[k]!, d0[a]!];
      if (s === 0 && typeof e === 'string') out[a] = e; // rows [0, n) of a table: n = a symbolic length
      else if (typeof s === 'number' && typeof e === 'number' && typeof d === 'number') {
        const cl = (x: number) => Math.min(Math.max(x < 0 ? x + d : x, 0), d);
        out[a] = Math.max(cl(e) - cl(s), 0);
      } else out[a] = null;
    });
    return out;
  }
}
