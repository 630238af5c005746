// Training memory options: activation recomputation (clip train --recompute) gives the same gradients as
// keeping the activations, with far fewer forward values held for the backward pass; the AdamW update in
// its own session over chunks (the default, no model-sized outputs) gives the same parameters as the
// update in the training graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import { clipConfigFromHF } from '../src/models/config.js';
import { hfClipWeights } from '../src/models/families/hf-clip.js';
import { LOSS } from '../src/train/clip-loss.js';
import { ClipTrainer, eotPositions, type TrainBatch } from '../src/train/trainer.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { readJson } from './helpers.js';

const DIR = fixture('hf-clip-tiny');

function batchOf(cfgJson: Record<string, any>): TrainBatch {
  const cfg = clipConfigFromHF(cfgJson);
  const ref = new SafetensorsFile(join(DIR, 'train-step.safetensors'));
  const [n, T] = ref.info('input_ids')!.shape as [number, number];
  const ids = new BigInt64Array(ref.get('input_ids').bytes.slice().buffer);
  const text = cfg.text.kind === 'clip-text' ? cfg.text : undefined;
  return {
    pixelValues: toFloat32(ref.get('pixel_values')), inputIds: ids, n, seqLen: T,
    eot: eotPositions(ids, n, T, text?.eosTokenId ?? 0, text?.poolAtArgmax ?? false),
  };
}

async function trainer(recompute: boolean, update: 'chunked' | 'graph' = 'chunked'): Promise<ClipTrainer> {
  const cfgJson = readJson(join(DIR, 'config.json'));
  return ClipTrainer.create(clipConfigFromHF(cfgJson), hfClipWeights(new SafetensorsFile(join(DIR, 'model.safetensors'))), {
    adamw: { betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2, maxGradNorm: 1 }, outputGrads: true, memory: { recompute, update },
  });
}

/** Forward activations (outputs of nodes before the loss) that some node after the loss reads. */
function savedForBackward(t: ClipTrainer): number {
  const nodes = t.graph.nodes;
  const end = nodes.findIndex((n) => n.outputs.includes(LOSS)) + 1;
  const forward = new Set(nodes.slice(0, end).flatMap((n) => n.outputs));
  const saved = new Set(nodes.slice(end).flatMap((n) => n.inputs).filter((i) => forward.has(i)));
  return saved.size;
}

test('recompute: loss and gradients identical to keeping the activations (hf-clip-tiny)', { skip: SKIP_FIXTURES }, async () => {
  const batch = batchOf(readJson(join(DIR, 'config.json')));
  const plain = await trainer(false);
  const rc = await trainer(true);
  const a = await plain.step(batch, 1e-3);
  const b = await rc.step(batch, 1e-3);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6, `loss ${a.loss} vs ${b.loss}`);
  // A sum over every gradient: equal up to float32 summation order.
  assert.ok(Math.abs(a.gradNorm - b.gradNorm) <= 1e-6 * a.gradNorm, `grad norm ${a.gradNorm} vs ${b.gradNorm}`);
  assert.equal(b.grads!.size, a.grads!.size);
  // Equal up to float32 rounding: ORT fuses the replayed ops as it fuses the forward ones, but a fusion
  // can differ where the forward values have other readers. Differences are measured against each
  // tensor's largest gradient.
  let worst = 0;
  let where = '';
  for (const [name, ga] of a.grads!) {
    const gb = b.grads!.get(name)!;
    assert.equal(gb.length, ga.length, name);
    let scale = 1e-30;
    let diff = 0;
    for (let i = 0; i < ga.length; i++) {
      scale = Math.max(scale, Math.abs(ga[i]!));
      diff = Math.max(diff, Math.abs(ga[i]! - gb[i]!));
    }
    if (diff / Math.max(scale, 1) > worst) [worst, where] = [diff / Math.max(scale, 1), `${name} (max |grad| ${scale})`];
  }
  assert.ok(worst <= 1e-6, `max |grad difference| ${worst} in ${where}`);
  await plain.release();
  await rc.release();
});

test('recompute: the backward reads few forward activations and replays the blocks', { skip: SKIP_FIXTURES }, async () => {
  const plain = await trainer(false);
  const rc = await trainer(true);
  const kept = savedForBackward(plain);
  const keptRc = savedForBackward(rc);
  // Without recompute the backward reads dozens of values per block; with it, the residual stream (and
  // what the short embedding and loss segments, not replayed, read).
  assert.ok(keptRc * 2 < kept, `forward values read by the backward: ${keptRc} with recompute vs ${kept} without`);
  assert.ok(rc.graph.nodes.some((n) => n.name.includes('/rc')), 'no recomputing nodes');
  assert.ok(!plain.graph.nodes.some((n) => n.name.includes('/rc')));
  await plain.release();
  await rc.release();
});

test('AdamW chunked in its own session and in the training graph: same parameters and moments after three clipped steps (hf-clip-tiny)', { skip: SKIP_FIXTURES }, async () => {
  const batch = batchOf(readJson(join(DIR, 'config.json')));
  const chunked = await trainer(false, 'chunked');
  const graph = await trainer(false, 'graph');
  let first: Map<string, Float32Array> | undefined;
  for (let k = 0; k < 3; k++) {
    const a = await chunked.step(batch, 1e-3);
    const b = await graph.step(batch, 1e-3);
    first ??= a.grads;
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-5, `step ${k}: loss ${a.loss} vs ${b.loss}`);
  }
  // Elements whose gradient is rounding noise (e.g. the key bias, which softmax ignores) are skipped:
  // Adam scales noise up to steps of lr, in whichever direction the last bits point.
  let moved = 0;
  let compared = 0;
  for (const [name, p] of graph.params) {
    const q = chunked.params.get(name)!.data;
    const g = first!.get(name);
    for (let i = 0; i < p.data.length; i++) {
      if (!g || Math.abs(g[i]!) < 1e-5) continue;
      compared++;
      assert.ok(Math.abs(p.data[i]! - q[i]!) <= 1e-6, `${name}[${i}]: ${q[i]} (chunked) vs ${p.data[i]} (graph)`);
      assert.ok(Math.abs(graph.state.m.get(name)![i]! - chunked.state.m.get(name)![i]!) <= 1e-6, `${name} first moment [${i}]`);
    }
    moved += p.trainable ? 1 : 0;
  }
  assert.ok(compared > 10000, `${compared} elements compared`);
  assert.ok(moved > 0);
  assert.equal(chunked.state.step, 3);
  await chunked.release();
  await graph.release();
});
