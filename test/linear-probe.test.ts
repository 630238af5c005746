// The linear probe: the fit reaches scikit-learn's optimum (checked against closed form and Newton's method),
// is deterministic, blends with zero-shot safely, and a saved head classifies like the evaluation did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { fitLinearProbe, headAccuracy, zeroShotHead, type FeatureMatrix, type LinearHead } from '../src/tasks/linear-probe.js';
import { readHead, writeHead } from '../src/tasks/head-file.js';
import { lbfgs } from '../src/tasks/lbfgs.js';
import { readLabeledCsv } from '../src/tasks/datasets.js';
import { fashionProbeSplits } from '../src/data/fashion-probe.js';
import { Rng } from '../src/tasks/rng.js';

/** Unit vectors around class means: x = normalize(spread · mean_c + noise). */
function gaussian(n: number, d: number, k: number, spread: number, seed: number, means?: Float64Array[]): { x: FeatureMatrix; y: number[]; means: Float64Array[] } {
  const r = new Rng(seed);
  const mu = means ?? Array.from({ length: k }, () => Float64Array.from({ length: d }, () => r.normal()));
  const data = new Float32Array(n * d);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % k;
    let s = 0;
    const v = Array.from({ length: d }, (_, j) => spread * mu[c]![j]! + r.normal());
    for (const t of v) s += t * t;
    v.forEach((t, j) => { data[i * d + j] = t / Math.sqrt(s); });
    y.push(c);
  }
  return { x: { data, rows: n, dim: d }, y, means: mu };
}

/** scikit-learn's objective Σ CE + ‖W‖²/(2C) and its gradient, written out plainly in float64. */
function objective(x: FeatureMatrix, y: number[], k: number, C: number, theta: Float64Array): { f: number; g: Float64Array } {
  const d = x.dim;
  const g = new Float64Array(theta.length);
  let f = 0;
  for (let i = 0; i < x.rows; i++) {
    const z = Array.from({ length: k }, (_, c) => {
      let s = theta[k * d + c]!;
      for (let j = 0; j < d; j++) s += theta[c * d + j]! * x.data[i * d + j]!;
      return s;
    });
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    f += lse - z[y[i]!]!;
    for (let c = 0; c < k; c++) {
      const r = Math.exp(z[c]! - lse) - (c === y[i] ? 1 : 0);
      g[k * d + c]! += r;
      for (let j = 0; j < d; j++) g[c * d + j]! += r * x.data[i * d + j]!;
    }
  }
  for (let j = 0; j < k * d; j++) { f += theta[j]! ** 2 / (2 * C); g[j]! += theta[j]! / C; }
  return { f, g };
}

const thetaOf = (h: LinearHead): Float64Array => Float64Array.from([...h.weights.flatMap((w) => [...w]), ...h.bias]);

/** Biases with mean zero: the objective does not change when every bias moves by the same amount. */
function centerBias(theta: Float64Array, k: number, d: number): Float64Array {
  const out = Float64Array.from(theta);
  let m = 0;
  for (let c = 0; c < k; c++) m += theta[k * d + c]! / k;
  for (let c = 0; c < k; c++) out[k * d + c]! -= m;
  return out;
}

/** Newton's method in float64 on the same objective, with the Hessian built explicitly. */
function newton(x: FeatureMatrix, y: number[], k: number, C: number): Float64Array {
  const d = x.dim;
  const p = k * (d + 1);
  const theta = new Float64Array(p);
  // Feature j of row i, with the bias as feature d; parameter (c, j) sits at c*d+j, bias c at k*d+c.
  const at = (c: number, j: number) => (j === d ? k * d + c : c * d + j);
  for (let it = 0; it < 50; it++) {
    const { g } = objective(x, y, k, C, theta);
    const H = Array.from({ length: p }, () => new Float64Array(p));
    for (let i = 0; i < x.rows; i++) {
      const xi = (j: number) => (j === d ? 1 : x.data[i * d + j]!);
      const z = Array.from({ length: k }, (_, c) => { let s = theta[k * d + c]!; for (let j = 0; j < d; j++) s += theta[c * d + j]! * xi(j); return s; });
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, b) => a + b, 0);
      const pr = e.map((v) => v / sum);
      for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
        const w = (a === b ? pr[a]! : 0) - pr[a]! * pr[b]!;
        for (let j = 0; j <= d; j++) for (let l = 0; l <= d; l++) H[at(a, j)]![at(b, l)]! += w * xi(j) * xi(l);
      }
    }
    // The penalty, plus a tiny ridge: shifting every bias by the same amount changes nothing.
    for (let q = 0; q < p; q++) H[q]![q]! += q < k * d ? 1 / C : 1e-12;
    const step = solve(H, Array.from(g, (v) => -v));
    step.forEach((s, q) => { theta[q]! += s; });
    if (Math.max(...step.map(Math.abs)) < 1e-13) break;
  }
  return centerBias(theta, k, d);
}

