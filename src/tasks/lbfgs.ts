// Limited-memory BFGS (Nocedal & Wright, algorithm 7.4: two-loop recursion) with a backtracking Armijo
// line search, over Float64Arrays. Deterministic: no randomness, and the caller's objective decides
// everything else. Used for the linear probe, whose objective is smooth and strictly convex, so the
// simple line search suffices; pairs with non-positive curvature are skipped (they cannot occur for a
// strictly convex function in exact arithmetic, but rounding can produce one near the optimum).

/** Writes the gradient at `x` into `g` and returns the objective. */
export type Objective = (x: Float64Array, g: Float64Array) => Promise<number> | number;

export interface LbfgsOptions {
  /** Iterations (default 1000, the CLIP paper's probe setting). */
  maxIter?: number;
  /** Stop when max |gradient| ≤ gtol (default 1e-6). */
  gtol?: number;
  /** Stop when an iteration lowers f by ≤ ftol · max(|f|, 1) (default 1e-12). */
  ftol?: number;
  /** Correction pairs kept (default 10). */
  memory?: number;
  /**
   * Applies M⁻¹ in place, M ≈ the Hessian up to a scalar: the initial inverse Hessian of the two-loop
   * recursion becomes γ·M⁻¹ instead of γ·I (preconditioned L-BFGS). Must be symmetric positive definite.
   */
  precondition?: (v: Float64Array) => void;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  /** max |gradient| at x. */
  gradMax: number;
  iterations: number;
  evaluations: number;
  /** Why it stopped; `line-search`: no step lowered f (at the limits of floating point). */
  status: 'gtol' | 'ftol' | 'max-iter' | 'line-search';
}

const dot = (a: Float64Array, b: Float64Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const maxAbs = (a: Float64Array): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};

export async function lbfgs(fg: Objective, x0: Float64Array, opts: LbfgsOptions = {}): Promise<LbfgsResult> {
  const maxIter = opts.maxIter ?? 1000;
  const gtol = opts.gtol ?? 1e-6;
  const ftol = opts.ftol ?? 1e-12;
  const m = opts.memory ?? 10;
  const n = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = await fg(x, g);
  let evaluations = 1;
  if (!Number.isFinite(f)) throw new Error(`L-BFGS: the objective is ${f} at the starting point`);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const d = new Float64Array(n);
  const alpha = new Float64Array(m);
  let status: LbfgsResult['status'] = 'max-iter';
  let iterations = 0;
  if (maxAbs(g) <= gtol) status = 'gtol';
  else {
    for (; iterations < maxIter; iterations++) {
      // d = -H g by the two-loop recursion; H0 = (s'y / y'y) I from the newest pair.
      for (let i = 0; i < n; i++) d[i] = -g[i]!;
      for (let j = S.length - 1; j >= 0; j--) {
        const a = rho[j]! * dot(S[j]!, d);
        alpha[j] = a;
        const y = Y[j]!;
        for (let i = 0; i < n; i++) d[i]! -= a * y[i]!;
      }
      if (S.length) {
        const last = S.length - 1;
        let yMy = dot(Y[last]!, Y[last]!);
        if (opts.precondition) {
          const my = Float64Array.from(Y[last]!);
          opts.precondition(my);
          yMy = dot(Y[last]!, my);
        }
        opts.precondition?.(d);
        const gamma = dot(S[last]!, Y[last]!) / yMy;
        for (let i = 0; i < n; i++) d[i]! *= gamma;
      } else opts.precondition?.(d);
      for (let j = 0; j < S.length; j++) {
        const b = rho[j]! * dot(Y[j]!, d);
        const s = S[j]!;
        for (let i = 0; i < n; i++) d[i]! += (alpha[j]! - b) * s[i]!;
      }
      let gd = dot(g, d);
      if (!(gd < 0)) {
        // Not a descent direction (rounding): restart from steepest descent.
        S.length = 0; Y.length = 0; rho.length = 0;
        for (let i = 0; i < n; i++) d[i] = -g[i]!;
        opts.precondition?.(d);
        gd = dot(g, d);
      }
      // First step (no curvature yet): a unit-length move along -g.
      let t = S.length ? 1 : Math.min(1, 1 / Math.sqrt(-gd));
      const xn = new Float64Array(n);
      const gn = new Float64Array(n);
      let fn = NaN;
      let accepted = false;
      for (let ls = 0; ls < 40; ls++) {
        for (let i = 0; i < n; i++) xn[i] = x[i]! + t * d[i]!;
        fn = await fg(xn, gn);
        evaluations++;
        if (Number.isFinite(fn) && fn <= f + 1e-4 * t * gd) { accepted = true; break; }
        // Minimum of the quadratic through f, f'(0) and f(t), kept within [0.1 t, 0.5 t].
        const tq = Number.isFinite(fn) ? (-gd * t * t) / (2 * (fn - f - gd * t)) : 0.1 * t;
        t = Math.min(0.5 * t, Math.max(0.1 * t, tq));
      }
      if (!accepted) { status = 'line-search'; break; }
      const s = new Float64Array(n);
      const y = new Float64Array(n);
      for (let i = 0; i < n; i++) { s[i] = xn[i]! - x[i]!; y[i] = gn[i]! - g[i]!; }
      const sy = dot(s, y);
      if (sy > 1e-10 * Math.sqrt(dot(s, s) * dot(y, y))) {
        if (S.length === m) { S.shift(); Y.shift(); rho.shift(); }
        S.push(s); Y.push(y); rho.push(1 / sy);
      }
      const fPrev = f;
      x = xn; g = gn; f = fn;
      if (maxAbs(g) <= gtol) { status = 'gtol'; iterations++; break; }
      if (fPrev - f <= ftol * Math.max(Math.abs(f), 1)) { status = 'ftol'; iterations++; break; }
    }
  }
  return { x, f, gradMax: maxAbs(g), iterations, evaluations, status };
}
