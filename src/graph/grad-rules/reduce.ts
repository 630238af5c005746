// Reductions and the normalizations built on them (Softmax, LogSoftmax, LayerNormalization).
import { attr, type NodeDef } from '../graph.js';
import { DTYPE_TO_ONNX } from './shapes.js';
import type { GradContext, GradRule } from './context.js';

const norm = (a: number, r: number) => (a < 0 ? a + r : a);

/** Reduced axes (normalized), from the attribute (opset < 18 style) or a constant axes input. */
function reducedAxes(c: GradContext, n: NodeDef, r: number): number[] {
  const fromAttr = (n.attrs.axes as { ints?: number[] } | undefined)?.ints;
  const fromInput = n.inputs[1] ? c.info.constInts(n.inputs[1]) : undefined;
  if (n.inputs[1] && !fromInput) throw new Error(`autodiff: ${n.op} "${n.name}" needs constant axes`);
  const axes = fromAttr ?? fromInput ?? [];
  if (axes.length) return axes.map((a) => norm(a, r)).sort((a, b) => a - b);
  const noop = (n.attrs.noop_with_empty_axes as { i?: number } | undefined)?.i === 1;
  return noop ? [] : Array.from({ length: r }, (_, i) => i);
}

/** Broadcast the reduced gradient back over the input's shape. */
function expandBack(c: GradContext, n: NodeDef, gy: string): { g: string; axes: number[] } {
  const x = n.inputs[0]!;
  const r = c.rank(x, n.op);
  const axes = reducedAxes(c, n, r);
  const keep = ((n.attrs.keepdims as { i?: number } | undefined)?.i ?? 1) === 1;
  const k = keep || !axes.length ? gy : c.op('Unsqueeze', [gy, c.i64(axes)]);
  return { g: c.op('Expand', [k, c.shape(x)]), axes };
}

const reduceSum: GradRule = (c, n, [gy]) => [expandBack(c, n, gy!).g];

const reduceMean: GradRule = (c, n, [gy]) => {
  const x = n.inputs[0]!;
  const { g, axes } = expandBack(c, n, gy!);
  const X = c.dims(x)!;
  const counts = axes.map((a) => X[a]);
  const t = c.type(x);
  const count = counts.every((d) => typeof d === 'number')
    ? c.constF([(counts as number[]).reduce((p, d) => p * d, 1)], t)
    : c.op('Cast', [c.op('Div', [c.op('Size', [x]), c.op('Size', [n.outputs[0]!])])], { to: attr.i(DTYPE_TO_ONNX[t]!) });
  return [c.op('Div', [g, count])];
};

const reduceSumSquare: GradRule = (c, n, [gy]) => {
  const x = n.inputs[0]!;
  const { g } = expandBack(c, n, gy!);
  return [c.op('Mul', [g, c.op('Mul', [x, c.constF([2], c.type(x))])])];
};

const softmaxAxis = (c: GradContext, n: NodeDef) => norm((n.attrs.axis as { i?: number } | undefined)?.i ?? -1, c.rank(n.inputs[0]!, n.op));

// y (gy - sum(gy y))
const softmax: GradRule = (c, n, [gy]) => {
  const y = n.outputs[0]!;
  const s = c.reduceSum(c.op('Mul', [gy!, y]), [softmaxAxis(c, n)], true);
  return [c.op('Mul', [y, c.op('Sub', [gy!, s])])];
};

// gy - softmax(x) sum(gy), softmax(x) = exp(y)
const logSoftmax: GradRule = (c, n, [gy]) => {
  const y = n.outputs[0]!;
  const s = c.reduceSum(gy!, [softmaxAxis(c, n)], true);
  return [c.op('Sub', [gy!, c.op('Mul', [c.op('Exp', [y]), s])])];
};

/**
 * LayerNormalization. The forward node is given its optional Mean and InvStdDev outputs (computed there
 * anyway) rather than recomputing them: x^ = (x - mean) * r,
 *   dx = r (gs - mean(gs) - x^ mean(gs x^)) with gs = gy * scale (means over the normalized axes).
 */
const layerNorm: GradRule = (c, n, [gy], need) => {
  const [x, scale, bias] = n.inputs as [string, string, string | undefined];
  const y = n.outputs[0]!;
  const r = c.rank(x, 'LayerNormalization');
  const axis = norm((n.attrs.axis as { i?: number } | undefined)?.i ?? -1, r);
  const normAxes = Array.from({ length: r - axis }, (_, i) => axis + i);
  for (const k of [1, 2]) if (!n.outputs[k]) n.outputs[k] = c.g.fresh(`${n.name}_stat${k}`);
  const t = c.type(x);
  // The statistics come out in the stash type (float32): cast for float64 graphs.
  const stat = (v: string) => (t === 'float32' ? v : c.op('Cast', [v], { to: attr.i(DTYPE_TO_ONNX[t]!) }));
  const [mean, inv] = [stat(n.outputs[1]!), stat(n.outputs[2]!)];
  const xhat = c.op('Mul', [c.op('Sub', [x, mean]), inv]);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  const rmean = (v: string) => c.op('ReduceMean', [v], { axes: attr.ints(normAxes), keepdims: attr.i(1) });
  if (need[0]) {
    const gs = c.op('Mul', [gy!, scale]);
    const inner = c.op('Sub', [c.op('Sub', [gs, rmean(gs)]), c.op('Mul', [xhat, rmean(c.op('Mul', [gs, xhat]))])]);
    out[0] = c.op('Mul', [inner, inv]);
  }
  if (need[1]) out[1] = c.sumTo(c.op('Mul', [gy!, xhat]), y, scale);
  if (bias && need[2]) out[2] = c.sumTo(gy!, y, bias);
  return out;
};

export const reduceRules: Record<string, GradRule> = {
  ReduceSum: reduceSum,
  ReduceMean: reduceMean,
  ReduceSumSquare: reduceSumSquare,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  LayerNormalization: layerNorm,
};