function solve(A: Float64Array[], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[piv]![c]!)) piv = r;
    [M[c], M[piv]] = [M[piv]!, M[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / M[c]![c]!;
      for (let q = c; q <= n; q++) M[r]![q]! -= f * M[c]![q]!;
    }
  }
  return M.map((row, i) => row[n]! / row[i]!);
}

test('1-D, two classes: the fit matches the closed-form optimum', async () => {
  // m points at x = +1 of class 0 and m at x = -1 of class 1. By symmetry b = 0 and W = (w, -w), and the
  // objective 2m·log(1 + exp(-2w)) + w²/C is stationary where w = 2mC·sigmoid(-2w).
  const m = 7;
  const C = 0.3;
  const x: FeatureMatrix = { data: Float32Array.from({ length: 2 * m }, (_, i) => (i < m ? 1 : -1)), rows: 2 * m, dim: 1 };
  const y = Array.from({ length: 2 * m }, (_, i) => (i < m ? 0 : 1));
  let lo = 0;
  let hi = 100;
  for (let i = 0; i < 200; i++) {
    const w = (lo + hi) / 2;
    if (w - 2 * m * C / (1 + Math.exp(2 * w)) < 0) lo = w; else hi = w;
  }
  const fit = await fitLinearProbe(x, y, { C, blend: 'none', tol: 1e-12 });
  assert.ok(Math.abs(fit.plain.weights[0]![0]! - lo) < 1e-9, `w0 ${fit.plain.weights[0]![0]} vs ${lo}`);
  assert.ok(Math.abs(fit.plain.weights[1]![0]! + lo) < 1e-9, `w1 ${fit.plain.weights[1]![0]} vs ${-lo}`);
  assert.ok(Math.abs(fit.plain.bias[0]!) < 1e-9 && Math.abs(fit.plain.bias[1]!) < 1e-9, `bias ${fit.plain.bias}`);
});

test('gaussian classes: zero gradient at the solution, equal to Newton in float64, on both backends', async () => {
  const k = 3;
  const C = 2;
  const { x, y } = gaussian(90, 4, k, 1, 7);
  const reference = newton(x, y, k, C);
  assert.ok(Math.max(...objective(x, y, k, C, reference).g.map(Math.abs)) < 1e-9, 'Newton converged');
  const js = await fitLinearProbe(x, y, { C, blend: 'none', backend: 'js', tol: 1e-10 });
  const theta = centerBias(thetaOf(js.plain), k, x.dim);
  const { g } = objective(x, y, k, C, theta);
  assert.ok(Math.max(...g.map(Math.abs)) < 1e-7 * x.rows, `max |gradient| ${Math.max(...g.map(Math.abs))}`);
  theta.forEach((v, i) => assert.ok(Math.abs(v - reference[i]!) < 1e-5, `parameter ${i}: ${v} vs Newton ${reference[i]}`));
  // ONNX Runtime's float32 products: the same optimum to float32 precision.
  const onnx = await fitLinearProbe(x, y, { C, blend: 'none', backend: 'onnx' });
  assert.equal(onnx.optimizer.backend, 'onnx');
  centerBias(thetaOf(onnx.plain), k, x.dim).forEach((v, i) => assert.ok(Math.abs(v - reference[i]!) < 1e-3, `onnx parameter ${i}: ${v} vs Newton ${reference[i]}`));
});

test('correlated features (a large shared direction, features on scales 1 to 1e-2): the preconditioned fit converges in few iterations', async () => {
  // CLIP embeddings of one dataset look like this: a common direction and correlated small variations.
  // Without the covariance preconditioner this takes 96 iterations at C = 1000; with it, 29.
  const n = 2000;
  const d = 16;
  const k = 4;
  const r = new Rng(9);
  const u = Float64Array.from({ length: d }, () => r.normal());
  const mu = Array.from({ length: k }, () => Float64Array.from({ length: d }, () => r.normal()));
  const data = new Float32Array(n * d);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % k;
    const v = Array.from({ length: d }, (_, j) => 3 * u[j]! + 10 ** (-j / 8) * (0.5 * mu[c]![j]! + 0.5 * r.normal()));
    const s = Math.hypot(...v);
    v.forEach((t, j) => { data[i * d + j] = t / s; });
    y.push(c);
  }
  const x = { data, rows: n, dim: d };
  const fit = await fitLinearProbe(x, y, { C: 1000, blend: 'none', backend: 'js' });
  assert.equal(fit.optimizer.status, 'gtol');
  assert.ok(fit.optimizer.iterations <= 50, `${fit.optimizer.iterations} iterations`);
  const { g } = objective(x, y, k, 1000, thetaOf(fit.plain));
  assert.ok(Math.max(...g.map(Math.abs)) < 1e-5 * n, `max |gradient| ${Math.max(...g.map(Math.abs))}`);
});

