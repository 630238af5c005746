// Every gradient rule against central finite differences on a tiny graph: loss = sum(op(x...) * R) for a
// fixed random R. Graphs run in float64 inside ORT (inputs are float32 and cast in; every float constant
// is cast too) so the checks can be tight; Erf and Conv have no float64 CPU kernels and run in float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, Graph, type Dim } from '../src/graph/graph.js';
import { appendGradients } from '../src/graph/autodiff.js';
import { activation, l2normalize, layerNorm, selfAttention } from '../src/graph/ops.js';
import { toOnnxModel } from '../src/graph/onnx.js';
import { createSession, ort } from '../src/runtime/session.js';
import { rng } from '../src/search/synthetic.js';
import { sigmoidLoss } from '../src/train/clip-loss.js';

/** float64 graphs skip ORT's 'all'-level fusions: some fused contrib kernels (QuickGelu) are float32-only. */
const session = (g: Graph, f32?: boolean) =>
  f32 ? createSession(g) : ort.InferenceSession.create(toOnnxModel(g), { graphOptimizationLevel: 'basic', logSeverityLevel: 3 });

interface In {
  shape: number[];
  /** Declared dims (default: shape); symbols force the rules' dynamic paths. */
  dims?: Dim[];
  /** Value generator (default uniform in [-1, 1]). */
  gen?: (r: () => number) => number;
  /** Not differentiated (used only through its shape). */
  constant?: boolean;
}

interface Case {
  inputs: Record<string, In>;
  build: (g: Graph, x: Record<string, string>) => string;
  /** float32 end to end (ops without float64 kernels). */
  f32?: boolean;
  tol?: number;
}

const toD = (g: Graph, v: string) => g.op('Cast', [v], { to: attr.i(11) });

/** Make a float32 graph compute in float64: every float32 initializer is cast once at the top. */
function castConstants(g: Graph): void {
  const casts = [];
  for (const t of [...g.initializers.values()]) {
    if (t.type !== 'float32') continue;
    g.initializers.delete(t.name);
    g.init(`${t.name}.f32`, t.data, t.dims);
    casts.push({ op: 'Cast', domain: '', name: `${t.name}.cast`, inputs: [`${t.name}.f32`], outputs: [t.name], attrs: { to: attr.i(11) } });
  }
  g.nodes.unshift(...casts);
}

function makeGraph(c: Case, R?: Float32Array, rdims?: number[]): { g: Graph; names: string[] } {
  const g = new Graph('case');
  const x: Record<string, string> = {};
  for (const [name, inp] of Object.entries(c.inputs)) {
    g.input(name, 'float32', inp.dims ?? inp.shape);
    x[name] = c.f32 ? name : toD(g, name);
  }
  const y = c.build(g, x);
  if (!c.f32) castConstants(g);
  if (!R) {
    g.output(c.f32 ? y : g.op('Cast', [y], { to: attr.i(1) }), 'y');
    return { g, names: [] };
  }
  const rv = g.constF(R, rdims);
  const loss = g.op('ReduceSum', [g.op('Mul', [y, c.f32 ? rv : toD(g, rv)])], { keepdims: attr.i(0) });
  if (c.f32) g.output(loss, 'hi');
  else {
    // The float64 loss leaves as hi + lo float32 parts (the IR has no float64 outputs).
    const hi = g.op('Cast', [loss], { to: attr.i(1) });
    g.output(hi, 'hi');
    g.output(g.op('Cast', [g.op('Sub', [loss, toD(g, hi)])], { to: attr.i(1) }), 'lo');
  }
  const names = Object.keys(c.inputs).filter((k) => !c.inputs[k]!.constant);
  const grads = appendGradients(g, loss, names);
  assert.deepEqual(grads.unreached, []);
  return { g, names };
}

