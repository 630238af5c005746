// Linear probe (CLIP paper, section 3.2): multinomial logistic regression on frozen, L2-normalized image
// features, with the L2 strength chosen on a held-out part of the training set; and few-shot heads that
// blend with the zero-shot head (WiSE-FT-style interpolation), so a handful of labels cannot do worse than
// zero-shot on held-out data.
//
// The objective is scikit-learn's LogisticRegression(C, multi_class='multinomial', solver='lbfgs'):
//   sum_i CE(softmax(W x_i + b), y_i) + 1/(2C) ||W||²      (the bias is not penalized)
// minimized here divided by n (same minimizer, better-scaled gradients).
//
// Why L-BFGS in TypeScript over Float64Arrays instead of our autodiff graph: the problem is small and
// convex (K·(D+1) parameters, 5,130 for 512 dims × 10 classes), its gradient is one closed-form matrix
// product X^T(P − Y), and an autodiff graph plus an optimizer state on ORT would add float32 parameters
// and session plumbing for no gain. The two products that touch every row (logits X·W^T and the gradient
// (P − Y)^T X) are the only heavy part: in plain JS they take ~0.8 s per evaluation at 60,000 × 512 × 10
// (measured here), in ONNX Runtime's Gemm ~50 ms, so large problems run them there (float32 products,
// float64 softmax, loss and optimizer state) and small ones stay in JS float64. Both are deterministic:
// no randomness, and ORT's CPU Gemm does not split the reduction across threads.
import { createSession, ort } from '../runtime/session.js';
import { Rng, permutation } from './rng.js';
import { attr, Graph } from '../graph/graph.js';
import { lbfgs, type LbfgsResult } from './lbfgs.js';

/** Row-major features: `rows` vectors of `dim` values. */
export interface FeatureMatrix { data: Float32Array; rows: number; dim: number }

/** A linear classifier over L2-normalized image embeddings: logits = W · x/|x| + b. */
export interface LinearHead {
  kind: 'linear';
  classes: string[];
  dim: number;
  /** One row of `dim` weights per class. */
  weights: Float64Array[];
  bias: Float64Array;
}

/** The zero-shot head as a prior: normalized class text embeddings and exp(logit_scale). */
export interface ZeroShotPrior { weights: Float32Array[]; logitScale: number }

export type Backend = 'auto' | 'js' | 'onnx';

export interface LinearProbeOptions {
  /** Class names (default "0".."K-1" for K = max label + 1). */
  classes?: string[];
  /** A fixed C: no sweep for it (the blend weight may still be chosen on held-out data). */
  C?: number;
  /** C values to try (default: 10^-6 … 10^6, one per decade, then refined around the best). */
  cGrid?: number[];
  /** The zero-shot head to blend with; needed for `blend` other than 'none'. */
  zeroShot?: ZeroShotPrior;
  /**
   * Weight α of the linear head in α·linear + (1 − α)·zero-shot logits: 'auto' (default with a zero-shot
   * prior) picks α in {0, 0.1, …, 1} jointly with C on held-out data, and falls back to zero-shot (α = 0)
   * when some class has fewer than two images to split; 'none' is the plain probe (α = 1).
   */
  blend?: 'auto' | 'none' | number;
  /** Share of each class held out to choose C when every class has enough images (default 0.2). */
  heldOutFraction?: number;
  /** Seed of the held-out split / folds (default 0). */
  seed?: number;
  maxIter?: number;
  /** Stop when max |gradient of the objective / n| ≤ tol (default 1e-6). */
  tol?: number;
  backend?: Backend;
  /** One line per fitted C, for progress output. */
  onProgress?: (message: string) => void;
}

export interface SweepPoint {
  C: number;
  /** Held-out top-1 of the linear head alone. */
  accuracy: number;
  /** Held-out mean cross-entropy of the linear head alone. */
  logLoss: number;
  /** With blending: the best α at this C and its held-out accuracy. */
  blend?: { alpha: number; accuracy: number };
}

export interface LinearProbeFit {
  /** The head to use: the blend when one was chosen, else the plain probe. */
  head: LinearHead;
  /** The linear head alone (α = 1), fitted on all the training rows at `plainC`. */
  plain: LinearHead;
  plainC: number;
  /** C of the linear part of `head`, and its weight α (1: no zero-shot part; 0: zero-shot alone). */
  C: number;
  alpha: number;
  selection: {
    scheme: 'holdout' | 'kfold' | 'none';
    /** Why no held-out data was used (scheme 'none'). */
    reason?: string;
    folds: number;
    heldOut: number;
    sweep: SweepPoint[];
    /** Held-out accuracy of the chosen plain and blended heads, and of zero-shot alone. */
    accuracy?: { plain: number; head: number; zeroShot?: number };
  };
  /** The final plain fit. */
  optimizer: Omit<LbfgsResult, 'x'> & { backend: 'js' | 'onnx' };
  seconds: number;
}

