// MatMul (batched, broadcasting) and Conv (the non-overlapping patch embedding, and strided/padded
// convolutions such as a convolutional stem).
import { attr, type NodeDef } from '../graph.js';
import { broadcastDims } from './shapes.js';
import type { GradContext, GradRule } from './context.js';

/** [..., n] -> [-1, n] */
function flatten2d(c: GradContext, x: string): string {
  const last = c.dims(x)?.at(-1);
  const shape = typeof last === 'number' ? c.i64([-1, last]) : c.op('Concat', [c.i64([-1]), c.shape(x, -1)], { axis: attr.i(0) });
  return c.op('Reshape', [x, shape]);
}

const matmul: GradRule = (c, n, [gy], need) => {
  const [a, b] = n.inputs as [string, string];
  const A = c.dims(a);
  const B = c.dims(b);
  if (!A || !B) throw new Error(`autodiff: MatMul "${n.name}" needs the ranks of its inputs`);
  if (A.length < 2 || B.length < 2) throw new Error(`autodiff: MatMul "${n.name}" with a 1-D operand is not supported`);
  const batch = broadcastDims([A.slice(0, -2), B.slice(0, -2)]);
  let ga: string | undefined;
  let gb: string | undefined;
  if (need[0]) {
    // dA = gy @ B^T, summed over the batch dims A was broadcast along.
    const d = c.op('MatMul', [gy!, c.transposeLast2(b, B.length)]);
    ga = c.sumTo(d, [...batch, A.at(-2)!, A.at(-1)!], a);
  }
  if (need[1]) {
    if (B.length === 2 && A.length > 2) {
      // A weight shared over the batch: one [K, rows] @ [rows, N] product instead of a batched one + reduce.
      gb = c.op('MatMul', [c.op('Transpose', [flatten2d(c, a)], { perm: attr.ints([1, 0]) }), flatten2d(c, gy!)]);
    } else {
      const d = c.op('MatMul', [c.transposeLast2(a, A.length), gy!]);
      gb = c.sumTo(d, [...batch, B.at(-2)!, B.at(-1)!], b);
    }
  }
  return [ga, gb];
};

/**
 * Conv when patches do not overlap (stride = kernel, no padding/dilation/groups): the ViT patch
 * embedding. It is then a MatMul over im2col rows, which are a reshape + transpose of the image.
 * Pixels beyond the last whole patch are ignored by Conv, so they are cropped (and get zero gradient).
 */
function conv(c: GradContext, n: NodeDef, [gy]: (string | undefined)[], need: boolean[]): (string | undefined)[] {
  const [x, w, bias] = n.inputs as [string, string, string | undefined];
  const W = c.staticDims(w);
  const X = c.dims(x);
  if (!W || W.length !== 4 || !X) throw new Error(`autodiff: Conv "${n.name}" needs a static 2-D kernel and the input's rank`);
  const [O, C, kh, kw] = W as [number, number, number, number];
  const ints = (k: string) => (n.attrs[k] as { ints?: number[] } | undefined)?.ints;
  const strides = ints('strides') ?? [1, 1];
  const plain = (ints('pads') ?? [0]).every((p) => p === 0) && (ints('dilations') ?? [1]).every((d) => d === 1)
    && ((n.attrs.group as { i?: number })?.i ?? 1) === 1 && ((n.attrs.auto_pad as { s?: string })?.s ?? 'NOTSET') !== 'SAME_UPPER'
    && ((n.attrs.auto_pad as { s?: string })?.s ?? 'NOTSET') !== 'SAME_LOWER';
  if (!plain || strides[0] !== kh || strides[1] !== kw) return stridedConv(c, n, gy!, need, W as number[]);
  // Runtime [B, oh, ow] from the output gradient; spatial extent actually covered by patches.
  const B = c.shape(gy!, 0, 1);
  const oh = c.shape(gy!, 2, 3);
  const ow = c.shape(gy!, 3, 4);
  const cat = (parts: string[]) => c.op('Concat', parts, { axis: attr.i(0) });
  const [H, Wd] = [X[2], X[3]];
  const exact = typeof H === 'number' && typeof Wd === 'number' && H % kh === 0 && Wd % kw === 0;
  const covered = exact ? undefined : cat([c.op('Mul', [oh, c.i64([kh])]), c.op('Mul', [ow, c.i64([kw])])]);
  // [B, O, oh, ow] -> [O, B*oh*ow]
  const gcolT = c.op('Reshape', [c.op('Transpose', [gy!], { perm: attr.ints([1, 0, 2, 3]) }), c.i64([O, -1])]);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (need[1]) {
    const xc = covered ? c.op('Slice', [x, c.i64([0, 0]), covered, c.i64([2, 3])]) : x;
    const six = c.op('Reshape', [xc, cat([B, c.i64([C]), oh, c.i64([kh]), ow, c.i64([kw])])]);
    const cols = c.op('Reshape', [c.op('Transpose', [six], { perm: attr.ints([0, 2, 4, 1, 3, 5]) }), c.i64([-1, C * kh * kw])]);
    out[1] = c.op('Reshape', [c.op('MatMul', [gcolT, cols]), c.i64(W)]);
  }
  if (need[0]) {
    // [B*oh*ow, O] @ [O, C*kh*kw] -> patches -> image layout.
    const colsGrad = c.op('MatMul', [c.op('Transpose', [gcolT], { perm: attr.ints([1, 0]) }), c.op('Reshape', [w, c.i64([O, -1])])]);
    const six = c.op('Reshape', [colsGrad, cat([B, oh, ow, c.i64([C, kh, kw])])]);
    const img = c.op('Reshape', [c.op('Transpose', [six], { perm: attr.ints([0, 3, 1, 4, 2, 5]) }),
      cat([B, c.i64([C]), c.op('Mul', [oh, c.i64([kh])]), c.op('Mul', [ow, c.i64([kw])])])]);
    if (exact) out[0] = img;
    else {
      const rest = c.op('Sub', [c.shape(x, 2, 4), covered!]);
      const pads = cat([c.i64([0, 0, 0, 0, 0, 0]), rest]);
      out[0] = c.op('Pad', [img, pads]);
    }
  }
  if (bias && need[2]) out[2] = c.reduceSum(gy!, [0, 2, 3], false);
  return out;
}