async function check(label: string, c: Case, seed = 1): Promise<void> {
  const r = rng(seed);
  const feeds: Record<string, ort.Tensor> = {};
  const data: Record<string, Float32Array> = {};
  for (const [name, inp] of Object.entries(c.inputs)) {
    const n = inp.shape.reduce((a, b) => a * b, 1);
    data[name] = Float32Array.from({ length: n }, () => (inp.gen ? inp.gen(r) : 2 * r() - 1));
    feeds[name] = new ort.Tensor('float32', data[name]!, inp.shape);
  }
  const probe = await session(makeGraph(c).g, c.f32);
  const y = (await probe.run(feeds)).y!;
  const R = Float32Array.from({ length: y.size }, () => 2 * r() - 1);
  const { g } = makeGraph(c, R, [...y.dims]);
  const s = await session(g, c.f32);
  const base = await s.run(feeds);
  const lossOf = async (f: Record<string, ort.Tensor>) => {
    const o = await s.run(f, c.f32 ? ['hi'] : ['hi', 'lo']);
    return (o.hi!.data as Float32Array)[0]! + (c.f32 ? 0 : (o.lo!.data as Float32Array)[0]!);
  };
  const h = c.f32 ? 1e-2 : 1e-3;
  const tol = c.tol ?? (c.f32 ? 5e-4 : 1e-5);
  for (const [name, inp] of Object.entries(c.inputs)) {
    if (inp.constant) continue;
    const analytic = base[`grad/${name}`]!.data as Float32Array;
    assert.deepEqual([...base[`grad/${name}`]!.dims], inp.shape, `${label}: grad/${name} shape`);
    const n = analytic.length;
    const picks = n <= 24 ? [...Array(n).keys()] : Array.from({ length: 24 }, () => Math.floor(r() * n));
    let worst = 0;
    for (const k of picks) {
      const x0 = data[name]![k]!;
      const xp = Math.fround(x0 + h);
      const xm = Math.fround(x0 - h);
      const at = async (v: number) => {
        const d = Float32Array.from(data[name]!);
        d[k] = v;
        return lossOf({ ...feeds, [name]: new ort.Tensor('float32', d, inp.shape) });
      };
      const numeric = ((await at(xp)) - (await at(xm))) / (xp - xm);
      const err = Math.abs(numeric - analytic[k]!) / (1 + Math.abs(numeric));
      worst = Math.max(worst, err);
      assert.ok(err <= tol, `${label}: d/d${name}[${k}] analytic ${analytic[k]} vs numeric ${numeric} (err ${err.toExponential(2)} > ${tol})`);
    }
    if (process.env.AUTODIFF_VERBOSE) console.log(`${label} d/d${name}: worst relative error ${worst.toExponential(2)}`);
  }
}

const pos = (r: () => number) => 0.5 + r();
const away0 = (r: () => number) => (r() < 0.5 ? -1 : 1) * (0.1 + r());
const i64 = (g: Graph, v: number[], dims?: number[]) => g.constI64(v, dims);