const DEFAULT_GRID = Array.from({ length: 13 }, (_, i) => 10 ** (i - 6));
/** C when nothing can be held out to choose it: L2-normalized features make C ≈ 1 a moderate prior. */
const DEFAULT_C = 1;
const ALPHAS = Array.from({ length: 11 }, (_, i) => i / 10);
/** Held-out split when every class has at least this many images; k-fold below. */
const HOLDOUT_MIN_PER_CLASS = 20;
const MAX_FOLDS = 5;
/** Problems with rows·dim·classes above this run their products in ONNX Runtime (backend 'auto'). */
const ONNX_MIN_WORK = 4_000_000;

export function toFeatureMatrix(features: readonly Float32Array[] | FeatureMatrix): FeatureMatrix {
  if (!Array.isArray(features)) {
    const m = features as FeatureMatrix;
    if (m.data.length !== m.rows * m.dim) throw new Error(`feature matrix holds ${m.data.length} values, not ${m.rows} × ${m.dim}`);
    return m;
  }
  const rows = features as readonly Float32Array[];
  if (!rows.length) throw new Error('no feature rows');
  const dim = rows[0]!.length;
  const data = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    if (r.length !== dim) throw new Error(`feature row ${i} has ${r.length} values, expected ${dim}`);
    data.set(r, i * dim);
  });
  return { data, rows: rows.length, dim };
}

/** The rows `idx` of `x`, in that order, as a new matrix. */
export function takeRows(x: FeatureMatrix, idx: ArrayLike<number>): FeatureMatrix {
  const data = new Float32Array(idx.length * x.dim);
  for (let j = 0; j < idx.length; j++) data.set(x.data.subarray(idx[j]! * x.dim, (idx[j]! + 1) * x.dim), j * x.dim);
  return { data, rows: idx.length, dim: x.dim };
}

// ---- the objective ----

let onnxSessions: Promise<[ort.InferenceSession, ort.InferenceSession, ort.InferenceSession]> | undefined;

/** logits = X · W^T, gradient = R^T · X and the Gram matrix X^T · X as ORT Gemms (shared, built once). */
function probeSessions(): Promise<[ort.InferenceSession, ort.InferenceSession, ort.InferenceSession]> {
  if (!onnxSessions) {
    const fwd = new Graph('probe_logits');
    fwd.input('x', 'float32', ['n', 'd']);
    fwd.input('w', 'float32', ['k', 'd']);
    fwd.output(fwd.op('Gemm', ['x', 'w'], { transB: attr.i(1) }), 'z', 'float32', ['n', 'k']);
    const bwd = new Graph('probe_grad');
    bwd.input('r', 'float32', ['n', 'k']);
    bwd.input('x', 'float32', ['n', 'd']);
    bwd.output(bwd.op('Gemm', ['r', 'x'], { transA: attr.i(1) }), 'g', 'float32', ['k', 'd']);
    const gram = new Graph('probe_gram');
    gram.input('x', 'float32', ['n', 'd']);
    gram.output(gram.op('Gemm', ['x', 'x'], { transA: attr.i(1) }), 'g', 'float32', ['d', 'd']);
    onnxSessions = Promise.all([createSession(fwd), createSession(bwd), createSession(gram)]);
  }
  return onnxSessions;
}

/**
 * (1/n)·[Σ CE + 1/(2C)‖W‖²] and its gradient; θ = [W (k × d, row-major), b (k)].
 *
 * L-BFGS runs on an exactly equivalent problem with centered, rescaled features x' = s·(x − μ): logits
 * W x + b = W' x' + b' with W' = W / s and b' = b + W μ, and the penalty ‖W‖² = s²‖W'‖². CLIP embeddings
 * of one dataset share a large common direction (cosines of 0.8–0.9 between unrelated images), which
 * couples W with b and makes the raw problem badly conditioned; centering removes that, and s brings the
 * features to unit mean square norm. `fit` takes and returns θ in the original parametrization.
 */
class SoftmaxObjective {
  readonly k: number;
  readonly backend: 'js' | 'onnx';
  /** The centered, rescaled features. */
  readonly x: FeatureMatrix;
  private readonly mu: Float64Array;
  private readonly scale: number;
  private xTensor?: ort.Tensor;

