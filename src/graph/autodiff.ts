// Reverse-mode autodiff over the graph IR: appends the backward pass as ONNX nodes to the forward graph,
// so one ORT session computes the loss and the gradients.
//
// Only nodes on a path from a trainable value to the loss get a backward (a frozen tower costs none).
// Shapes: ranks and most dims are inferred statically (grad-rules/shapes.ts) so broadcasts are undone by
// static ReduceSum axes; where dims are not known statically (dynamic batch vs. a symbolic table length)
// the rules fall back to Shape-based ops evaluated at run time. Ranks must be known.
import type { ElemType, Graph, NodeDef } from './graph.js';
import { GRAD_RULES, GradContext, NON_DIFFERENTIABLE, ShapeInfo, type SymDim } from './grad-rules/index.js';
import { isFloat } from './grad-rules/shapes.js';
import { MIN_SEGMENT_NODES, SegmentReplay, segmentForward } from './recompute.js';

export interface GradientOptions {
  /** Add graph outputs `${prefix}${name}` for every gradient (default true). */
  outputs?: boolean;
  /** Output name prefix (default 'grad/'). */
  prefix?: string;
  /** Recompute each block's forward in the backward instead of keeping its activations (see recompute.ts). */
  recompute?: boolean;
}

export interface Gradients {
  /** Trainable value name -> name of the value holding dLoss/dValue (same shape). */
  grads: Map<string, string>;
  /** Trainable values the loss does not depend on: they get no gradient (PyTorch leaves .grad None). */
  unreached: string[];
  /** Output names added, by trainable value name. */
  outputs: Map<string, string>;
}

/**
 * Append the gradient of scalar (or any-shape, seeded with ones) `loss` with respect to `wrt` (graph inputs,
 * initializers or intermediate float values).
 */