const cases: Record<string, Case> = {
  'MatMul batched x 2-D weight': {
    inputs: { a: { shape: [2, 3, 4] }, w: { shape: [4, 5] } },
    build: (g, { a, w }) => g.op('MatMul', [a!, w!]),
  },
  'MatMul same-rank batched': {
    inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 4, 5] } },
    build: (g, { a, b }) => g.op('MatMul', [a!, b!]),
  },
  'MatMul broadcasting both sides': {
    inputs: { a: { shape: [2, 1, 3, 4] }, b: { shape: [3, 4, 2] } },
    build: (g, { a, b }) => g.op('MatMul', [a!, b!]),
  },
  'MatMul 2-D x batched': {
    inputs: { a: { shape: [3, 4] }, b: { shape: [2, 4, 5] } },
    build: (g, { a, b }) => g.op('MatMul', [a!, b!]),
  },
  'Add broadcast bias': {
    inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4] } },
    build: (g, { a, b }) => g.op('Add', [a!, b!]),
  },
  'Add broadcast both ways': {
    inputs: { a: { shape: [2, 1, 4] }, b: { shape: [3, 1] } },
    build: (g, { a, b }) => g.op('Add', [a!, b!]),
  },
  'Add with symbolic dims (dynamic un-broadcast)': {
    inputs: { a: { shape: [2, 3, 4], dims: ['n', 's', 4] }, b: { shape: [1, 3, 4], dims: ['one', 's', 4] } },
    build: (g, { a, b }) => g.op('Add', [a!, b!]),
  },
  'Sub broadcast': {
    inputs: { a: { shape: [3] }, b: { shape: [2, 3] } },
    build: (g, { a, b }) => g.op('Sub', [a!, b!]),
  },
  'Mul broadcast scalar': {
    inputs: { a: { shape: [2, 3] }, b: { shape: [] } },
    build: (g, { a, b }) => g.op('Mul', [a!, b!]),
  },
  'Mul x * x': {
    inputs: { a: { shape: [2, 3] } },
    build: (g, { a }) => g.op('Mul', [a!, a!]),
  },
  'Div broadcast': {
    inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 3, 1], gen: pos } },
    build: (g, { a, b }) => g.op('Div', [a!, b!]),
  },
  Neg: { inputs: { a: { shape: [5] } }, build: (g, { a }) => g.op('Neg', [a!]) },
  Identity: { inputs: { a: { shape: [5] } }, build: (g, { a }) => g.op('Identity', [a!]) },
  Exp: { inputs: { a: { shape: [2, 3] } }, build: (g, { a }) => g.op('Exp', [a!]) },
  Log: { inputs: { a: { shape: [2, 3], gen: pos } }, build: (g, { a }) => g.op('Log', [a!]) },
  Sqrt: { inputs: { a: { shape: [2, 3], gen: pos } }, build: (g, { a }) => g.op('Sqrt', [a!]) },
  Sigmoid: { inputs: { a: { shape: [2, 3] } }, build: (g, { a }) => g.op('Sigmoid', [a!]) },
  Tanh: { inputs: { a: { shape: [2, 3] } }, build: (g, { a }) => g.op('Tanh', [a!]) },
  Relu: { inputs: { a: { shape: [2, 4], gen: away0 } }, build: (g, { a }) => g.op('Relu', [a!]) },
  'Erf (float32)': { f32: true, inputs: { a: { shape: [2, 3] } }, build: (g, { a }) => g.op('Erf', [a!]) },
  'Softmax last axis': {
    inputs: { a: { shape: [2, 3, 4] } },
    build: (g, { a }) => g.op('Softmax', [a!], { axis: attr.i(-1) }),
  },
  'Softmax axis 0': { inputs: { a: { shape: [3, 4] } }, build: (g, { a }) => g.op('Softmax', [a!], { axis: attr.i(0) }) },
  'LogSoftmax axis 0': { inputs: { a: { shape: [3, 4] } }, build: (g, { a }) => g.op('LogSoftmax', [a!], { axis: attr.i(0) }) },
  'LogSoftmax last axis': { inputs: { a: { shape: [2, 5] } }, build: (g, { a }) => g.op('LogSoftmax', [a!], { axis: attr.i(-1) }) },
  LayerNormalization: {
    inputs: { x: { shape: [2, 3, 5] }, s: { shape: [5] }, b: { shape: [5] } },
    build: (g, { x, s, b }) => g.op('LayerNormalization', [x!, s!, b!], { axis: attr.i(-1), epsilon: attr.f(1e-5) }),
  },
  'LayerNormalization over two axes': {
    inputs: { x: { shape: [2, 3, 4] }, s: { shape: [3, 4] }, b: { shape: [3, 4] } },
    build: (g, { x, s, b }) => g.op('LayerNormalization', [x!, s!, b!], { axis: attr.i(1), epsilon: attr.f(1e-5) }),
  },
  'ReduceSumSquare keepdims': {
    inputs: { a: { shape: [2, 3] } },
    build: (g, { a }) => g.op('ReduceSumSquare', [a!], { axes: attr.ints([-1]), keepdims: attr.i(1) }),
  },
  'ReduceMean no keepdims': {
    inputs: { a: { shape: [2, 3, 4] } },
    build: (g, { a }) => g.op('ReduceMean', [a!], { axes: attr.ints([1]), keepdims: attr.i(0) }),
  },
  'ReduceMean over all, symbolic dims': {
    inputs: { a: { shape: [2, 3], dims: ['n', 'm'] } },
    build: (g, { a }) => g.op('ReduceMean', [a!], { keepdims: attr.i(0) }),
  },
  'ReduceSum axes input': {
    inputs: { a: { shape: [2, 3, 4] } },
    build: (g, { a }) => g.op('ReduceSum', [a!, i64(g, [0, 2])], { keepdims: attr.i(0) }),
  },
  'ReduceSum all': { inputs: { a: { shape: [2, 3] } }, build: (g, { a }) => g.op('ReduceSum', [a!], { keepdims: attr.i(1) }) },
  Reshape: {
    inputs: { a: { shape: [2, 3, 4] } },
    build: (g, { a }) => g.op('Reshape', [a!, i64(g, [0, 2, -1])]),
  },
  Transpose: {
    inputs: { a: { shape: [2, 3, 4] } },
    build: (g, { a }) => g.op('Transpose', [a!], { perm: attr.ints([2, 0, 1]) }),
  },
  'Split (one output unused)': {
    inputs: { a: { shape: [2, 6] } },
    build: (g, { a }) => {
      const [p, , q] = g.node('Split', [a!, i64(g, [1, 2, 3])], { axis: attr.i(1) }, { outputs: 3 });
      return g.op('Concat', [q!, p!], { axis: attr.i(1) });
    },
  },
  'Squeeze / Unsqueeze': {
    inputs: { a: { shape: [2, 1, 3] } },
    build: (g, { a }) => g.op('Unsqueeze', [g.op('Squeeze', [a!, i64(g, [1])]), i64(g, [0, 3])]),
  },
  'Concat axis 1': {
    inputs: { a: { shape: [2, 2] }, b: { shape: [2, 3] } },
    build: (g, { a, b }) => g.op('Concat', [a!, b!], { axis: attr.i(1) }),
  },
  'Gather embedding with repeated ids': {
    inputs: { e: { shape: [5, 3] } },
    build: (g, { e }) => g.op('Gather', [e!, i64(g, [1, 3, 1, 0, 3, 3], [2, 3])], { axis: attr.i(0) }),
  },
  'Gather scalar index on axis 1 (CLS)': {
    inputs: { x: { shape: [2, 4, 3] } },
    build: (g, { x }) => g.op('Gather', [x!, i64(g, [0], [])], { axis: attr.i(1) }),
  },
  'Gather negative index': {
    inputs: { x: { shape: [3, 4] } },
    build: (g, { x }) => g.op('Gather', [x!, i64(g, [-1, 1], [2])], { axis: attr.i(1) }),
  },
  'Slice static': {
    inputs: { a: { shape: [3, 5] } },
    build: (g, { a }) => g.op('Slice', [a!, i64(g, [1, -4]), i64(g, [3, 4]), i64(g, [1, 0])]),
  },
  'Slice to the length of another input (text positions)': {
    inputs: { t: { shape: [6, 3] }, x: { shape: [2, 4, 3], dims: ['b', 's', 3] } },
    build: (g, { t, x }) => g.op('Add', [x!, g.op('Slice', [t!, i64(g, [0]), g.op('Shape', [x!], { start: attr.i(1), end: attr.i(2) }), i64(g, [0])])]),
  },
  'Slice with a runtime negative start': {
    inputs: { t: { shape: [6, 2] }, x: { shape: [3], dims: ['k'], constant: true } },
    build: (g, { t, x }) => {
      const neg = g.op('Neg', [g.op('Shape', [x!])]); // -3: the last three rows
      return g.op('Slice', [t!, neg, i64(g, [100]), i64(g, [0])]);
    },
  },
  'Pad constant': {
    inputs: { a: { shape: [2, 3, 2] } },
    build: (g, { a }) => g.op('Pad', [a!, i64(g, [0, 1, 0, 0, 2, 1])]),
  },
  'Conv patch embedding (float32)': {
    f32: true,
    inputs: { x: { shape: [2, 3, 8, 8] }, w: { shape: [4, 3, 4, 4] }, b: { shape: [4] } },
    build: (g, { x, w, b }) => g.op('Conv', [x!, w!, b!], { kernel_shape: attr.ints([4, 4]), strides: attr.ints([4, 4]) }),
  },
  'Conv patches with a cropped remainder (float32)': {
    f32: true,
    inputs: { x: { shape: [1, 2, 7, 9], dims: ['b', 2, 'h', 'w'] }, w: { shape: [3, 2, 3, 3] } },
    build: (g, { x, w }) => g.op('Conv', [x!, w!], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([3, 3]) }),
  },
  // A convolutional stem: 3x3, stride 2, pad 1 (odd and even sizes: the transposed conv's output_padding).
  'Conv 3x3 stride 2 pad 1 (float32)': {
    f32: true,
    inputs: { x: { shape: [2, 3, 8, 7] }, w: { shape: [4, 3, 3, 3] }, b: { shape: [4] } },
    build: (g, { x, w, b }) => g.op('Conv', [x!, w!, b!], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }),
  },
  'Conv 3x2 stride 1 with uneven pads (float32)': {
    f32: true,
    inputs: { x: { shape: [1, 2, 5, 6] }, w: { shape: [3, 2, 3, 2] } },
    build: (g, { x, w }) => g.op('Conv', [x!, w!], { kernel_shape: attr.ints([3, 2]), strides: attr.ints([1, 1]), pads: attr.ints([0, 1, 2, 0]) }),
  },
  'Conv stack (two stride-2 layers with an activation between, float32)': {
    f32: true,
    inputs: { x: { shape: [2, 3, 9, 9] }, w1: { shape: [4, 3, 3, 3] }, b1: { shape: [4] }, w2: { shape: [5, 4, 3, 3] } },
    build: (g, { x, w1, b1, w2 }) => {
      const k = { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) };
      // quick_gelu, not the stem's ReLU: a finite difference across ReLU's kink is not its derivative.
      return g.op('Conv', [activation(g, g.op('Conv', [x!, w1!, b1!], k), 'quick_gelu'), w2!], k);
    },
  },
  'L2 normalize (ReduceSumSquare, Sqrt, Div)': {
    inputs: { a: { shape: [3, 4] } },
    build: (g, { a }) => l2normalize(g, a!),
  },
  'quick_gelu / gelu_new activations': {
    inputs: { a: { shape: [2, 5] } },
    build: (g, { a }) => g.op('Add', [activation(g, a!, 'quick_gelu'), activation(g, a!, 'gelu_new')]),
  },
  'gelu (Erf, float32)': { f32: true, inputs: { a: { shape: [2, 5] } }, build: (g, { a }) => activation(g, a!, 'gelu') },
  // Checkpoint layouts as the towers write them for training (models/transformer.ts param, vision-transformer.ts):
  // gradients reach the stored tensors through these.
  'stored q/k/v stacked (Concat axis 0) and transposed for MatMul': {
    inputs: { x: { shape: [2, 3, 4] }, q: { shape: [4, 4] }, k: { shape: [4, 4] }, v: { shape: [4, 4] } },
    build: (g, { x, q, k, v }) => g.op('MatMul', [x!, g.op('Transpose', [g.op('Concat', [q!, k!, v!], { axis: attr.i(0) })], { perm: attr.ints([1, 0]) })]),
  },
  'class embedding added to row 0 of the position table (Unsqueeze, Pad, Add)': {
    inputs: { pos: { shape: [5, 3] }, cls: { shape: [3] } },
    build: (g, { pos, cls }) => g.op('Add', [pos!, g.op('Pad', [g.op('Unsqueeze', [cls!, i64(g, [0])]), i64(g, [0, 0, 4, 0])])]),
  },
  'Gather scalar row on axis 0 (token type 0)': {
    inputs: { t: { shape: [2, 4] } },
    build: (g, { t }) => g.op('Gather', [t!, i64(g, [0], [])], { axis: attr.i(0) }),
  },
  // The pairwise sigmoid loss (EyeLike, Concat, LogSoftmax, Slice, ReduceSum/Mean), batch size symbolic,
  // logits up to ±20 so that the stable log-sigmoid form is what is checked.
  'sigmoid loss on logits': {
    inputs: { z: { shape: [3, 3], dims: ['n', 'n'], gen: (r) => 40 * r() - 20 } },
    build: (g, { z }) => sigmoidLoss(g, z!),
  },
};