  constructor(x: FeatureMatrix, readonly labels: Int32Array, k: number, backend: Backend) {
    this.k = k;
    this.backend = backend === 'auto' ? (x.rows * x.dim * k >= ONNX_MIN_WORK ? 'onnx' : 'js') : backend;
    const { rows: n, dim: d } = x;
    this.mu = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) this.mu[j]! += x.data[i * d + j]!;
    for (let j = 0; j < d; j++) this.mu[j]! /= n;
    const data = new Float32Array(n * d);
    let ss = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) {
        const v = x.data[i * d + j]! - this.mu[j]!;
        ss += v * v;
      }
    }
    this.scale = ss > 0 ? Math.sqrt(n / ss) : 1;
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = (x.data[i * d + j]! - this.mu[j]!) * this.scale;
    this.x = { data, rows: n, dim: d };
  }

  get size(): number { return this.k * (this.x.dim + 1); }

  /** θ → θ' (centered, rescaled problem). */
  private inward(theta: Float64Array): Float64Array {
    const { k } = this;
    const d = this.x.dim;
    const out = new Float64Array(theta.length);
    for (let c = 0; c < k; c++) {
      let wmu = 0;
      for (let j = 0; j < d; j++) {
        out[c * d + j] = theta[c * d + j]! / this.scale;
        wmu += theta[c * d + j]! * this.mu[j]!;
      }
      out[k * d + c] = theta[k * d + c]! + wmu;
    }
    return out;
  }

  /** θ' → θ. */
  private outward(inner: Float64Array): Float64Array {
    const { k } = this;
    const d = this.x.dim;
    const out = new Float64Array(inner.length);
    for (let c = 0; c < k; c++) {
      let wmu = 0;
      for (let j = 0; j < d; j++) {
        const w = inner[c * d + j]! * this.scale;
        out[c * d + j] = w;
        wmu += w * this.mu[j]!;
      }
      out[k * d + c] = inner[k * d + c]! - wmu;
    }
    return out;
  }

  /** The objective in the inner parametrization θ'. */
  async evaluate(theta: Float64Array, g: Float64Array, C: number): Promise<number> {
    const { rows: n, dim: d } = this.x;
    const k = this.k;
    const loss = this.backend === 'onnx' ? await this.dataTermOnnx(theta, g) : this.dataTermJs(theta, g);
    let reg = 0;
    const inv = (this.scale * this.scale) / C;
    for (let j = 0; j < k * d; j++) {
      reg += theta[j]! * theta[j]!;
      g[j]! += inv * theta[j]!;
    }
    for (let j = 0; j < g.length; j++) g[j]! /= n;
    return (loss + 0.5 * inv * reg) / n;
  }

  /** Σ CE into the return value; Σ (P − Y) x and Σ (P − Y) into g (overwritten). */
  private dataTermJs(theta: Float64Array, g: Float64Array): number {
    const { data: X, rows: n, dim: d } = this.x;
    const k = this.k;
    g.fill(0);
    const z = new Float64Array(k);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const o = i * d;
      for (let c = 0; c < k; c++) {
        const w = c * d;
        let s = 0;
        for (let j = 0; j < d; j++) s += X[o + j]! * theta[w + j]!;
        z[c] = s + theta[k * d + c]!;
      }
      const y = this.labels[i]!;
      const lse = logSumExp(z);
      loss += lse - z[y]!;
      for (let c = 0; c < k; c++) {
        const r = Math.exp(z[c]! - lse) - (c === y ? 1 : 0);
        g[k * d + c]! += r;
        const w = c * d;
        for (let j = 0; j < d; j++) g[w + j]! += r * X[o + j]!;
      }
    }
    return loss;
  }

  private async dataTermOnnx(theta: Float64Array, g: Float64Array): Promise<number> {
    const { data: X, rows: n, dim: d } = this.x;
    const k = this.k;
    const [fwd, bwd] = await probeSessions();
    this.xTensor ??= new ort.Tensor('float32', X, [n, d]);
    const w = new ort.Tensor('float32', Float32Array.from(theta.subarray(0, k * d)), [k, d]);
    const zs = (await fwd.run({ x: this.xTensor, w })).z!.data as Float32Array;
    const r = new Float32Array(n * k);
    const gb = new Float64Array(k);
    const z = new Float64Array(k);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < k; c++) z[c] = zs[i * k + c]! + theta[k * d + c]!;
      const y = this.labels[i]!;
      const lse = logSumExp(z);
      loss += lse - z[y]!;
      for (let c = 0; c < k; c++) {
        const p = Math.exp(z[c]! - lse) - (c === y ? 1 : 0);
        r[i * k + c] = p;
        gb[c]! += p;
      }
    }
    const gw = (await bwd.run({ r: new ort.Tensor('float32', r, [n, k]), x: this.xTensor })).g!.data as Float32Array;
    for (let j = 0; j < k * d; j++) g[j] = gw[j]!;
    g.set(gb, k * d);
    return loss;
  }

  /** The features' covariance (after centering and scaling), computed once. */
  private covariance?: Float64Array;

  /**
   * M⁻¹ for preconditioned L-BFGS. The data term's Hessian in W is Σ_i (diag(p_i) − p_i p_iᵀ) ⊗ x_i x_iᵀ / n;
   * with p near uniform that is about q·Σ (q ≈ 1/k) per class, Σ the feature covariance, plus the penalty
   * (s²/C)/n·I; the bias block is about q·I (features are centered, so no W–b coupling). M = blockdiag(
   * Σ + λ/q·I per class, I) captures the correlated directions that make plain L-BFGS crawl; L-BFGS's
   * own scaling γ absorbs q as the fit sharpens. Applied through a Cholesky factor of the d × d block.
   */
  private async preconditioner(C: number): Promise<(v: Float64Array) => void> {
    const { rows: n, dim: d, data } = this.x;
    const k = this.k;
    if (!this.covariance) {
      // n·d² work: 60,000 × 512 is ~8 G multiply-adds, seconds in JS, a fraction of one in ORT.
      const cov = new Float64Array(d * d);
      if (this.backend === 'onnx') {
        this.xTensor ??= new ort.Tensor('float32', data, [n, d]);
        const gram = (await (await probeSessions())[2].run({ x: this.xTensor })).g!.data as Float32Array;
        for (let a = 0; a < d; a++) for (let b = 0; b <= a; b++) cov[a * d + b] = gram[a * d + b]!;
      } else {
        for (let i = 0; i < n; i++) {
          const o = i * d;
          for (let a = 0; a < d; a++) {
            const xa = data[o + a]!;
            if (xa === 0) continue;
            for (let b = 0; b <= a; b++) cov[a * d + b]! += xa * data[o + b]!;
          }
        }
      }
      for (let a = 0; a < d; a++) for (let b = 0; b <= a; b++) { cov[a * d + b]! /= n; cov[b * d + a] = cov[a * d + b]!; }
      this.covariance = cov;
    }
    const ridge = (k * this.scale * this.scale) / (C * n);
    // Cholesky of Σ + ridge·I (+ a floor relative to the trace, so a rank-deficient Σ stays definite).
    const L = Float64Array.from(this.covariance);
    let trace = 0;
    for (let a = 0; a < d; a++) trace += L[a * d + a]!;
    for (let a = 0; a < d; a++) L[a * d + a]! += ridge + 1e-8 * (trace / d || 1);
    for (let j = 0; j < d; j++) {
      let diag = L[j * d + j]!;
      for (let m = 0; m < j; m++) diag -= L[j * d + m]! ** 2;
      const ljj = Math.sqrt(Math.max(diag, 1e-300));
      L[j * d + j] = ljj;
      for (let i = j + 1; i < d; i++) {
        let v = L[i * d + j]!;
        for (let m = 0; m < j; m++) v -= L[i * d + m]! * L[j * d + m]!;
        L[i * d + j] = v / ljj;
      }
    }
    return (v) => {
      for (let c = 0; c < k; c++) {
        const o = c * d;
        for (let i = 0; i < d; i++) { // forward: L z = v
          let t = v[o + i]!;
          for (let m = 0; m < i; m++) t -= L[i * d + m]! * v[o + m]!;
          v[o + i] = t / L[i * d + i]!;
        }
        for (let i = d - 1; i >= 0; i--) { // backward: Lᵀ w = z
          let t = v[o + i]!;
          for (let m = i + 1; m < d; m++) t -= L[m * d + i]! * v[o + m]!;
          v[o + i] = t / L[i * d + i]!;
        }
      }
    };
  }

  /** Minimize at C from `start` (original parametrization, default 0); the result's x is in it too. */
  async fit(C: number, start: Float64Array | undefined, opts: { maxIter?: number; tol?: number; ftol?: number }): Promise<LbfgsResult> {
    const r = await lbfgs((t, g) => this.evaluate(t, g, C), start ? this.inward(start) : new Float64Array(this.size), {
      maxIter: opts.maxIter, gtol: opts.tol ?? 1e-6, ftol: opts.ftol,
      // Applying M⁻¹ costs ~2·k·d² per iteration against ~4·n·d·k for the objective: worth it only with
      // many more rows than dimensions (few-shot sets are cheaper to iterate on plainly).
      precondition: this.x.rows >= 8 * this.x.dim ? await this.preconditioner(C) : undefined,
    });
    return { ...r, x: this.outward(r.x) };
  }
}

