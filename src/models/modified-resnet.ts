// OpenAI's ModifiedResNet image tower (RN50, RN101, RN50x4, ...): a 3-conv stem with an average pool,
// bottleneck stages whose strides are anti-aliased average pools, and a QKV attention pool whose output
// projection (c_proj) already maps to the joint embedding space (there is no separate visual.proj).
// Canonical names are OpenAI's own state-dict keys, so `openaiClipWeights` resolves them unchanged:
//   visual.conv{1,2,3}.weight, visual.bn{1,2,3}.*,
//   visual.layer{L}.{b}.conv{1,2,3}.weight, .bn{1,2,3}.*, .downsample.0.weight, .downsample.1.*,
//   visual.attnpool.{positional_embedding, q_proj.*, k_proj.*, v_proj.*, c_proj.*}
import { attr, type Graph } from '../graph/graph.js';
import { linear } from '../graph/ops.js';
import type { ResNetConfig } from './config.js';
import { param } from './transformer.js';
import type { TowerOutput } from './vision-transformer.js';
import type { TowerWeights } from './weights.js';

/** PyTorch's BatchNorm2d default; OpenAI never changes it. */
const BN_EPS = 1e-5;
const EXPANSION = 4;

export interface ResNetOptions {
  /**
   * Fold eval-mode BatchNorm into the preceding conv when the graph is folded for inference (default true,
   * see graph/fold.ts: in float64, rounded once, so it differs from PyTorch's conv-then-BN only by float32
   * rounding); false keeps the BatchNormalization nodes (kept for parity checks).
   */
  foldBatchNorm?: boolean;
}

/** conv (no bias, as in every OpenAI ResNet conv) followed by eval-mode BatchNorm, as stored. */
function convBn(
  g: Graph, x: string, w: TowerWeights, conv: string, bn: string,
  geom: { kernel: number; stride?: number; pad?: number },
): string {
  const k = geom.kernel;
  const pad = geom.pad ?? 0;
  const attrs = {
    kernel_shape: attr.ints([k, k]),
    strides: attr.ints([geom.stride ?? 1, geom.stride ?? 1]),
    pads: attr.ints([pad, pad, pad, pad]),
  };
  const y = g.op('Conv', [x, param(g, w, `${conv}.weight`)], attrs);
  return g.op('BatchNormalization', [y, param(g, w, `${bn}.weight`), param(g, w, `${bn}.bias`),
    param(g, w, `${bn}.running_mean`), param(g, w, `${bn}.running_var`)], { epsilon: attr.f(BN_EPS) });
}

function avgPool(g: Graph, x: string, k: number): string {
  // nn.AvgPool2d(k): stride k, no padding, floor mode.
  return g.op('AveragePool', [x], { kernel_shape: attr.ints([k, k]), strides: attr.ints([k, k]) });
}

function bottleneck(g: Graph, x: string, w: TowerWeights, p: string, inplanes: number, planes: number, stride: number): string {
  let out = g.op('Relu', [convBn(g, x, w, `${p}.conv1`, `${p}.bn1`, { kernel: 1 })]);
  out = g.op('Relu', [convBn(g, out, w, `${p}.conv2`, `${p}.bn2`, { kernel: 3, pad: 1 })]);
  if (stride > 1) out = avgPool(g, out, stride);
  out = convBn(g, out, w, `${p}.conv3`, `${p}.bn3`, { kernel: 1 });
  let identity = x;
  if (stride > 1 || inplanes !== planes * EXPANSION) {
    const pooled = stride > 1 ? avgPool(g, x, stride) : x;
    identity = convBn(g, pooled, w, `${p}.downsample.0`, `${p}.downsample.1`, { kernel: 1 });
  }
  return g.op('Relu', [g.op('Add', [out, identity])]);
}

/**
 * OpenAI's AttentionPool2d on x [B, C, H, W]. Only the output at the mean token is returned, so only
 * that token is projected as a query: the same numbers as attending with every token, HW+1 times cheaper.
 */
