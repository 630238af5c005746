// Activation recomputation ("gradient checkpointing") for autodiff: the forward is cut into segments at
// the points where a single activation carries everything forward (in a transformer: the residual stream
// after each attention and each MLP sub-block). Only those cut values live from the forward into the
// backward; when the backward reaches a segment it first recomputes the segment's forward from its
// input, and the segment's gradient rules read the recomputed values, which die with the segment.
//
// Two things keep ORT from undoing this: its common-subexpression elimination would merge a recomputed
// node with its forward twin (same op, inputs and attributes), and its scheduler is free to run the
// recomputation right after the forward. Both are prevented by feeding the segment an input that depends
// on the gradient arriving at the segment: x' = x + 0 * (first dim of that gradient's shape), exact.
import { attr, type Graph, type NodeDef } from './graph.js';
import { DTYPE_TO_ONNX, isFloat, type ShapeInfo } from './grad-rules/shapes.js';

/** Segments of fewer nodes are not worth a recomputation (embedding chains, the loss head's small ops). */
export const MIN_SEGMENT_NODES = 8;

export interface Segment {
  /** Forward node indices [start, end). */
  start: number;
  end: number;
}

/**
 * Cut the forward nodes `forward` into segments. A cut follows node k when every float activation still
 * needed after k is either k's output or a value that no node since the previous cut has read (a
 * bystander, such as the image embedding while the text tower runs). The values at a cut are the only
 * activations a segment needs from before it.
 */
export function segmentForward(forward: NodeDef[], info: ShapeInfo): Segment[] {
  const lastUse = new Map<string, number>();
  forward.forEach((n, k) => n.inputs.forEach((i) => i && lastUse.set(i, k)));
  const producedAt = new Map<string, number>();
  const live = new Set<string>();
  const segments: Segment[] = [];
  let start = 0;
  // Values read by some node of the current segment.
  const readInSegment = new Set<string>();
  for (let k = 0; k < forward.length; k++) {
    const n = forward[k]!;
    for (const i of n.inputs) {
      if (!i) continue;
      readInSegment.add(i);
      if (lastUse.get(i) === k) live.delete(i);
    }
    for (const o of n.outputs) {
      if (!o || !isFloat(info.type(o))) continue;
      producedAt.set(o, k);
      if ((lastUse.get(o) ?? -1) > k) live.add(o);
    }
    const own = n.outputs.filter((o) => live.has(o));
    const cut = own.length === 1 && [...live].every((v) => own.includes(v) || (producedAt.get(v)! < start && !readInSegment.has(v)));
    if (cut || k === forward.length - 1) {
      segments.push({ start, end: k + 1 });
      start = k + 1;
      readInSegment.clear();
    }
  }
  return segments;
}

/** Recomputation of one segment's forward, emitted into a side list and spliced in by the caller. */
export class SegmentReplay {
  /** Forward value name -> recomputed name. */
  readonly rename = new Map<string, string>();
  private readonly pending: NodeDef[] = [];
  /** Forward node -> its replay (rules may give a node extra outputs, e.g. LayerNormalization's statistics). */
  private readonly replays = new Map<NodeDef, NodeDef>();

  /**
   * @param nodes the segment's forward nodes
   * @param gate a gradient value that exists only once the backward has reached this segment
   * @param isActivation float values produced by forward nodes (as opposed to parameters, constants and graph inputs)
   */
  constructor(private readonly g: Graph, private readonly info: ShapeInfo, nodes: NodeDef[], gate: string, isActivation: (v: string) => boolean) {
    const inside = new Set(nodes.flatMap((n) => n.outputs));
    const zeroOf = new Map<string, string>();
    const gated = (v: string): string => {
      const type = this.info.type(v);
      let zero = zeroOf.get(type);
      if (!zero) {
        const first = this.emit('Shape', [gate], { start: attr.i(0), end: attr.i(1) });
        const none = this.emit('Mul', [first, g.constI64([0])]);
        zero = this.emit('Cast', [none], { to: attr.i(DTYPE_TO_ONNX[type]!) });
        this.info.alias(zero, undefined, { type, dims: [1] });
        zeroOf.set(type, zero);
      }
      const out = this.emit('Add', [v, zero]);
      this.info.alias(out, v);
      return out;
    };
    for (const n of nodes) {
      const inputs = n.inputs.map((i) => {
        if (!i) return i;
        const r = this.rename.get(i);
        if (r) return r;
        if (inside.has(i) || !isActivation(i) || !isFloat(this.info.type(i))) return i;
        const x = gated(i);
        this.rename.set(i, x);
        return x;
      });
      const outputs = n.outputs.map((o) => (o ? g.fresh(`${o}/rc`) : o));
      n.outputs.forEach((o, k) => {
        if (!o) return;
        this.rename.set(o, outputs[k]!);
        this.info.alias(outputs[k]!, o);
      });
      const replay = { ...n, name: g.fresh(`${n.name}/rc`), inputs, outputs, attrs: { ...n.attrs } };
      this.pending.push(replay);
      this.replays.set(n, replay);
    }
  }

  private emit(op: string, inputs: string[], attrs: NodeDef['attrs'] = {}): string {
    const name = this.g.fresh(`${op}/rc`);
    const out = `${name}_out0`;
    this.pending.push({ op, domain: '', name, inputs, outputs: [out], attrs });
    return out;
  }

  /** The replay of forward node `n` (reading and producing the recomputed values), for its gradient rule. */
  replayed(n: NodeDef): NodeDef {
    const r = this.replays.get(n);
    if (!r) throw new Error(`recompute: node "${n.name}" is not in the replayed segment`);
    return r;
  }

  /**
   * Insert, at node index `at`, the recomputing nodes that the nodes after `at` read (directly or through
   * other recomputing nodes); the rest of the replay is dropped.
   */
  spliceInto(at: number): number {
    const needed = new Set<string>();
    for (const n of this.g.nodes.slice(at)) for (const i of n.inputs) if (i) needed.add(i);
    const keep: NodeDef[] = [];
    for (let k = this.pending.length - 1; k >= 0; k--) {
      const n = this.pending[k]!;
      if (!n.outputs.some((o) => o && needed.has(o))) continue;
      keep.push(n);
      for (const i of n.inputs) if (i) needed.add(i);
    }
    keep.reverse();
    this.g.nodes.splice(at, 0, ...keep);
    return keep.length;
  }
}
