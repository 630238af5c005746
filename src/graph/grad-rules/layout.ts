// Ops that only move, select or pad elements: their gradients move the gradient back.
import { attr, type NodeDef } from '../graph.js';
import type { GradContext, GradRule } from './context.js';

const ints = (n: NodeDef, k: string) => (n.attrs[k] as { ints?: number[] } | undefined)?.ints;
const int = (n: NodeDef, k: string, d: number) => (n.attrs[k] as { i?: number } | undefined)?.i ?? d;
const norm = (a: number, r: number) => (a < 0 ? a + r : a);

const reshapeBack: GradRule = (c, n, [gy]) => [c.reshapeLike(gy!, n.inputs[0]!)];

const transpose: GradRule = (c, n, [gy]) => {
  const r = c.rank(n.inputs[0]!, 'Transpose');
  const perm = ints(n, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
  const inv = new Array<number>(r);
  perm.forEach((p, i) => (inv[p] = i));
  return [c.op('Transpose', [gy!], { perm: attr.ints(inv) })];
};

/** Length along `axis` of value v, as a [1] int64 tensor (constant when known). */
function extent(c: GradContext, v: string, axis: number): string {
  const d = c.dims(v)?.[axis];
  return typeof d === 'number' ? c.i64([d]) : c.shape(v, axis, axis + 1);
}

const cat0 = (c: GradContext, parts: string[]) => (parts.length === 1 ? parts[0]! : c.op('Concat', parts, { axis: attr.i(0) }));

const split: GradRule = (c, n, gys) => {
  const r = c.rank(n.inputs[0]!, 'Split');
  const axis = norm(int(n, 'axis', 0), r);
  const parts = n.outputs.map((o, k) => gys[k] ?? c.zerosLike(o));
  return [c.op('Concat', parts, { axis: attr.i(axis) })];
};

const concat: GradRule = (c, n, [gy], need) => {
  const r = c.rank(n.inputs[0]!, 'Concat');
  const axis = norm(int(n, 'axis', 0), r);
  const sizes = n.inputs.map((x) => c.dims(x)?.[axis]);
  const splitSizes = sizes.every((s) => typeof s === 'number') ? c.i64(sizes as number[]) : cat0(c, n.inputs.map((x) => extent(c, x, axis)));
  const outs = c.g.node('Split', [gy!, splitSizes], { axis: attr.i(axis) }, { outputs: n.inputs.length });
  return outs.map((o, k) => (need[k] ? o : undefined));
};

/**
 * Gather's gradient scatters rows back with reduction='add', so repeated indices (the same token twice
 * in a batch) accumulate instead of overwriting each other.
 */
const gather: GradRule = (c, n, [gy], need) => {
  if (!need[0]) return [undefined, undefined];
  const [data, idx] = n.inputs as [string, string];
  const D = c.dims(data);
  if (!D) throw new Error(`autodiff: Gather "${n.name}" needs the rank of its data`);
  const r = D.length;
  const a = norm(int(n, 'axis', 0), r);
  // gy: D[:a] + idx.shape + D[a+1:]  ->  updates D[:a] + [numel(idx)] + D[a+1:]
  const known = D.every((d, i) => i === a || typeof d === 'number');
  const updShape = known
    ? c.i64(D.map((d, i) => (i === a ? -1 : (d as number))))
    : cat0(c, D.map((_, i) => (i === a ? c.i64([-1]) : extent(c, data, i))));
  const upd = c.op('Reshape', [gy!, updShape]);
  const idxShape = D.map((_, i) => (i === a ? -1 : 1));
  const ix = c.op('Expand', [c.op('Reshape', [idx, c.i64(idxShape)]), c.op('Shape', [upd])]);
  const gx = c.op('ScatterElements', [c.zerosLike(data), ix, upd], { axis: attr.i(a), reduction: attr.s('add') });
  return [gx, undefined];
};

/**
 * Slice (steps 1): pad the gradient back with zeros. The leading pad is each start clamped into
 * [0, dim] (computed at run time when the start or dim is not a known constant); the trailing pad is
 * whatever remains of the input.
 */
const slice: GradRule = (c, n, [gy]) => {
  const [data, starts, , axesIn, stepsIn] = n.inputs as [string, string, string, string | undefined, string | undefined];
  const r = c.rank(data, 'Slice');
  const steps = stepsIn ? c.info.constInts(stepsIn) : undefined;
  if (stepsIn && (!steps || steps.some((s) => s !== 1))) throw new Error(`autodiff: Slice "${n.name}" with steps other than 1 is not supported`);
  const startVals = c.info.values.get(starts);
  const k = startVals?.length ?? c.dims(starts)?.[0];
  const axes = axesIn ? c.info.constInts(axesIn) : typeof k === 'number' ? Array.from({ length: k }, (_, i) => i) : undefined;
  if (!axes) throw new Error(`autodiff: Slice "${n.name}" needs constant axes`);
  const D = c.dims(data)!;
  const begin: (number | string)[] = new Array(r).fill(0);
  axes.forEach((a0, j) => {
    const a = norm(a0, r);
    const s = startVals?.[j];
    const d = D[a];
    if (typeof s === 'number' && s >= 0 && (typeof d !== 'number' || s <= d)) begin[a] = s;
    else if (typeof s === 'number' && typeof d === 'number') begin[a] = Math.min(Math.max(s < 0 ? s + d : s, 0), d);
    else {
      const sj = c.op('Slice', [starts, c.i64([j]), c.i64([j + 1])]);
      const dim = c.shape(data, a, a + 1);
      const wrapped = c.op('Where', [c.op('Less', [sj, c.i64([0])]), c.op('Add', [sj, dim]), sj]);
      begin[a] = c.op('Min', [c.op('Max', [wrapped, c.i64([0])]), dim]);
    }
  });
  const staticBegin = begin.every((b) => typeof b === 'number');
  const beginVec = staticBegin ? c.i64(begin as number[]) : cat0(c, begin.map((b) => (typeof b === 'number' ? c.i64([b]) : b)));
  const Y = c.staticDims(n.outputs[0]!);
  const X = c.staticDims(data);
  const endVec = staticBegin && X && Y
    ? c.i64(X.map((x, i) => x - (begin[i] as number) - Y[i]!))
    : c.op('Sub', [c.op('Sub', [c.shape(data), beginVec]), c.op('Shape', [gy!])]);
  return [c.op('Pad', [gy!, c.op('Concat', [beginVec, endVec], { axis: attr.i(0) })])];
};

/** Constant-mode Pad with non-negative pads: the gradient is the un-padded window. */
const pad: GradRule = (c, n, [gy], need) => {
  const mode = (n.attrs.mode as { s?: string } | undefined)?.s ?? 'constant';
  if (mode !== 'constant') throw new Error(`autodiff: Pad "${n.name}" in mode ${mode} is not supported`);
  if (need[2]) throw new Error(`autodiff: Pad "${n.name}": no gradient for the padding value`);
  const [x, pads] = n.inputs as [string, string];
  const r = c.rank(x, 'Pad');
  const p = c.info.constInts(pads);
  if (p?.some((v) => v < 0)) throw new Error(`autodiff: Pad "${n.name}" with negative pads is not supported`);
  const begin = p ? c.i64(p.slice(0, r)) : c.op('Slice', [pads, c.i64([0]), c.i64([r])]);
  const X = c.staticDims(x);
  const end = p && X ? c.i64(X.map((d, i) => d + p[i]!)) : c.op('Add', [begin, c.shape(x)]);
  return [c.op('Slice', [gy!, begin, end, c.i64(Array.from({ length: r }, (_, i) => i))])];
};

export const layoutRules: Record<string, GradRule> = {
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Flatten: reshapeBack,
  Transpose: transpose,
  Split: split,
  Concat: concat,
  Gather: gather,
  Slice: slice,
  Pad: pad,
};