function attentionPool(g: Graph, x: string, w: TowerWeights, heads: number): string {
  const p = 'visual.attnpool';
  const [, C] = w.ref(`${p}.positional_embedding`).shape as [number, number];
  const hd = C / heads;
  if (!Number.isInteger(hd)) throw new Error(`attention pool width ${C} is not divisible by ${heads} heads`);
  const seq = g.op('Transpose', [g.op('Reshape', [x, g.constI64([0, C, -1])])], { perm: attr.ints([0, 2, 1]) }); // [B, HW, C]
  const mean = g.op('ReduceMean', [seq], { axes: attr.ints([1]), keepdims: attr.i(1) });
  const tokens = g.op('Add', [g.op('Concat', [mean, seq], { axis: attr.i(1) }), param(g, w, `${p}.positional_embedding`)]);
  // k and v share one MatMul: their weights stacked into one [C, 2C] (a layout the inference fold bakes).
  const kvW = g.node('Transpose', [g.op('Concat', [param(g, w, `${p}.k_proj.weight`), param(g, w, `${p}.v_proj.weight`)], { axis: attr.i(0) })],
    { perm: attr.ints([1, 0]) }, { outputs: [`${p}.kv_proj.weight`] })[0]!;
  const kvB = g.node('Concat', [param(g, w, `${p}.k_proj.bias`), param(g, w, `${p}.v_proj.bias`)], { axis: attr.i(0) }, { outputs: [`${p}.kv_proj.bias`] })[0]!;
  const kv = linear(g, tokens, kvW, kvB);
  // [B, N, 2, H, hd] -> [2, B, H, N, hd]
  const kvT = g.op('Transpose', [g.op('Reshape', [kv, g.constI64([0, 0, 2, heads, hd])])], { perm: attr.ints([2, 0, 3, 1, 4]) });
  const [k, v] = g.node('Split', [kvT, g.constI64([1, 1])], { axis: attr.i(0) }, { outputs: 2 }).map(
    (s) => g.op('Squeeze', [s, g.constI64([0])]),
  ) as [string, string];
  const first = g.op('Slice', [tokens, g.constI64([0]), g.constI64([1]), g.constI64([1])]); // [B, 1, C]
  const q = linear(g, first, param(g, w, `${p}.q_proj.weight`, { linear: true }), param(g, w, `${p}.q_proj.bias`));
  const qh = g.op('Transpose', [g.op('Reshape', [q, g.constI64([0, 1, heads, hd])])], { perm: attr.ints([0, 2, 1, 3]) }); // [B, H, 1, hd]
  const qs = g.op('Mul', [qh, g.constF([1 / Math.sqrt(hd)], [])]);
  const scores = g.op('MatMul', [qs, g.op('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) })]); // [B, H, 1, N]
  const ctx = g.op('MatMul', [g.op('Softmax', [scores], { axis: attr.i(-1) }), v]); // [B, H, 1, hd]
  const merged = g.op('Reshape', [ctx, g.constI64([0, C])]); // H*1*hd = C, heads in order
  return linear(g, merged, param(g, w, `${p}.c_proj.weight`, { linear: true }), param(g, w, `${p}.c_proj.bias`));
}

/**
 * pixels [B, 3, S, S] -> pooled [B, outputDim] (attention pool output, already projected).
 * hidden: the stem output and each stage's output (NCHW).
 */
export function buildModifiedResNet(g: Graph, pixels: string, w: TowerWeights, cfg: ResNetConfig): TowerOutput {
  const W = cfg.width;
  let x = pixels;
  x = g.op('Relu', [convBn(g, x, w, 'visual.conv1', 'visual.bn1', { kernel: 3, stride: 2, pad: 1 })]);
  x = g.op('Relu', [convBn(g, x, w, 'visual.conv2', 'visual.bn2', { kernel: 3, pad: 1 })]);
  x = g.op('Relu', [convBn(g, x, w, 'visual.conv3', 'visual.bn3', { kernel: 3, pad: 1 })]);
  x = avgPool(g, x, 2);
  const hidden = [x];
  let inplanes = W;
  cfg.layers.forEach((blocks, s) => {
    const planes = W * 2 ** s;
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      x = bottleneck(g, x, w, `visual.layer${s + 1}.${b}`, inplanes, planes, stride);
      inplanes = planes * EXPANSION;
    }
    hidden.push(x);
  });
  return { pooled: attentionPool(g, x, w, cfg.heads), hidden };
}
