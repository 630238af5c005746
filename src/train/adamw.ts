// AdamW (decoupled weight decay, PyTorch's update order) as ONNX nodes: appendAdamWRule is the rule, used
// by the update inside the training graph (appendAdamW, with global-norm clipping in the graph) and by
// the chunked update session (adamw-session.ts, the trainer's default). Per-step scalars (schedule LR,
// bias corrections) come in as inputs computed here in JS.
import { attr, Graph } from '../graph/graph.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { toFloat32 } from '../io/tensor.js';

export interface AdamWConfig {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (torch.nn.utils.clip_grad_norm_); undefined = no clipping. */
  maxGradNorm?: number;
}

export interface AdamWParam {
  /** Parameter name (the graph input holding its current value). */
  name: string;
  grad: string;
  decay: boolean;
  /** Clamp after the update (open_clip clamps logit_scale to [0, ln 100]). */
  clamp?: [number, number];
}

/** Graph names of the per-step scalar inputs and the per-parameter state inputs/outputs. */
export const ADAMW_INPUTS = { decay: 'adamw.decay_factor', stepSize: 'adamw.step_size', bc2Sqrt: 'adamw.bias_correction2_sqrt' };
export const GRAD_NORM = 'grad_norm';
export const stateNames = (p: string) => ({ m: `adamw.m/${p}`, v: `adamw.v/${p}`, newParam: `new/${p}`, newM: `new.m/${p}`, newV: `new.v/${p}` });

/**
 * Append one AdamW step for `params`. Adds inputs `adamw.m/<p>`, `adamw.v/<p>` (shaped like p) and the
 * scalars of ADAMW_INPUTS; outputs `new/<p>`, `new.m/<p>`, `new.v/<p>` and `grad_norm` (before clipping).
 */
export function appendAdamW(g: Graph, params: AdamWParam[], cfg: AdamWConfig, dims: (p: string) => number[]): void {
  const f = (x: number) => g.constF([x], []);
  const scalar = (name: string) => g.input(name, 'float32', []);
  const decay = scalar(ADAMW_INPUTS.decay);
  const stepSize = scalar(ADAMW_INPUTS.stepSize);
  const bc2Sqrt = scalar(ADAMW_INPUTS.bc2Sqrt);

  const norm = appendGradNorm(g, params.map((p) => p.grad));
  let coef: string | undefined;
  if (cfg.maxGradNorm !== undefined) {
    coef = g.op('Min', [f(1), g.op('Div', [f(cfg.maxGradNorm), g.op('Add', [norm, f(1e-6)])])]);
  }

  // Scalars that make every update node wait for the global norm (x + 0 * norm == x bit for bit when the
  // norm is finite). Then every read of a parameter or moment by the forward and backward passes (all
  // ancestors of the norm) happens before any new value is written, so the trainer can have ORT write
  // the new values over the old ones; and the elementwise p * decay, v * b2 do not run early and hold a
  // model-sized buffer each through the whole backward pass.
  const zero = g.op('Mul', [norm, f(0)]);
  const late = (x: string) => g.op('Add', [x, zero]);
  const [decayL, stepSizeL, b2L] = [late(decay), late(stepSize), late(f(cfg.betas[1]))];
  for (const p of params) {
    const n = stateNames(p.name);
    const shape = dims(p.name);
    appendAdamWRule(g, cfg, {
      p: p.name, m: g.input(n.m, 'float32', shape), v: g.input(n.v, 'float32', shape),
      grad: coef ? g.op('Mul', [p.grad, coef]) : p.grad,
      decay: p.decay && cfg.weightDecay !== 0 ? decayL : undefined, stepSize: stepSizeL, bc2Sqrt, b2: b2L,
      clamp: p.clamp?.map((x) => f(x)) as [string, string] | undefined,
      out: { p: n.newParam, m: n.newM, v: n.newV },
    });
    for (const o of [n.newParam, n.newM, n.newV]) g.output(o, o, 'float32', shape);
  }
}

/** Graph values of one AdamW step for one tensor (appendAdamWRule). */
export interface AdamWTerms {
  p: string;
  m: string;
  v: string;
  /** The gradient, already times the clipping coefficient. */
  grad: string;
  /** Weight-decay factor 1 - lr wd; undefined = no decay. */
  decay?: string;
  /** lr / (1 - b1^t). */
  stepSize: string;
  /** sqrt(1 - b2^t). */
  bc2Sqrt: string;
  /** beta2 as a graph value (the training graph delays it, see appendAdamW). */
  b2: string;
  clamp?: [string, string];
  /** Names the results are written under. */
  out: { p: string; m: string; v: string };
}

/**
 * The AdamW rule, once for every caller: the update inside the training graph (appendAdamW) and the
 * chunked update session (adamw-session.ts). Order of operations as torch's _single_tensor_adamw.
 */
