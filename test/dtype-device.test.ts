// --dtype int8 / fp16 accuracy against fp32, and the WebGPU request falling back to CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Graph } from '../src/graph/graph.js';
import { quantizeColumns, quantizeGraph } from '../src/graph/quantize.js';
import { createSession, ort } from '../src/runtime/session.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { dot } from '../src/tasks/similarity.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertClose, flat } from './helpers.js';

test('per-channel quantization keeps every column within half a step', () => {
  const k = 5, n = 3;
  const w = Float32Array.from({ length: k * n }, (_, i) => Math.sin(i * 1.3) * (1 + (i % n)));
  const { q, scale } = quantizeColumns(w, k, n, 63);
  for (let i = 0; i < w.length; i++) {
    const c = i % n;
    assert.ok(Math.abs(q[i]! * scale[c]! - w[i]!) <= scale[c]! / 2 + 1e-7, `element ${i}`);
    assert.ok(Math.abs(q[i]!) <= 63);
  }
});

test('a quantized MatMul graph stays close to fp32', async () => {
  const k = 64, n = 96;
  const w = Float32Array.from({ length: k * n }, (_, i) => Math.sin(i * 0.37));
  const build = () => {
    const g = new Graph('mm');
    const x = g.input('x', 'float32', [2, k]);
    g.output(g.op('MatMul', [x, g.init('w', w, [k, n])]), 'y');
    return g;
  };
  const q = build();
  assert.equal(quantizeGraph(q).quantized, 1);
  assert.ok(q.nodes.some((n) => n.op === 'MatMulIntegerToFloat'), 'the MatMul runs on int8 weights');
  assert.ok(!q.nodes.some((n) => n.op === 'MatMul'), 'no float MatMul is left');
  assert.ok(!q.initializers.has('w'), 'the float weight is dropped');
  const x = new ort.Tensor('float32', Float32Array.from({ length: 2 * k }, (_, i) => Math.cos(i)), [2, k]);
  const ref = (await (await createSession(build())).run({ x })).y!.data as Float32Array;
  const got = (await (await createSession(q)).run({ x })).y!.data as Float32Array;
  // Quantization error scales with the sum of |terms|, not with the (cancelling) output: compare directions.
  const cos = dot(got, ref) / Math.sqrt(dot(got, got) * dot(ref, ref));
  assert.ok(cos > 0.99, `cosine ${cos}`);
  const err = Math.max(...ref.map((v, i) => Math.abs(v - got[i]!)));
  assert.ok(err > 0, 'int8 output should differ from fp32 at all (else nothing was quantized)');
});

for (const [dtype, name] of [['int8', 'hf-clip-tiny'], ['int8', 'openai-vit-tiny'], ['fp16', 'hf-clip-tiny']] as const) {
  test(`--dtype ${dtype} on ${name}: cosine to fp32 >= 0.99 on every fixture photo`, { skip: SKIP_FIXTURES }, async () => {
    const files = readdirSync(fixture('common', 'images')).map((f) => fixture('common', 'images', f));
    const tokenizerDir = fixture('common', 'tokenizer-clip');
    const ref = await ClipModel.load(fixture(name), { tokenizerDir });
    const m = await ClipModel.load(fixture(name), { dtype, tokenizerDir });
    const a = await ref.encodeImages(files);
    const b = await m.encodeImages(files);
    a.forEach((r, i) => {
      const c = dot(r.embedding!, b[i]!.embedding!);
      assert.ok(c >= (dtype === 'fp16' ? 0.9999 : 0.99), `${files[i]}: cosine ${c}`);
    });
    const t = ['a photo of a cat', 'a diagram of a model'];
    const ta = await ref.encodeTexts(t);
    const tb = await m.encodeTexts(t);
    ta.forEach((e, i) => assert.ok(dot(e, tb[i]!) >= 0.99));
    await ref.release();
    await m.release();
  });
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

test('a quantized MatMul gives each row the same result alone or in a batch', async () => {
  const k = 64, n = 96;
  const w = Float32Array.from({ length: k * n }, (_, i) => Math.sin(i * 0.37));
  const g = new Graph('mm');
  const x = g.input('x', 'float32', ['n', k]);
  g.output(g.op('MatMul', [x, g.init('w', w, [k, n])]), 'y');
  quantizeGraph(g);
  const s = await createSession(g);
  // Row 0 is small; the other rows are 1000x larger, which under one per-tensor scale crushes row 0.
  const rowsIn = Float32Array.from({ length: 4 * k }, (_, i) => Math.cos(i) * (i < k ? 1e-3 : 1));
  const run = async (data: Float32Array, m: number) => (await s.run({ x: new ort.Tensor('float32', data, [m, k]) })).y!.data as Float32Array;
  const alone = await run(rowsIn.slice(0, k), 1);
  const batch = await run(rowsIn, 4);
  assert.ok(maxDiff(alone, batch.subarray(0, n)) <= 1e-6 * Math.max(...alone.map(Math.abs)), 'row 0 alone vs in the batch');
});

for (const name of ['hf-clip-tiny', 'openai-vit-tiny']) {
  test(`--dtype int8 on ${name}: a row's embedding does not depend on the batch around it`, { skip: SKIP_FIXTURES }, async () => {
    const all = readdirSync(fixture('common', 'images')).sort().map((f) => fixture('common', 'images', f));
    const m = await ClipModel.load(fixture(name), { dtype: 'int8', tokenizerDir: fixture('common', 'tokenizer-clip') });
    const one = all[0]!;
    const [alone] = await m.encodeImages([one]);
    for (const size of [4, 7]) {
      // The photo in the middle of a batch of others.
      const batch = [...all.slice(1, size)];
      batch.splice(size >> 1, 0, one);
      const res = await m.encodeImages(batch, { batchSize: size });
      const d = maxDiff(alone!.embedding!, res[size >> 1]!.embedding!);
      assert.ok(d <= 1e-6, `${one} alone vs in a batch of ${size}: max difference ${d}`);
    }
    const texts = ['a photo of a cat', 'a diagram', 'an astronaut riding a horse on the moon', 'coffee', 'a red rocket on a launch pad at night', 'two flowers', 'a tall thin picture'];
    const [tAlone] = await m.encodeTexts([texts[0]!]);
    for (const size of [4, 7]) {
      const got = await m.encodeTexts(texts.slice(0, size), { batchSize: size });
      const d = maxDiff(tAlone!, got[0]!);
      assert.ok(d <= 1e-6, `"${texts[0]}" alone vs in a batch of ${size}: max difference ${d}`);
    }
    await m.release();
  });
}

test('--device webgpu without an adapter falls back to CPU with a message', { skip: SKIP_FIXTURES }, async () => {
  const writes: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as any).write = (s: string) => (writes.push(String(s)), true);
  try {
    const gpu = await ClipModel.load(fixture('hf-clip-tiny'), { device: 'webgpu' });
    const cpu = await ClipModel.load(fixture('hf-clip-tiny'));
    const t = ['a photo of a cat'];
    assertClose(flat(await gpu.encodeTexts(t)), flat(await cpu.encodeTexts(t)), 1e-5, 'embeddings');
    await gpu.release();
    await cpu.release();
  } finally {
    (process.stderr as any).write = orig;
  }
  // On a machine with a GPU adapter no fallback happens; here (CI) there is none.
  if (writes.length) assert.match(writes.join(''), /running on CPU/);
});