for (const [label, c] of Object.entries(cases)) test(`autodiff: ${label}`, () => check(label, c));

test('autodiff: causal self-attention block (plain ops) with LayerNorm', async () => {
  const [S, D, H] = [4, 8, 2];
  const mask = new Float32Array(6 * 6);
  for (let i = 0; i < 6; i++) for (let j = i + 1; j < 6; j++) mask[i * 6 + j] = -Infinity;
  await check('attention', {
    inputs: {
      x: { shape: [2, S, D], dims: ['b', 's', D] },
      qkvW: { shape: [D, 3 * D] }, qkvB: { shape: [3 * D] }, outW: { shape: [D, D] }, outB: { shape: [D] },
      lnS: { shape: [D] }, lnB: { shape: [D] },
    },
    build: (g, v) => {
      const h = layerNorm(g, v.x!, v.lnS!, v.lnB!, 1e-5);
      const table = g.constF(mask, [6, 6]);
      return selfAttention(g, h, { qkvW: v.qkvW!, qkvB: v.qkvB!, outW: v.outW!, outB: v.outB! }, H, D, { causal: true, causalTable: table });
    },
  });
});

test('autodiff: only paths to trainable values get a backward', () => {
  const g = new Graph('frozen');
  const x = g.input('x', 'float32', [2, 3]);
  const frozen = g.init('frozen', new Float32Array(12).fill(0.5), [3, 4]);
  const w = g.init('w', new Float32Array(12).fill(0.25), [3, 4]);
  const unused = g.init('unused', new Float32Array(4), [4]);
  const a = g.op('Sigmoid', [g.op('MatMul', [x, frozen])]);
  const b = g.op('MatMul', [x, w]);
  g.op('Add', [b, unused]); // a dead branch
  const loss = g.op('ReduceSum', [g.op('Mul', [a, b])], { keepdims: attr.i(0) });
  const before = g.nodes.length;
  const res = appendGradients(g, loss, ['w', 'unused']);
  assert.deepEqual(res.unreached, ['unused']);
  const added = g.nodes.slice(before);
  // dW = x^T @ (gy * a): one MatMul and no Sigmoid/MatMul backward through the frozen branch.
  assert.equal(added.filter((n) => n.op === 'MatMul').length, 1);
  assert.ok(!added.some((n) => n.inputs.includes('frozen')), 'no node reads the frozen weight');
});

test('autodiff: a fused contrib op is refused with a hint', () => {
  const g = new Graph('fused');
  const x = g.input('x', 'float32', [1, 2, 4]);
  const w = g.init('w', new Float32Array(48), [4, 12]);
  const y = g.op('Attention', [x, w, g.init('b', new Float32Array(12), [12])], { num_heads: attr.i(2) }, 'com.microsoft');
  const loss = g.op('ReduceSum', [y], { keepdims: attr.i(0) });
  assert.throws(() => appendGradients(g, loss, ['w']), /without fused kernels/);
});