function logSumExp(z: Float64Array): number {
  let m = -Infinity;
  for (let c = 0; c < z.length; c++) m = Math.max(m, z[c]!);
  let s = 0;
  for (let c = 0; c < z.length; c++) s += Math.exp(z[c]! - m);
  return m + Math.log(s);
}

// ---- heads and prediction ----

function headFrom(theta: Float64Array, classes: string[], dim: number): LinearHead {
  const k = classes.length;
  return {
    kind: 'linear', classes, dim,
    weights: Array.from({ length: k }, (_, c) => theta.slice(c * dim, (c + 1) * dim)),
    bias: theta.slice(k * dim, k * dim + k),
  };
}

/** The zero-shot classifier as a linear head: W = exp(logit_scale) · T, b = 0. */
export function zeroShotHead(prior: ZeroShotPrior, classes: string[]): LinearHead {
  const dim = prior.weights[0]?.length ?? 0;
  return { kind: 'linear', classes, dim, weights: prior.weights.map((t) => Float64Array.from(t, (v) => prior.logitScale * v)), bias: new Float64Array(classes.length) };
}

/** α·a + (1 − α)·b: logit interpolation is weight interpolation, so the blend is again a linear head. */
export function blendHeads(a: LinearHead, b: LinearHead, alpha: number): LinearHead {
  if (a.dim !== b.dim || a.classes.length !== b.classes.length) throw new Error('cannot blend heads of different shapes');
  const mix = (x: Float64Array, y: Float64Array) => Float64Array.from(x, (v, i) => alpha * v + (1 - alpha) * y[i]!);
  return { kind: 'linear', classes: a.classes, dim: a.dim, weights: a.weights.map((w, c) => mix(w, b.weights[c]!)), bias: mix(a.bias, b.bias) };
}

