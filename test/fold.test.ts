// Layouts as graph nodes: towers add checkpoint tensors as stored and express packing, transposing, the
// class row and Conv+BatchNorm as nodes; graph/fold.ts evaluates those into initializers for inference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldConstants } from '../src/graph/fold.js';
import { attr, Graph } from '../src/graph/graph.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { createSession, ort } from '../src/runtime/session.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

const LAYOUT_OPS = new Set(['Transpose', 'Concat', 'Pad', 'Unsqueeze', 'Gather', 'BatchNormalization']);
/** Nodes that read only initializers: what the fold should have left none of. */
const constantNodes = (g: Graph) => g.nodes.filter((n) => n.inputs.length > 0 && n.inputs.every((i) => !i || g.initializers.has(i)));

test('fold: Transpose of stacked tensors, the class row, a table row; sources nothing reads are dropped', async () => {
  const g = new Graph('t');
  const x = g.input('x', 'float32', [1, 3]);
  const a = g.init('a', Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
  const b = g.init('b', Float32Array.of(7, 8, 9), [1, 3]);
  [a, b].forEach((n) => g.weights.add(n));
  const w = g.node('Transpose', [g.op('Concat', [a, b], { axis: attr.i(0) })], { perm: attr.ints([1, 0]) }, { outputs: ['w'] })[0]!; // [3, 3]
  const pos = g.init('pos', Float32Array.of(1, 1, 1, 2, 2, 2), [2, 3]);
  const cls = g.init('cls', Float32Array.of(10, 20, 30), [3]);
  const table = g.node('Add', [pos, g.op('Pad', [g.op('Unsqueeze', [cls, g.constI64([0])]), g.constI64([0, 0, 1, 0])])], {}, { outputs: ['table'] })[0]!;
  const row = g.node('Gather', [table, g.constI64([1], [])], { axis: attr.i(0) }, { outputs: ['row'] })[0]!; // [3]
  g.output(g.op('Add', [g.op('MatMul', [x, w]), row]), 'y');
  const before = await run(g);

  const report = foldConstants(g);
  assert.equal(report.folded, 6);
  assert.deepEqual(g.nodes.map((n) => n.op), ['MatMul', 'Add', 'Identity']);
  assert.deepEqual([...g.initializers.keys()].sort(), ['row', 'w']);
  assert.deepEqual(Array.from(g.initializers.get('w')!.data as Float32Array), [1, 4, 7, 2, 5, 8, 3, 6, 9]);
  assert.deepEqual(Array.from(g.initializers.get('row')!.data as Float32Array), [2, 2, 2]);
  assert.equal(g.weights.size, 0, 'folded-away stored tensors leave the weight set');
  assert.deepEqual(await run(g), before);
});

async function run(g: Graph): Promise<number[]> {
  const s = await createSession(g);
  const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, -2, 0.5), [1, 3]) });
  await s.release();
  return Array.from(out.y!.data as Float32Array);
}