test('L-BFGS minimizes a badly scaled quadratic', async () => {
  const scales = [1, 10, 100, 1000];
  const r = await lbfgs((v, g) => {
    let f = 0;
    v.forEach((t, i) => { f += 0.5 * scales[i]! * (t - i) ** 2; g[i] = scales[i]! * (t - i); });
    return f;
  }, new Float64Array(4), { gtol: 1e-10 });
  r.x.forEach((t, i) => assert.ok(Math.abs(t - i) < 1e-7, `x[${i}] = ${t} (${r.status})`));
});

test('the C sweep and the fit are deterministic', async () => {
  const { x, y } = gaussian(300, 8, 4, 0.6, 3);
  const a = await fitLinearProbe(x, y, {});
  const b = await fitLinearProbe(x, y, {});
  assert.equal(a.plainC, b.plainC);
  assert.equal(a.selection.scheme, 'holdout');
  assert.ok(a.selection.sweep.length >= 3);
  assert.deepEqual(thetaOf(a.plain), thetaOf(b.plain));
});

const accuracy = headAccuracy;

test('few shots with zero-shot blending are at least as accurate as zero-shot', async () => {
  const k = 5;
  const d = 16;
  const classes = Array.from({ length: k }, (_, i) => `c${i}`);
  const norm = (v: Float64Array) => { const s = Math.hypot(...v); return Float32Array.from(v, (t) => t / s); };
  const run = async (prior: { weights: Float32Array[]; logitScale: number }, shots: number, seed: number) => {
    const train = gaussian(k * shots, d, k, 0.45, seed);
    const test = gaussian(1000, d, k, 0.45, seed + 1, train.means);
    const truePrior = { weights: train.means.map(norm), logitScale: 20 };
    const p = prior.weights.length ? prior : truePrior;
    const fit = await fitLinearProbe(train.x, train.y, { classes, zeroShot: p });
    return {
      fit, zs: accuracy(zeroShotHead(p, classes), test.x, test.y),
      plain: accuracy(fit.plain, test.x, test.y), blended: accuracy(fit.head, test.x, test.y),
    };
  };
  // A zero-shot head that knows the class directions (its text embeddings are the true means), on classes
  // noisy enough that one or two shots alone classify worse than it: blending must not lose to it.
  for (const shots of [1, 2, 4]) {
    for (const seed of [11, 21, 31]) {
      const r = await run({ weights: [], logitScale: 0 }, shots, seed);
      assert.ok(r.blended >= r.zs, `${shots}-shot, seed ${seed}: blended ${r.blended} < zero-shot ${r.zs} (plain ${r.plain}, α ${r.fit.alpha})`);
      if (shots === 1) {
        // Nothing to hold out with one image per class: the head falls back to zero-shot exactly.
        assert.equal(r.fit.selection.scheme, 'none');
        assert.equal(r.fit.alpha, 0);
      }
    }
  }
  // A zero-shot head that knows nothing (random directions): with 8 shots the blend leans on the probe.
  const r0 = new Rng(5);
  const random = { weights: Array.from({ length: k }, () => norm(Float64Array.from({ length: d }, () => r0.normal()))), logitScale: 20 };
  const r = await run(random, 8, 41);
  assert.ok(r.fit.alpha > 0, `α ${r.fit.alpha}`);
  assert.ok(r.blended > r.zs + 0.2, `blended ${r.blended} vs zero-shot ${r.zs}`);
});