/**
 * Logits of one embedding; the embedding is L2-normalized first (in float64), as the features the head
 * was fitted on were.
 */
export function headLogits(head: LinearHead, embedding: ArrayLike<number>): Float64Array {
  if (embedding.length !== head.dim) throw new Error(`embedding has ${embedding.length} values, the head expects ${head.dim}`);
  let nn = 0;
  for (let j = 0; j < head.dim; j++) nn += embedding[j]! * embedding[j]!;
  const inv = 1 / (Math.sqrt(nn) || 1);
  const out = new Float64Array(head.classes.length);
  head.weights.forEach((w, c) => {
    let s = 0;
    for (let j = 0; j < head.dim; j++) s += w[j]! * embedding[j]!;
    out[c] = s * inv + head.bias[c]!;
  });
  return out;
}

/** Top-1 accuracy of a head on the rows of `x` with true classes `y`. */
export function headAccuracy(head: LinearHead, x: FeatureMatrix, y: readonly number[]): number {
  let hits = 0;
  for (let i = 0; i < x.rows; i++) {
    const z = headLogits(head, x.data.subarray(i * x.dim, (i + 1) * x.dim));
    let best = 0;
    for (let c = 1; c < z.length; c++) if (z[c]! > z[best]!) best = c;
    if (best === y[i]) hits++;
  }
  return hits / x.rows;
}

export function softmax64(z: Float64Array): Float64Array {
  const lse = logSumExp(z);
  return z.map((v) => Math.exp(v - lse));
}

// ---- held-out data ----

interface Fold { train: Int32Array; val: Int32Array }

function byClass(labels: Int32Array, k: number): number[][] {
  const out: number[][] = Array.from({ length: k }, () => []);
  labels.forEach((y, i) => out[y]!.push(i));
  return out;
}

/**
 * Stratified held-out data: one split holding out `fraction` of each class when every class has at least
 * HOLDOUT_MIN_PER_CLASS images; otherwise min(5, smallest class) folds, fold f holding out the images of
 * each class at shuffled positions ≡ f (mod folds), so every class keeps images on both sides.
 */
