// The chunked AdamW session: slices give the same bits as one run over the whole tensor, and the step
// equals the standalone AdamW graph (buildAdamWGraph, the training graph's update) bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toOnnxModel } from '../src/graph/onnx.js';
import { ort } from '../src/runtime/session.js';
import { AdamWChunkSession } from '../src/train/adamw-session.js';
import { adamwScalars, buildAdamWGraph, stateNames, type AdamWConfig } from '../src/train/adamw.js';

const CFG: AdamWConfig = { betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2 };

function randomArrays(n: number, seed: number): { p: Float32Array; m: Float32Array; v: Float32Array; grad: Float32Array } {
  let s = seed;
  const r = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const a = () => Float32Array.from({ length: n }, r);
  return { p: a(), m: a().map((x) => x * 0.01), v: a().map((x) => x * x * 1e-4), grad: a().map((x) => x * 0.1) };
}

test('AdamW chunk session: 7-element slices equal one slice, and the in-graph update, bit for bit', async () => {
  const n = 1000;
  const shapes = [
    { name: 'w', decay: true },
    { name: 'b', decay: false },
    { name: 'logit_scale', decay: false, clamp: [0, 0.05] as [number, number] },
  ];
  const upd = await AdamWChunkSession.create(CFG);
  const run = async (chunk: number) => {
    const xs = shapes.map((sh, k) => ({ ...randomArrays(n, k + 1), decay: sh.decay, clamp: sh.clamp }));
    for (let t = 1; t <= 2; t++) await upd.update(xs, 1e-3, t, 0.5, chunk);
    return xs;
  };
  const whole = await run(n);
  const sliced = await run(7);
  for (let k = 0; k < shapes.length; k++) {
    for (const key of ['p', 'm', 'v'] as const) assert.deepEqual(sliced[k]![key], whole[k]![key], `${shapes[k]!.name}.${key}`);
  }
  assert.ok(whole[2]!.p.every((x) => x >= 0 && x <= Math.fround(0.05)), 'clamp applied');
  assert.ok(whole[2]!.p.some((x) => x === 0) && whole[2]!.p.some((x) => x === Math.fround(0.05)), 'clamp bounds reached');

  // The same two steps through the standalone graph (clipping coefficient 0.5 folded into the gradient,
  // as the graph multiplies it in first).
  const g = buildAdamWGraph(shapes.map((sh) => ({ name: sh.name, decay: sh.decay, clamp: sh.clamp, dims: [n] })), CFG);
  const sess = await ort.InferenceSession.create(toOnnxModel(g), { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const xs = shapes.map((_, k) => randomArrays(n, k + 1));
  for (let t = 1; t <= 2; t++) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [key, val] of Object.entries(adamwScalars(CFG, 1e-3, t))) feeds[key] = new ort.Tensor('float32', Float32Array.of(val), []);
    shapes.forEach((sh, k) => {
      const s = stateNames(sh.name);
      const x = xs[k]!;
      feeds[sh.name] = new ort.Tensor('float32', x.p, [n]);
      feeds[`grad/${sh.name}`] = new ort.Tensor('float32', x.grad.map((y) => y * 0.5), [n]);
      feeds[s.m] = new ort.Tensor('float32', x.m, [n]);
      feeds[s.v] = new ort.Tensor('float32', x.v, [n]);
    });
    const out = await sess.run(feeds);
    shapes.forEach((sh, k) => {
      const s = stateNames(sh.name);
      xs[k] = { ...xs[k]!, p: out[s.newParam]!.data as Float32Array, m: out[s.newM]!.data as Float32Array, v: out[s.newV]!.data as Float32Array };
    });
  }
  for (let k = 0; k < shapes.length; k++) {
    for (const key of ['p', 'm', 'v'] as const) assert.deepEqual(xs[k]![key], whole[k]![key], `graph vs session: ${shapes[k]!.name}.${key}`);
  }
  await sess.release();
  await upd.release();
});

test('AdamW chunk session: mismatched sizes are an error', async () => {
  const upd = await AdamWChunkSession.create(CFG);
  const x = randomArrays(10, 1);
  await assert.rejects(upd.update([{ ...x, v: new Float32Array(9), decay: false }], 1e-3, 1, 1), /sizes differ/);
  await upd.release();
});