test('hf-clip-tiny: the unfolded towers hold the checkpoint\'s tensors as stored; folding leaves no layout node and the same outputs', { skip: SKIP_FIXTURES }, async () => {
  const dir = fixture('hf-clip-tiny');
  const ck = openCheckpoint(dir, { format: 'weights' });
  const src = new SafetensorsFile(`${dir}/model.safetensors`);
  const golden = new SafetensorsFile(`${dir}/golden.safetensors`);
  for (const tower of ['image', 'text'] as const) {
    const spec = ck[tower];
    assert.equal(spec.kind, 'built');
    if (spec.kind !== 'built') return;
    const raw = spec.build({ fold: false });
    // Every initializer named like a checkpoint tensor is that tensor, in its stored shape and bytes.
    const mine = tower === 'image' ? (k: string) => k.startsWith('vision_model.') || k === 'visual_projection.weight' : (k: string) => k.startsWith('text_model.') || k === 'text_projection.weight';
    assert.deepEqual([...raw.weights].sort(), src.keys().filter(mine).sort());
    for (const k of raw.weights) {
      assert.deepEqual(raw.initializers.get(k)!.dims, src.info(k)!.shape, k);
      assert.deepEqual(raw.initializers.get(k)!.data, toFloat32(src.get(k)), k);
    }
    assert.ok(constantNodes(raw).some((n) => n.op === 'Transpose') && constantNodes(raw).some((n) => n.op === 'Concat'));

    const folded = spec.build({});
    assert.deepEqual(constantNodes(folded).filter((n) => LAYOUT_OPS.has(n.op)).map((n) => `${n.op} ${n.name}`), []);
    assert.ok(!folded.initializers.has(`${tower === 'image' ? 'vision' : 'text'}_model.encoder.layers.0.self_attn.q_proj.weight`), 'q/k/v packed');
    // The node count of the towers written with pre-transposed, pre-packed initializers (before this pass).
    assert.equal(folded.nodes.length, tower === 'image' ? 70 : 79);

    const feeds: Record<string, ort.Tensor> = tower === 'image'
      ? { pixel_values: new ort.Tensor('float32', toFloat32(golden.get('pixel_values')), golden.info('pixel_values')!.shape) }
      : textFeeds(golden);
    const [a, b] = [await runTower(raw, feeds, `${tower}_features`), await runTower(folded, feeds, `${tower}_features`)];
    const worst = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    assert.ok(worst <= 1e-6, `${tower}: folded vs unfolded differ by ${worst}`);
  }
});

function textFeeds(golden: SafetensorsFile): Record<string, ort.Tensor> {
  const [n, T] = golden.info('input_ids')!.shape as [number, number];
  const ids = new BigInt64Array(golden.get('input_ids').bytes.slice().buffer);
  // Pool at EOT: the position of the largest id (hf-clip-tiny's legacy eos id 2 config pools at argmax).
  const pool = BigInt64Array.from({ length: n }, (_, i) => {
    const row = ids.subarray(i * T, (i + 1) * T);
    return BigInt(i * T + row.reduce((best, x, k) => (x > row[best]! ? k : best), 0));
  });
  return { input_ids: new ort.Tensor('int64', ids, [n, T]), pool_index: new ort.Tensor('int64', pool, [n]) };
}

async function runTower(g: Graph, feeds: Record<string, ort.Tensor>, output: string): Promise<Float32Array> {
  const s = await createSession(g);
  try {
    return (await s.run(feeds))[output]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

test('openai-rn-tiny: Conv+BatchNorm fold, the OpenAI projections used as stored (no double transpose)', { skip: SKIP_FIXTURES }, async () => {
  const dir = fixture('openai-rn-tiny');
  const ck = openCheckpoint(dir, { format: 'weights' });
  const golden = new SafetensorsFile(`${dir}/golden.safetensors`);
  if (ck.image.kind !== 'built' || ck.text.kind !== 'built') throw new Error('expected built towers');
  const folded = ck.image.build({});
  const withBn = ck.image.build({ fold: { batchNorm: false } });
  assert.equal(folded.nodes.filter((n) => n.op === 'BatchNormalization').length, 0);
  const bns = withBn.nodes.filter((n) => n.op === 'BatchNormalization').length;
  assert.ok(bns >= 10, `${bns} BatchNorm nodes kept`);
  assert.ok(folded.initializers.has('visual.conv1.weight+bn') && !folded.initializers.has('visual.bn1.running_var'));
  const feeds = { pixel_values: new ort.Tensor('float32', toFloat32(golden.get('pixel_values')), golden.info('pixel_values')!.shape) };
  const [a, b] = [await runTower(folded, feeds, 'image_features'), await runTower(withBn, feeds, 'image_features')];
  const scale = a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const worst = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  assert.ok(worst <= 1e-5 * scale, `Conv+BN fold differs by ${worst} (scale ${scale})`);

  // OpenAI stores text_projection as [in, out], which is what MatMul reads: no node, the stored tensor itself.
  const text = ck.text.build({ fold: false });
  const reads = text.nodes.filter((n) => n.inputs.includes('text_projection'));
  assert.deepEqual(reads.map((n) => n.op), ['MatMul']);
});