function makeFolds(labels: Int32Array, k: number, fraction: number, seed: number): { scheme: 'holdout' | 'kfold'; folds: Fold[] } | { reason: string } {
  const groups = byClass(labels, k);
  const smallest = Math.min(...groups.map((g) => g.length));
  if (smallest < 2) return { reason: 'a class has fewer than 2 training images, so none can be held out' };
  const rng = new Rng(seed, 0x70726f62);
  const shuffled = groups.map((g) => Array.from(permutation(g.length, rng), (p) => g[p]!));
  const split = (isVal: (pos: number, size: number) => boolean): Fold => {
    const train: number[] = [];
    const val: number[] = [];
    for (const g of shuffled) g.forEach((i, pos) => (isVal(pos, g.length) ? val : train).push(i));
    return { train: Int32Array.from(train.sort((a, b) => a - b)), val: Int32Array.from(val.sort((a, b) => a - b)) };
  };
  if (smallest >= HOLDOUT_MIN_PER_CLASS) {
    return { scheme: 'holdout', folds: [split((pos, size) => pos < Math.max(1, Math.round(fraction * size)))] };
  }
  const f = Math.min(MAX_FOLDS, smallest);
  return { scheme: 'kfold', folds: Array.from({ length: f }, (_, fold) => split((pos) => pos % f === fold)) };
}

// ---- the fit ----

function checkInputs(x: FeatureMatrix, labels: readonly number[], classes: string[], prior?: ZeroShotPrior): Int32Array {
  if (labels.length !== x.rows) throw new Error(`${x.rows} feature rows but ${labels.length} labels`);
  const k = classes.length;
  if (k < 2) throw new Error(`a linear probe needs at least 2 classes, got ${k}`);
  const y = Int32Array.from(labels, (v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= k) throw new RangeError(`label ${v} of row ${i} is not a class index in 0..${k - 1}`);
    return v;
  });
  const counts = new Array<number>(k).fill(0);
  y.forEach((v) => counts[v]!++);
  const empty = classes.filter((_, c) => !counts[c]);
  if (empty.length) throw new Error(`no training images for class${empty.length > 1 ? 'es' : ''} ${empty.slice(0, 10).join(', ')}`);
  for (let i = 0; i < x.data.length; i++) {
    if (!Number.isFinite(x.data[i])) throw new Error(`feature row ${Math.floor(i / x.dim)} has a non-finite value`);
  }
  if (prior) {
    if (prior.weights.length !== k) throw new Error(`zero-shot prior has ${prior.weights.length} classes, the probe ${k}`);
    if (prior.weights.some((w) => w.length !== x.dim)) throw new Error(`zero-shot prior embeddings are not ${x.dim}-dimensional like the features`);
  }
  return y;
}

/**
 * Top-1 hits and summed cross-entropy of α·lin + (1 − α)·zs logits on rows `val` of x, for each α; with a
 * zero-shot head also `wins` / `losses`: rows the blend gets right and zero-shot wrong, and the reverse.
 */
function scoreHeldOut(x: FeatureMatrix, y: Int32Array, val: Int32Array, lin: LinearHead, zs: LinearHead | undefined, alphas: readonly number[]): { hits: number[]; loss: number[]; wins: number[]; losses: number[] } {
  const hits = alphas.map(() => 0);
  const loss = alphas.map(() => 0);
  const wins = alphas.map(() => 0);
  const losses = alphas.map(() => 0);
  const z = new Float64Array(lin.classes.length);
  const argmax = (v: Float64Array) => { let best = 0; for (let c = 1; c < v.length; c++) if (v[c]! > v[best]!) best = c; return best; };
  for (const i of val) {
    const row = x.data.subarray(i * x.dim, (i + 1) * x.dim);
    const a = headLogits(lin, row);
    const b = zs ? headLogits(zs, row) : a;
    const zsRight = argmax(b) === y[i];
    alphas.forEach((al, j) => {
      for (let c = 0; c < z.length; c++) z[c] = al * a[c]! + (1 - al) * b[c]!;
      const right = argmax(z) === y[i];
      if (right) hits[j]!++;
      if (right && !zsRight) wins[j]!++;
      if (!right && zsRight) losses[j]!++;
      loss[j]! += logSumExp(z) - z[y[i]!]!;
    });
  }
  return { hits, loss, wins, losses };
}

/**
 * A blend replaces zero-shot only when it beats it on held-out images by more than chance: with w rows it
 * alone gets right and l rows only zero-shot gets right, w − l ≥ 2·√(w + l) (a sign test at about two
 * standard deviations). Small held-out sets would otherwise pick a blend that won a few coin flips.
 */
const beatsZeroShot = (wins: number, losses: number): boolean => wins > losses && wins - losses >= 2 * Math.sqrt(wins + losses);

/**
 * Fit a linear probe: choose C (and the zero-shot blend weight) on held-out rows, then refit on every row.
 * `features`: L2-normalized embeddings (rows of a matrix, or arrays); `labels`: class indices.
 */