export function appendAdamWRule(g: Graph, cfg: AdamWConfig, t: AdamWTerms): void {
  const f = (x: number) => g.constF([x], []);
  const [b1, b2] = cfg.betas;
  const { grad, m, v } = t;
  // torch: exp_avg.lerp_(grad, 1 - b1); exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2).
  // The last node of each result writes the output name itself: an Identity to an output would copy.
  const m1 = g.node('Add', [m, g.op('Mul', [g.op('Sub', [grad, m]), f(1 - b1)])], {}, { outputs: [t.out.m] })[0]!;
  const v1 = g.node('Add', [g.op('Mul', [v, t.b2]), g.op('Mul', [g.op('Mul', [grad, f(1 - b2)]), grad])], {}, { outputs: [t.out.v] })[0]!;
  // denom = sqrt(v) / sqrt(1 - b2^t) + eps;  p = p * (1 - lr wd) - (lr / (1 - b1^t)) * m / denom
  const denom = g.op('Add', [g.op('Div', [g.op('Sqrt', [v1]), t.bc2Sqrt]), f(cfg.eps)]);
  const decayed = t.decay ? g.op('Mul', [t.p, t.decay]) : t.p;
  const update = g.op('Mul', [g.op('Div', [m1, denom]), t.stepSize]);
  if (t.clamp) g.node('Clip', [g.op('Sub', [decayed, update]), ...t.clamp], {}, { outputs: [t.out.p] });
  else g.node('Sub', [decayed, update], {}, { outputs: [t.out.p] });
}

/** The global L2 norm of `grads` as graph output GRAD_NORM. */
export function appendGradNorm(g: Graph, grads: string[]): string {
  const sq = grads.map((x) => g.op('ReduceSumSquare', [x], { keepdims: attr.i(0) }));
  const norm = g.op('Sqrt', [sq.length === 1 ? sq[0]! : g.op('Sum', sq)]);
  g.output(norm, GRAD_NORM, 'float32', []);
  return norm;
}

/** Clipping factor for a global gradient norm, as the graph computes it (torch's clip_grad_norm_). */
export const clipCoefficient = (cfg: AdamWConfig, norm: number): number =>
  cfg.maxGradNorm === undefined ? 1 : Math.min(1, cfg.maxGradNorm / (norm + 1e-6));

/**
 * A standalone optimizer step: inputs `<p>` and `grad/<p>` per parameter besides the state and scalars.
 * For gradients computed elsewhere (accumulated micro-batches, checking the update against a reference).
 */
export function buildAdamWGraph(params: (Omit<AdamWParam, 'grad'> & { dims: number[] })[], cfg: AdamWConfig): Graph {
  const g = new Graph('adamw');
  const dims = new Map(params.map((p) => [p.name, p.dims]));
  const specs = params.map((p) => {
    g.input(p.name, 'float32', p.dims);
    return { ...p, grad: g.input(`grad/${p.name}`, 'float32', p.dims) };
  });
  appendAdamW(g, specs, cfg, (n) => dims.get(n)!);
  return g;
}

/** The per-step scalar inputs for step t (1-based) at learning rate lr, as torch computes them. */
export function adamwScalars(cfg: AdamWConfig, lr: number, t: number): Record<string, number> {
  return {
    [ADAMW_INPUTS.decay]: 1 - lr * cfg.weightDecay,
    [ADAMW_INPUTS.stepSize]: lr / (1 - cfg.betas[0] ** t),
    [ADAMW_INPUTS.bc2Sqrt]: Math.sqrt(1 - cfg.betas[1] ** t),
  };
}

/** Optimizer state: first and second moments per parameter, and the number of steps taken. */
export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export function newAdamWState(shapes: Map<string, number[]>): AdamWState {
  const zeros = () => new Map([...shapes].map(([k, s]) => [k, new Float32Array(s.reduce((a, b) => a * b, 1))]));
  return { step: 0, m: zeros(), v: zeros() };
}

/** Load a state written by writeOptimizerState (checkpoint-io.ts); `fromFile` gathers one state tensor from stored tensors. */
export function loadAdamWState(
  path: string, names: string[],
  fromFile: (name: string, get: (stored: string) => { data: Float32Array; shape: number[] }) => { data: Float32Array } = (name, get) => get(name),
): AdamWState {
  const f = new SafetensorsFile(path);
  try {
    const step = Number(f.metadata.step);
    if (!Number.isInteger(step) || step < 0) throw new Error(`${path}: not an AdamW state file (no step in its metadata)`);
    const read = (prefix: string) => new Map(names.map((n) => [n, fromFile(n, (stored) => {
      const t = f.get(`${prefix}/${stored}`);
      return { data: toFloat32(t), shape: t.shape };
    }).data]));
    return { step, m: read('exp_avg'), v: read('exp_avg_sq') };
  } finally {
    f.close();
  }
}