/**
 * Any other 2-D Conv without dilation or groups (e.g. 3x3, stride 2, pad 1). The input gradient is the
 * transposed convolution with the same kernel, which ONNX has as ConvTranspose; output_padding restores the
 * rows a strided Conv dropped. The kernel gradient is gy (as [O, B*oh*ow]) times the im2col matrix, whose
 * kh*kw columns per channel are strided Slices of the padded input. Both need static spatial sizes.
 */
function stridedConv(c: GradContext, n: NodeDef, gy: string, need: boolean[], W: number[]): (string | undefined)[] {
  const [x, , bias] = n.inputs as [string, string, string | undefined];
  const [O, C, kh, kw] = W as [number, number, number, number];
  const ints = (k: string) => (n.attrs[k] as { ints?: number[] } | undefined)?.ints;
  const autoPad = (n.attrs.auto_pad as { s?: string } | undefined)?.s ?? 'NOTSET';
  const group = (n.attrs.group as { i?: number } | undefined)?.i ?? 1;
  if (group !== 1 || (ints('dilations') ?? [1, 1]).some((d) => d !== 1) || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) {
    throw new Error(`autodiff: Conv "${n.name}": groups, dilation and SAME padding have no gradient rule`);
  }
  const X = c.dims(x);
  const [H, Wd] = [X?.[2], X?.[3]];
  if (X?.length !== 4 || typeof H !== 'number' || typeof Wd !== 'number') {
    throw new Error(`autodiff: Conv "${n.name}" with stride != kernel needs the input's static height and width`);
  }
  const [sh, sw] = ints('strides') ?? [1, 1];
  const [pt, pl, pb, pr] = ints('pads') ?? [0, 0, 0, 0];
  const oh = Math.floor((H + pt! + pb! - kh) / sh!) + 1;
  const ow = Math.floor((Wd + pl! + pr! - kw) / sw!) + 1;
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (need[0]) {
    const outPad = [H - (sh! * (oh - 1) + kh - pt! - pb!), Wd - (sw! * (ow - 1) + kw - pl! - pr!)];
    out[0] = c.op('ConvTranspose', [gy, n.inputs[1]!], {
      kernel_shape: attr.ints([kh, kw]), strides: attr.ints([sh!, sw!]), pads: attr.ints([pt!, pl!, pb!, pr!]), output_padding: attr.ints(outPad),
    });
  }
  if (need[1]) {
    const xp = pt || pl || pb || pr ? c.op('Pad', [x, c.i64([0, 0, pt!, pl!, 0, 0, pb!, pr!])]) : x;
    const taps: string[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const tap = c.op('Slice', [xp, c.i64([i, j]), c.i64([i + sh! * (oh - 1) + 1, j + sw! * (ow - 1) + 1]), c.i64([2, 3]), c.i64([sh!, sw!])]);
        taps.push(c.op('Unsqueeze', [tap, c.i64([2])]));
      }
    }
    // [B, C, kh*kw, oh, ow] -> [B*oh*ow, C*kh*kw], the column order of W's [O, C, kh, kw].
    const cols = c.op('Reshape', [c.op('Transpose', [c.op('Concat', taps, { axis: attr.i(2) })], { perm: attr.ints([0, 3, 4, 1, 2]) }), c.i64([-1, C * kh * kw])]);
    const gcolT = c.op('Reshape', [c.op('Transpose', [gy], { perm: attr.ints([1, 0, 2, 3]) }), c.i64([O, -1])]);
    out[1] = c.op('Reshape', [c.op('MatMul', [gcolT, cols]), c.i64(W)]);
  }
  if (bias && need[2]) out[2] = c.reduceSum(gy, [0, 2, 3], false);
  return out;
}

export const linalgRules: Record<string, GradRule> = { MatMul: matmul, Conv: conv };