export async function fitLinearProbe(features: readonly Float32Array[] | FeatureMatrix, labels: readonly number[], opts: LinearProbeOptions = {}): Promise<LinearProbeFit> {
  const t0 = performance.now();
  const x = toFeatureMatrix(features);
  const classes = opts.classes ?? Array.from({ length: Math.max(...labels) + 1 }, (_, i) => String(i));
  const y = checkInputs(x, labels, classes, opts.zeroShot);
  const k = classes.length;
  const blend = opts.blend ?? (opts.zeroShot ? 'auto' : 'none');
  if (blend !== 'none' && !opts.zeroShot) throw new Error('blending with zero-shot needs the zero-shot head (class text embeddings)');
  if (typeof blend === 'number' && !(blend >= 0 && blend <= 1)) throw new RangeError(`blend weight must be in [0, 1], got ${blend}`);
  if (opts.C !== undefined && !(opts.C > 0 && Number.isFinite(opts.C))) throw new RangeError(`C must be a positive number, got ${opts.C}`);
  const zs = opts.zeroShot ? zeroShotHead(opts.zeroShot, classes) : undefined;
  const alphas = blend === 'auto' ? ALPHAS : typeof blend === 'number' ? [blend] : [1];
  const fitOpts = { maxIter: opts.maxIter, tol: opts.tol };
  // Held-out accuracy does not need the last digits of each sweep fit: 10× looser than the final fit.
  const sweepOpts = { maxIter: opts.maxIter, tol: 10 * (opts.tol ?? 1e-6), ftol: 1e-10 };
  const log = opts.onProgress ?? (() => {});

  const needSweep = opts.C === undefined || alphas.length > 1;
  const made = needSweep ? makeFolds(y, k, opts.heldOutFraction ?? 0.2, opts.seed ?? 0) : { reason: 'C and the blend weight were given' };
  const sweep: SweepPoint[] = [];
  let plainC = opts.C ?? DEFAULT_C;
  let C = plainC;
  let alpha = blend === 'auto' ? 0 : blend === 'none' ? 1 : blend;
  let selection: LinearProbeFit['selection'];
  let foldFits: Map<number, Float64Array> | undefined;
  // Warm starts: the solution at the nearest C already fitted, per fold and for the final fit.
  const warm = (fits: Map<number, Float64Array>, c: number): Float64Array | undefined => {
    let best: number | undefined;
    for (const key of fits.keys()) if (best === undefined || Math.abs(Math.log(key / c)) < Math.abs(Math.log(best / c))) best = key;
    return best === undefined ? undefined : fits.get(best);
  };

  if ('reason' in made) {
    // Nothing to hold out: the plain probe uses the given or default C, an automatic blend is zero-shot.
    selection = { scheme: 'none', reason: made.reason, folds: 0, heldOut: 0, sweep };
  } else {
    const folds = made.folds.map((f) => ({
      ...f, fits: new Map<number, Float64Array>(),
      obj: new SoftmaxObjective(takeRows(x, f.train), Int32Array.from(f.train, (i) => y[i]!), k, opts.backend ?? 'auto'),
    }));
    const heldOut = folds.reduce((s, f) => s + f.val.length, 0);
    const points = new Map<number, { point: SweepPoint; hits: number[]; loss: number[]; bj: number }>();
    const evaluate = async (c: number) => {
      if (points.has(c)) return points.get(c)!;
      const hits = alphas.map(() => 0);
      const loss = alphas.map(() => 0);
      const wins = alphas.map(() => 0);
      const losses = alphas.map(() => 0);
      let linHits = 0;
      let linLoss = 0;
      for (const f of folds) {
        const r = await f.obj.fit(c, warm(f.fits, c), sweepOpts);
        f.fits.set(c, r.x);
        const lin = headFrom(r.x, classes, x.dim);
        const s = scoreHeldOut(x, y, f.val, lin, zs, [1, ...alphas]);
        linHits += s.hits[0]!;
        linLoss += s.loss[0]!;
        alphas.forEach((_, j) => {
          hits[j]! += s.hits[j + 1]!; loss[j]! += s.loss[j + 1]!; wins[j]! += s.wins[j + 1]!; losses[j]! += s.losses[j + 1]!;
        });
      }
      // The best α at this C: zero-shot (α = 0) unless a blend clearly beats it; a fixed α is kept as given.
      const zsAt = alphas.indexOf(0);
      let bj = zsAt >= 0 && blend === 'auto' ? zsAt : 0;
      alphas.forEach((al, j) => {
        if (blend === 'auto' && al > 0 && !beatsZeroShot(wins[j]!, losses[j]!)) return;
        if (hits[j]! > hits[bj]! || (hits[j] === hits[bj] && loss[j]! < loss[bj]!)) bj = j;
      });
      const point: SweepPoint = {
        C: c, accuracy: linHits / heldOut, logLoss: linLoss / heldOut,
        ...(zs ? { blend: { alpha: alphas[bj]!, accuracy: hits[bj]! / heldOut } } : {}),
      };
      log(`C=${c.toExponential(1)}: held-out accuracy ${(point.accuracy * 100).toFixed(2)}%${point.blend ? `, blended ${(point.blend.accuracy * 100).toFixed(2)}% (α=${point.blend.alpha})` : ''}`);
      const entry = { point, hits, loss, bj };
      points.set(c, entry);
      return entry;
    };
    // Best plain C: accuracy, then log-loss, then the smaller C (stronger regularization).
    const bestPlain = () => [...points.values()].reduce((a, b) => (b.point.accuracy > a.point.accuracy
      || (b.point.accuracy === a.point.accuracy && (b.point.logLoss < a.point.logLoss || (b.point.logLoss === a.point.logLoss && b.point.C < a.point.C))) ? b : a));
    const bestBlend = () => [...points.values()].reduce((a, b) => {
      const ha = a.hits[a.bj]!, hb = b.hits[b.bj]!;
      return hb > ha || (hb === ha && b.loss[b.bj]! < a.loss[a.bj]!) ? b : a;
    });
    if (opts.C !== undefined) await evaluate(opts.C);
    else {
      // Coarse sweep upward (each fit warm-starts from the last). Held-out log-loss is U-shaped in C while
      // accuracy often plateaus at small C (the prototype regime), so the sweep stops only once three C
      // values in a row improve on none of: the best log-loss, the best plain and blended accuracy.
      // Then two bisections (in log C) around each best.
      const grid = [...(opts.cGrid ?? DEFAULT_GRID)].sort((a, b) => a - b);
      if (!grid.length || grid.some((c) => !(c > 0 && Number.isFinite(c)))) throw new RangeError('the C grid needs positive numbers');
      let stale = 0;
      let minLoss = Infinity;
      for (const c of grid) {
        const before = points.size ? [bestPlain(), bestBlend()] : [];
        const e = await evaluate(c);
        const improved = !before.length || e.point.logLoss < minLoss || (e === bestPlain() && e !== before[0]) || (zs && e === bestBlend() && e !== before[1]);
        minLoss = Math.min(minLoss, e.point.logLoss);
        stale = improved ? 0 : stale + 1;
        if (stale >= 3) break;
      }
      for (const pick of zs && alphas.length > 1 ? [bestPlain, bestBlend] : [bestPlain]) {
        for (const step of [0.5, 0.25]) {
          const c = pick().point.C;
          const ratio = 10 ** step;
          await evaluate(c / ratio);
          await evaluate(c * ratio);
        }
      }
    }
    const p = bestPlain();
    plainC = p.point.C;
    const b = zs ? bestBlend() : p;
    C = b.point.C;
    alpha = zs ? alphas[b.bj]! : 1;
    const zsOnly = zs ? alphas.indexOf(0) : -1;
    selection = {
      scheme: made.scheme, folds: folds.length, heldOut,
      sweep: [...points.values()].map((e) => e.point).sort((a2, b2) => a2.C - b2.C),
      accuracy: {
        plain: p.point.accuracy, head: zs ? b.hits[b.bj]! / heldOut : p.point.accuracy,
        ...(zsOnly >= 0 ? { zeroShot: b.hits[zsOnly]! / heldOut } : {}),
      },
    };
    // Final fits start from the first fold's solution at the chosen C.
    foldFits = folds[0]!.fits;
  }

  const all = new SoftmaxObjective(x, y, k, opts.backend ?? 'auto');
  const final = await all.fit(plainC, foldFits?.get(plainC), fitOpts);
  log(`final fit at C=${plainC.toExponential(1)}: ${final.iterations} iterations, ${final.status}`);
  const plain = headFrom(final.x, classes, x.dim);
  let head = plain;
  if (zs && alpha > 0 && alpha < 1) {
    const lin = C === plainC ? plain : headFrom((await all.fit(C, foldFits?.get(C) ?? final.x, fitOpts)).x, classes, x.dim);
    head = blendHeads(lin, zs, alpha);
  } else {
    // α = 1: the plain probe; α = 0: zero-shot alone, which has no C of its own.
    if (zs && alpha === 0) head = zs;
    C = plainC;
  }
  const { x: _, ...stats } = final;
  return { head, plain, plainC, C, alpha, selection, optimizer: { ...stats, backend: all.backend }, seconds: (performance.now() - t0) / 1000 };
}