export function appendGradients(g: Graph, loss: string, wrt: Iterable<string>, opts: GradientOptions = {}): Gradients {
  const info = new ShapeInfo(g);
  const ctx = new GradContext(g, info);
  const forward = [...g.nodes];
  const targets = [...new Set(wrt)];
  for (const w of targets) if (!isFloat(info.type(w))) throw new Error(`autodiff: "${w}" is not a float value`);
  if (!isFloat(info.type(loss))) throw new Error(`autodiff: loss "${loss}" is not a float value`);

  // Values that depend on a trainable value (forward), then those of them the loss depends on (backward).
  const depends = new Set(targets);
  for (const n of forward) {
    if (NON_DIFFERENTIABLE.has(n.op) || !n.inputs.some((i) => depends.has(i))) continue;
    for (const o of n.outputs) if (o && isFloat(info.type(o))) depends.add(o);
  }
  const relevant = new Set<string>(depends.has(loss) ? [loss] : []);
  const active = [];
  for (let k = forward.length - 1; k >= 0; k--) {
    const n = forward[k]!;
    if (NON_DIFFERENTIABLE.has(n.op) || !n.outputs.some((o) => relevant.has(o)) || !n.inputs.some((i) => depends.has(i))) continue;
    active.push(n);
    for (const i of n.inputs) if (depends.has(i)) relevant.add(i);
  }

  // Refuse before touching the graph when some op on the path has no rule.
  for (const n of active) {
    if (GRAD_RULES[n.op] && !n.domain) continue;
    const hint = n.domain === 'com.microsoft' ? ' (build the graph without fused kernels)' : '';
    throw new Error(`autodiff: no gradient rule for ${n.domain ? n.domain + '.' : ''}${n.op} (node "${n.name}")${hint}`);
  }

  const parts = new Map<string, string[]>();
  const add = (v: string, grad: string) => (parts.has(v) ? parts.get(v)!.push(grad) : parts.set(v, [grad]));
  // Sum the contributions of every consumer once all of them are known (the producer is processed later).
  const total = (v: string): string | undefined => {
    const p = parts.get(v);
    if (!p?.length) return undefined;
    // A chain of Adds, not one Sum: in ORT's profile of the emoji-clip step a 2-input Sum on the [128, 37, 768]
    // MLP gradients took ~5 ms where a Mul of that shape took ~1.3 ms; Sum adds in input order, so the values match.
    if (p.length > 1) parts.set(v, [p.slice(1).reduce((acc, x) => g.op('Add', [acc, x]), p[0]!)]);
    return parts.get(v)![0];
  };

  if (relevant.has(loss)) add(loss, seed(ctx, loss));
  // With recompute, each segment's rules read a replay of its forward (recompute.ts), emitted when the
  // backward enters the segment and dropped of whatever the rules do not read.
  const segments = opts.recompute ? segmentForward(forward, info) : [];
  const segmentOf = new Map<(typeof forward)[number], number>();
  segments.forEach((s, k) => forward.slice(s.start, s.end).forEach((n) => segmentOf.set(n, k)));
  const produced = new Set(forward.flatMap((n) => n.outputs));
  let replay: SegmentReplay | undefined;
  let replaySegment = -1;
  let replayAt = 0;
  const flush = () => {
    replay?.spliceInto(replayAt);
    replay = undefined;
  };
  for (const n of active) {
    const gy = n.outputs.map((o) => (o ? total(o) : undefined));
    if (gy.every((x) => x === undefined)) continue;
    let node = n;
    if (segments.length) {
      const s = segmentOf.get(n)!;
      if (s !== replaySegment) {
        flush();
        replaySegment = s;
        const { start, end } = segments[s]!;
        if (end - start >= MIN_SEGMENT_NODES) {
          replayAt = g.nodes.length;
          replay = new SegmentReplay(g, info, forward.slice(start, end), gy.find((x) => x !== undefined)!, (v) => produced.has(v));
        }
      }
      if (replay) node = replay.replayed(n);
    }
    const rule = GRAD_RULES[n.op]!;
    const need = n.inputs.map((i) => relevant.has(i));
    const gx = rule(ctx, node, gy, need);
    n.inputs.forEach((i, k) => {
      if (!need[k]) return;
      if (!gx[k]) throw new Error(`autodiff: ${n.op} "${n.name}" gave no gradient for input ${k} ("${i}")`);
      add(i, gx[k]!);
    });
  }
  flush();

  const result: Gradients = { grads: new Map(), unreached: [], outputs: new Map() };
  const prefix = opts.prefix ?? 'grad/';
  // A gradient made by a backward node is written under its output name by that node (its readers follow):
  // an Identity to a graph output would copy it, and all gradients are alive at once at the end.
  const producer = new Map<string, NodeDef>();
  for (const n of g.nodes.slice(forward.length)) n.outputs.forEach((o) => o && producer.set(o, n));
  const renamed = new Map<string, string>();
  for (const w of targets) {
    let gw = total(w);
    if (!gw) {
      result.unreached.push(w);
      continue;
    }
    gw = renamed.get(gw) ?? gw;
    if (opts.outputs ?? true) {
      const dims = info.dims(w);
      const fixed = dims?.every((d) => d !== null) ? (dims as Exclude<SymDim, null>[]) : undefined;
      const name = `${prefix}${w}`;
      if (producer.has(gw) && !g.outputs.some((o) => o.name === gw)) {
        // Made by a backward node: that value takes the output's name (readers included).
        for (const n of g.nodes.slice(forward.length)) {
          n.inputs.forEach((x, k) => x === gw && (n.inputs[k] = name));
          n.outputs.forEach((x, k) => x === gw && (n.outputs[k] = name));
        }
        producer.delete(gw);
        info.alias(name, gw);
        renamed.set(gw, name);
        gw = name;
        g.outputs.push({ name, type: info.type(w) as ElemType, dims: fixed });
      } else {
        g.output(gw, name, info.type(w) as ElemType, fixed);
      }
      result.outputs.set(w, name);
    }
    result.grads.set(w, gw);
  }
  return result;
}

/** dLoss/dLoss = 1, in the loss's shape and type. */
function seed(c: GradContext, loss: string): string {
  const d = c.staticDims(loss);
  const one = c.constF([1], c.type(loss));
  if (d && d.length === 0) return one;
  return c.op('Expand', [one, d ? c.i64(d) : c.shape(loss)]);
}