test('a saved head reads back bit for bit; malformed heads are refused by field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-head-'));
  try {
    const head: LinearHead = { kind: 'linear', classes: ['a', 'b'], dim: 3, weights: [Float64Array.of(0.1, 1 / 3, -2e-17), Float64Array.of(Math.PI, 0, -1)], bias: Float64Array.of(0.25, -0.25) };
    const file = join(dir, 'h.json');
    writeHead(file, head, { model: 'm', path: '/m', family: 'hf' }, { C: 1 });
    const back = readHead(file);
    assert.deepEqual(back.head, head);
    assert.equal(back.model.model, 'm');
    const bad = (patch: Record<string, unknown>, message: RegExp) => {
      writeFileSync(file, JSON.stringify({ format: 'clip-linear-head', version: 1, model: { model: 'm', path: '/m', family: 'hf' }, classes: ['a', 'b'], dim: 2, weights: [[1, 2], [3, 4]], bias: [0, 0], ...patch }));
      assert.throws(() => readHead(file), message);
    };
    bad({ weights: [[1, 2], [3]] }, /weights\[1\] must be a list of 2 numbers/);
    bad({ bias: [0, 'x'] }, /bias\[1\] is not a finite number/);
    bad({ classes: ['a', 'a'] }, /classes has duplicates/);
    bad({ format: 'other' }, /format/);
    bad({ dim: 1e9 }, /dim must be an integer/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function clip(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLIP_BIN, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('clip classify --head predicts what eval linear-probe did, and a rerun reuses the features', { skip: SKIP_FIXTURES }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-probe-'));
  try {
    const groups: Record<string, string[]> = {
      cat: ['chelsea.png', 'chelsea-q90.jpg', 'chelsea-palette.png'],
      space: ['astronaut.png', 'rocket.png', 'clip-diagram-rgba.png'],
      things: ['coffee.png', 'camera.png', 'horse.png', 'flower.jpg'],
    };
    for (const [cls, files] of Object.entries(groups)) {
      mkdirSync(join(dir, 'data', cls), { recursive: true });
      for (const f of files) copyFileSync(fixture('common', 'images', f), join(dir, 'data', cls, f));
    }
    const data = join(dir, 'data');
    const head = join(dir, 'head.json');
    const args = ['eval', 'linear-probe', '--model', fixture('hf-clip-tiny'), data, data, '--features-dir', join(dir, 'features'), '--save-head', head, '--json'];
    const first = clip(...args);
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout);
    assert.equal(report.counts.train, 10);
    assert.equal(report.features.reused.train, 0);
    const again = JSON.parse(clip(...args).stdout);
    assert.equal(again.features.reused.train, 10, 'second run embeds nothing');
    assert.deepEqual(again.detail.predictions, report.detail.predictions);

    const cls = clip('classify', '--head', head, data, '--json');
    assert.equal(cls.code, 0, cls.stderr);
    const out = JSON.parse(cls.stdout) as { image: string; label: string; scores: Record<string, number> }[];
    const expected = new Map((report.detail.predictions as { input: string; predicted: string }[]).map((p) => [p.input, p.predicted]));
    assert.equal(out.length, 10);
    for (const r of out) assert.equal(r.label, expected.get(r.image), r.image);
    assert.deepEqual(Object.keys(out[0]!.scores).sort(), ['cat', 'space', 'things']);
    // A head does not fit another model's features.
    const wrong = clip('classify', '--head', head, '--model', fixture('zh-clip-tiny'), data, '--json');
    if (wrong.code !== 0) assert.match(wrong.stderr, /takes \d+-dim features|fitted on/);
    else assert.match(wrong.stderr, /fitted on/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Fashion-MNIST probe splits: every image of both splits, labelled by class name, paths relative to the CSV', async () => {
  const root = mkdtempSync(join(tmpdir(), 'clip-fm-'));
  try {
    const dir = join(root, 'packages', 'fashion-mnist', 'usr', 'share', 'datasets', 'fashion-mnist');
    mkdirSync(dir, { recursive: true });
    const idx = (dims: number[], data: number[]) => {
      const head = Buffer.alloc(4 + 4 * dims.length);
      head[2] = 0x08;
      head[3] = dims.length;
      dims.forEach((v, i) => head.writeUInt32BE(v, 4 + 4 * i));
      return gzipSync(Buffer.concat([head, Buffer.from(data)]));
    };
    for (const [prefix, labels] of [['train', [9, 0, 6]], ['t10k', [1, 2]]] as const) {
      writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), idx([labels.length, 2, 2], labels.flatMap((l) => [l, 0, 255, 7])));
      writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), idx([labels.length], [...labels]));
    }
    const rendered: string[] = [];
    const renderStep = async (style: string, _inputs: unknown, jobs: { out: string; render: (dst: string) => Promise<void> }[]) => {
      const out = join(root, 'images', style);
      mkdirSync(out, { recursive: true });
      for (const j of jobs) { await j.render(join(out, j.out)); rendered.push(`${style}/${j.out}`); }
      return (name: string) => join(out, name);
    };
    const [train, test] = await fashionProbeSplits(root, renderStep, []);
    const ds = readLabeledCsv(train!);
    assert.deepEqual(ds.samples.map((s) => ds.classes[s.label]), ['Ankle boot', 'T-shirt/top', 'Shirt']);
    assert.ok(ds.samples.every((s) => existsSync(s.input)), 'paths resolve from the CSV');
    assert.deepEqual(readLabeledCsv(test!).classes, ['Pullover', 'Trouser']);
    assert.deepEqual(rendered, ['fashion-mnist-train/00000.png', 'fashion-mnist-train/00001.png', 'fashion-mnist-train/00002.png', 'fashion-mnist-test/00000.png', 'fashion-mnist-test/00001.png']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
