// What a gradient rule gets: the graph to append to, forward shapes/types, and helpers that emit the
// small recurring patterns (typed constants, Shape, zeros, undoing a broadcast).
import { attr, type Graph, type NodeDef } from '../graph.js';
import { DTYPE_TO_ONNX, type DType, type ShapeInfo, type SymDim } from './shapes.js';

/**
 * A rule returns one gradient (or undefined) per node input, each with exactly the shape of that input.
 * `gy[k]` is the gradient of output k (undefined when nothing downstream reaches the loss);
 * `need[k]` says whether input k leads to a trainable value at all.
 */
export type GradRule = (c: GradContext, n: NodeDef, gy: (string | undefined)[], need: boolean[]) => (string | undefined)[];

export class GradContext {
  private readonly cache = new Map<string, string>();

  constructor(readonly g: Graph, readonly info: ShapeInfo) {}

  op(op: string, inputs: string[], attrs: Parameters<Graph['op']>[2] = {}): string {
    return this.g.op(op, inputs, attrs);
  }

  private cached(key: string, make: () => string): string {
    let v = this.cache.get(key);
    if (!v) this.cache.set(key, (v = make()));
    return v;
  }

  /** A float constant in the element type of the graph it meets (float64 test graphs get a Cast). */
  constF(values: number[], type: DType, dims: number[] = []): string {
    return this.cached(`f:${type}:${dims}:${values}`, () => {
      const f = this.g.constF(values, dims);
      return type === 'float32' ? f : this.g.op('Cast', [f], { to: attr.i(DTYPE_TO_ONNX[type]!) });
    });
  }

  i64(values: number[], dims?: number[]): string {
    return this.cached(`i:${dims}:${values}`, () => this.g.constI64(values, dims));
  }

  shape(v: string, start?: number, end?: number): string {
    return this.cached(`s:${v}:${start}:${end}`, () => {
      const a: Record<string, ReturnType<typeof attr.i>> = {};
      if (start !== undefined) a.start = attr.i(start);
      if (end !== undefined) a.end = attr.i(end);
      return this.g.op('Shape', [v], a);
    });
  }

  type(v: string): DType {
    return this.info.type(v);
  }

  dims(v: string): SymDim[] | undefined {
    return this.info.dims(v);
  }

  rank(v: string, why: string): number {
    return this.info.rank(v, why);
  }

  /** Statically known shape with numbers only, or undefined. */
  staticDims(v: string): number[] | undefined {
    const d = this.dims(v);
    return d && d.every((x) => typeof x === 'number') ? (d as number[]) : undefined;
  }

  /** Zeros shaped like forward value v, in v's type. */
  zerosLike(v: string): string {
    return this.op('Expand', [this.constF([0], this.type(v)), this.shape(v)]);
  }

  /** Reshape x to the (runtime) shape of forward value v; static when v's shape is fully known. */
  reshapeLike(x: string, v: string): string {
    const s = this.staticDims(v);
    return this.op('Reshape', [x, s ? this.i64(s) : this.shape(v)]);
  }

  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    return this.op('ReduceSum', [x, this.i64(axes)], { keepdims: attr.i(keepdims ? 1 : 0) });
  }

  /**
   * Undo broadcasting: sum gradient `grad` (shaped like forward value `gradLike`, or with dims `gradLike`)
   * down to the shape of forward value `target`. Static axes when the inferred dims settle it; otherwise
   * the axes are found at run time as those where the (left-padded) target shape differs from the gradient's.
   */
  sumTo(grad: string, gradLike: string | SymDim[], target: string): string {
    const G = typeof gradLike === 'string' ? this.dims(gradLike) : gradLike;
    const T = this.dims(target);
    if (!G || !T) throw new Error(`autodiff: ranks of "${gradLike}" and "${target}" are needed to undo a broadcast`);
    const lead = G.length - T.length;
    if (lead < 0) throw new Error(`autodiff: "${target}" has a higher rank than its broadcast result "${gradLike}"`);
    const axes = Array.from({ length: lead }, (_, i) => i);
    let dynamic = false;
    T.forEach((t, i) => {
      const gd = G[lead + i]!;
      if ((t !== null && t === gd) || gd === 1) return;
      if (t === 1) axes.push(lead + i);
      else dynamic = true;
    });
    if (dynamic) {
      const padded = lead ? this.op('Concat', [this.i64(new Array(lead).fill(1)), this.shape(target)], { axis: attr.i(0) }) : this.shape(target);
      const differs = this.op('Not', [this.op('Equal', [padded, this.op('Shape', [grad])])]);
      const ax = this.op('Reshape', [this.op('NonZero', [differs]), this.i64([-1])]);
      const r = this.op('ReduceSum', [grad, ax], { keepdims: attr.i(1), noop_with_empty_axes: attr.i(1) });
      return this.op('Reshape', [r, this.shape(target)]);
    }
    if (!axes.length) return grad;
    const r = this.reduceSum(grad, axes, true);
    return lead ? this.op('Squeeze', [r, this.i64(axes.slice(0, lead))]) : r;
  }

  /** Swap the last two axes. */
  transposeLast2(x: string, rank: number): string {
    const perm = Array.from({ length: rank }, (_, i) => i);
    [perm[rank - 1], perm[rank - 2]] = [perm[rank - 2]!, perm[rank - 1]!];
    return this.op('Transpose', [x], { perm: attr.ints(perm) });
  }
}
