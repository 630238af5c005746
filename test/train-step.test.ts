// One contrastive AdamW step on hf-clip-tiny against PyTorch/transformers (train-step.safetensors):
// loss, every gradient, every parameter after the step, and the loss after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import { clipConfigFromHF } from '../src/models/config.js';
import { hfClipWeights } from '../src/models/families/hf-clip.js';
import { ClipTrainer, eotPositions, type TrainBatch } from '../src/train/trainer.js';
import { saveHfCheckpoint } from '../src/train/save.js';
import { cosineLr } from '../src/train/schedule.js';
import { usesWeightDecay } from '../src/train/params.js';
import { adamwScalars, buildAdamWGraph, stateNames } from '../src/train/adamw.js';
import { createSession, ort } from '../src/runtime/session.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { assertGradClose, assertParamsAfterStep, readJson, type AfterStepStats } from './helpers.js';

const DIR = fixture('hf-clip-tiny');

async function setup(opts: { outputGrads?: boolean; freeze?: 'vision' | 'text' } = {}) {
  const spec = readJson(join(DIR, 'train-step.json'));
  const cfgJson = readJson(join(DIR, 'config.json'));
  const cfg = clipConfigFromHF(cfgJson);
  const src = new SafetensorsFile(join(DIR, 'model.safetensors'));
  // The reference step carries its own batch (pixels, token ids and mask of the first len(photos) captions).
  const ref = new SafetensorsFile(join(DIR, 'train-step.safetensors'));
  const [n, T] = ref.info('input_ids')!.shape as [number, number];
  assert.deepEqual(ref.info('pixel_values')!.shape.slice(0, 1), [n]);
  const ids = new BigInt64Array(ref.get('input_ids').bytes.slice().buffer);
  const batch: TrainBatch = {
    pixelValues: toFloat32(ref.get('pixel_values')), inputIds: ids, n, seqLen: T,
    eot: eotPositions(ids, n, T, cfg.text.kind === 'clip-text' ? cfg.text.eosTokenId : 0, cfg.text.kind === 'clip-text' && cfg.text.poolAtArgmax),
  };
  const o = spec.optimizer;
  const trainer = await ClipTrainer.create(cfg, hfClipWeights(src), {
    adamw: { betas: o.betas, eps: o.eps, weightDecay: o.weight_decay }, outputGrads: opts.outputGrads, freeze: opts.freeze,
  });
  return { spec, cfgJson, src, batch, trainer, lr: o.lr as number };
}

test('one AdamW step on hf-clip-tiny matches PyTorch', { skip: SKIP_FIXTURES }, async (t) => {
  const { spec, batch, trainer, lr } = await setup({ outputGrads: true });
  const ref = new SafetensorsFile(join(DIR, 'train-step.safetensors'));
  const get = (k: string) => toFloat32(ref.get(k));

  const res = await trainer.step(batch, lr);
  const lossRef = get('loss')[0]!;
  assert.ok(Math.abs(res.loss - lossRef) <= 1e-5, `loss ${res.loss} vs ${lossRef}`);
  assert.ok(Math.abs(lossRef - spec.loss_value) <= 1e-6);

  // Gradients arrive for the checkpoint's own tensors (q/k/v apart, Linear weights [out, in]).
  const ours = new Map<string, Float32Array>();
  for (const [name, g] of res.grads!) {
    ours.set(name, g);
    assert.deepEqual(trainer.params.get(name)!.dims, ref.info(`grad/${name}`)?.shape, `grad/${name} shape`);
  }
  const expected = ref.keys().filter((k) => k.startsWith('grad/')).map((k) => k.slice(5));
  assert.deepEqual([...ours.keys()].sort(), expected.sort(), 'a gradient for every parameter');
  let worstGrad = 0;
  for (const name of expected) {
    worstGrad = Math.max(worstGrad, assertGradClose(ours.get(name)!, get(`grad/${name}`), `grad/${name}`));
  }

  // Parameters after the step. Adam's first step moves each weight by lr * g / (|g| + eps), which turns
  // float noise in a near-zero gradient (|g| ~ 1e-8 .. 1e-6, e.g. the k_proj biases, whose exact gradient
  // is 0 because softmax ignores a per-query shift) into up to ~lr of parameter change. So: 1e-5, plus
  // only as much as our measured gradient difference explains through that map (mean value bound:
  // its slope is eps / (|g| + eps)^2). The update rule alone is checked on the reference gradients below.
  const eps = spec.optimizer.eps as number;
  let compared = 0;
  const stats: AfterStepStats = { explained: 0, worstWellConditioned: 0 };
  for (const h of trainer.checkpointTensors()) {
    if (!ref.has(`after/${h.name}`)) continue;
    compared++;
    assertParamsAfterStep(h.data, get(`after/${h.name}`), ours.get(h.name)!, get(`grad/${h.name}`), lr, eps, `after/${h.name}`, stats);
  }
  const { explained, worstWellConditioned } = stats;
  assert.equal(compared, ref.keys().filter((k) => k.startsWith('after/')).length);

  const after = await trainer.evaluate(batch);
  const afterRef = get('loss_after_step')[0]!;
  assert.ok(Math.abs(after - afterRef) <= 1e-5, `loss after step ${after} vs ${afterRef}`);
  t.diagnostic(`loss ${res.loss} (ref ${lossRef}); after ${after} (ref ${afterRef}); worst |grad diff| ${worstGrad.toExponential(2)}; `
    + `worst param diff where |grad| >= 1e-5: ${worstWellConditioned.toExponential(2)}; ${explained} weights off by > 1e-5 within gradient noise`);
  await trainer.release();
});

test('the AdamW graph on the reference gradients gives the reference parameters', { skip: SKIP_FIXTURES }, async () => {
  const spec = readJson(join(DIR, 'train-step.json'));
  const o = spec.optimizer;
  const src = new SafetensorsFile(join(DIR, 'model.safetensors'));
  const ref = new SafetensorsFile(join(DIR, 'train-step.safetensors'));
  // Checkpoint layout throughout: elementwise, so the layout does not matter to the update.
  const names = ref.keys().filter((k) => k.startsWith('after/')).map((k) => k.slice(6));
  const cfg = { betas: o.betas as [number, number], eps: o.eps, weightDecay: o.weight_decay };
  const params = names.map((name) => ({
    name, dims: src.info(name)!.shape, decay: usesWeightDecay(name, src.info(name)!.shape.length),
    clamp: name === 'logit_scale' ? [0, Math.log(100)] as [number, number] : undefined,
  }));
  const session = await createSession(buildAdamWGraph(params, cfg));
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(adamwScalars(cfg, o.lr, 1))) feeds[k] = new ort.Tensor('float32', Float32Array.of(v), []);
  for (const p of params) {
    const zeros = new Float32Array(p.dims.reduce((a, b) => a * b, 1));
    feeds[p.name] = new ort.Tensor('float32', toFloat32(src.get(p.name)), p.dims);
    feeds[`grad/${p.name}`] = new ort.Tensor('float32', toFloat32(ref.get(`grad/${p.name}`)), p.dims);
    feeds[stateNames(p.name).m] = new ort.Tensor('float32', zeros, p.dims);
    feeds[stateNames(p.name).v] = new ort.Tensor('float32', zeros, p.dims);
  }
  const out = await session.run(feeds);
  for (const p of params) {
    const [a, r] = [out[stateNames(p.name).newParam]!.data as Float32Array, toFloat32(ref.get(`after/${p.name}`))];
    for (let i = 0; i < r.length; i++) assert.ok(Math.abs(a[i]! - r[i]!) <= 1e-5, `after/${p.name}[${i}] ${a[i]} vs ${r[i]}`);
  }
  await session.release();
});

test('AdamW graph: several steps with clipping and decay match a float64 reference of torch\'s update', async () => {
  const cfg = { betas: [0.9, 0.98] as [number, number], eps: 1e-6, weightDecay: 0.1, maxGradNorm: 0.5 };
  const params = [
    { name: 'w', dims: [3, 4], decay: true },
    { name: 'b', dims: [4], decay: false, clamp: [-0.05, 0.05] as [number, number] },
  ];
  const session = await createSession(buildAdamWGraph(params, cfg));
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  type F32 = Float32Array<ArrayBufferLike>;
  const st = params.map((p): { p: F32; m: F32; v: F32; ref: { p: number[]; m: number[]; v: number[] } } => {
    const n = p.dims.reduce((a, b) => a * b, 1);
    return { p: Float32Array.from({ length: n }, rand), m: new Float32Array(n), v: new Float32Array(n), ref: { p: [] as number[], m: new Array(n).fill(0), v: new Array(n).fill(0) } };
  });
  st.forEach((s) => (s.ref.p = Array.from(s.p)));
  for (let t = 1; t <= 3; t++) {
    const lr = 0.01 * t;
    const grads = st.map((s) => Float32Array.from(s.p, () => rand()));
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(adamwScalars(cfg, lr, t))) feeds[k] = new ort.Tensor('float32', Float32Array.of(v), []);
    params.forEach((p, i) => {
      feeds[p.name] = new ort.Tensor('float32', st[i]!.p, p.dims);
      feeds[`grad/${p.name}`] = new ort.Tensor('float32', grads[i]!, p.dims);
      feeds[stateNames(p.name).m] = new ort.Tensor('float32', st[i]!.m, p.dims);
      feeds[stateNames(p.name).v] = new ort.Tensor('float32', st[i]!.v, p.dims);
    });
    const out = await session.run(feeds);
    // torch.nn.utils.clip_grad_norm_ then torch.optim.AdamW (single-tensor path), in float64.
    const norm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0));
    assert.ok(Math.abs((out.grad_norm!.data as Float32Array)[0]! - norm) < 1e-5);
    const coef = Math.min(1, cfg.maxGradNorm / (norm + 1e-6));
    params.forEach((p, i) => {
      const r = st[i]!.ref;
      r.p = r.p.map((x, k) => {
        const g = grads[i]![k]! * coef;
        r.m[k] = 0.9 * r.m[k] + 0.1 * g;
        r.v[k] = 0.98 * r.v[k] + 0.02 * g * g;
        const denom = Math.sqrt(r.v[k]) / Math.sqrt(1 - 0.98 ** t) + cfg.eps;
        const y = (p.decay ? x * (1 - lr * cfg.weightDecay) : x) - (lr / (1 - 0.9 ** t)) * (r.m[k] / denom);
        return p.clamp ? Math.min(Math.max(y, p.clamp[0]), p.clamp[1]) : y;
      });
      const n = stateNames(p.name);
      st[i]!.p = out[n.newParam]!.data as Float32Array;
      st[i]!.m = out[n.newM]!.data as Float32Array;
      st[i]!.v = out[n.newV]!.data as Float32Array;
      r.p.forEach((x, k) => assert.ok(Math.abs(st[i]!.p[k]! - x) < 1e-6, `step ${t} ${p.name}[${k}] ${st[i]!.p[k]} vs ${x}`));
    });
  }
  await session.release();
});

test('a frozen image tower gets no backward and does not move', { skip: SKIP_FIXTURES }, async () => {
  const { batch, trainer, lr } = await setup({ freeze: 'vision' });
  const [vq, tq] = ['vision_model.encoder.layers.0.self_attn.q_proj.weight', 'text_model.encoder.layers.0.self_attn.q_proj.weight'];
  const before = Float32Array.from(trainer.params.get(vq)!.data);
  const text0 = Float32Array.from(trainer.params.get(tq)!.data);
  // Only the forward Conv reads the pixels: no patch-embedding weight gradient is computed.
  assert.equal(trainer.graph.nodes.filter((n) => n.inputs.includes('pixel_values')).length, 1);
  // The frozen tower, projection included, is not fed (no gradient, no optimizer state); logit_scale trains.
  const fed = trainer.graph.inputs.map((i) => i.name);
  assert.ok(!fed.some((n) => n.startsWith('vision_model.') || n.includes('visual_projection')), fed.join(' '));
  assert.ok(fed.includes('logit_scale') && fed.includes('text_projection.weight') && fed.includes(tq));
  assert.ok(![...trainer.state.m.keys()].some((n) => n.startsWith('vision_model.') || n === 'visual_projection.weight'));
  await trainer.step(batch, lr);
  assert.deepEqual(trainer.params.get(vq)!.data, before);
  assert.notDeepEqual(trainer.params.get(tq)!.data, text0);
  await trainer.release();
});

test('no-decay rule follows train-step.json', () => {
  assert.equal(usesWeightDecay('vision_model.encoder.layers.0.mlp.fc1.weight', 2), true);
  assert.equal(usesWeightDecay('text_model.embeddings.token_embedding.weight', 2), true);
  assert.equal(usesWeightDecay('vision_model.embeddings.class_embedding', 1), false);
  assert.equal(usesWeightDecay('vision_model.pre_layrnorm.weight', 1), false);
  assert.equal(usesWeightDecay('logit_scale', 0), false);
  assert.equal(usesWeightDecay('text_model.encoder.layers.0.mlp.fc1.bias', 1), false);
});

test('warmup + cosine schedule', () => {
  const s = { baseLr: 1e-3, warmup: 10, total: 110 };
  assert.equal(cosineLr(s, 0), 1e-4);
  assert.equal(cosineLr(s, 9), 1e-3);
  assert.ok(Math.abs(cosineLr(s, 60) - 5e-4) < 1e-12);
  assert.ok(cosineLr(s, 110) < 1e-12);
});

test('checkpoint and optimizer state round-trip; training lowers the loss', { skip: SKIP_FIXTURES }, async (t) => {
  const { cfgJson, src, batch, trainer, lr } = await setup();
  const dir = mkdtempSync(join(tmpdir(), 'clip-train-'));
  try {
    const times: number[] = [];
    let first = NaN;
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const r = await trainer.step(batch, lr);
      times.push(performance.now() - t0);
      if (i === 0) first = r.loss;
    }
    const last = await trainer.evaluate(batch);
    assert.ok(last < first, `loss ${first} -> ${last}`);
    t.diagnostic(`hf-clip-tiny step times (ms): ${times.map((x) => x.toFixed(1)).join(', ')}`);

    // The saved checkpoint has exactly the original's tensors and shapes, holding the trained values.
    saveHfCheckpoint(join(dir, 'model'), trainer.checkpointTensors(), cfgJson, ['tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json'].map((f) => join(DIR, f)));
    const saved = new SafetensorsFile(join(dir, 'model', 'model.safetensors'));
    assert.deepEqual(saved.keys().sort(), src.keys().sort());
    for (const k of src.keys()) assert.deepEqual(saved.info(k)!.shape, src.info(k)!.shape, k);
    const mine = new Map(trainer.checkpointTensors().map((x) => [x.name, x.data]));
    const k = 'vision_model.encoder.layers.1.self_attn.k_proj.weight';
    assert.deepEqual(toFloat32(saved.get(k)), mine.get(k));
    const reloaded = await ClipModel.load(join(dir, 'model'));
    assert.ok(Math.abs(reloaded.logitScale - Math.exp(mine.get('logit_scale')![0]!)) < 1e-4);
    assert.equal((await reloaded.encodeTexts(['a photo of a cat']))[0]!.length, 16);
    await reloaded.release();

    // Optimizer state: save, load into a fresh trainer, and both take the same next step.
    trainer.saveState(join(dir, 'adamw.safetensors'));
    const other = (await setup()).trainer;
    for (const [name, p] of trainer.params) other.params.get(name)!.data = Float32Array.from(p.data);
    other.loadState(join(dir, 'adamw.safetensors'));
    assert.equal(other.state.step, 4);
    const [a, b] = [await trainer.step(batch, lr), await other.step(batch, lr)];
    assert.equal(a.loss, b.loss);
    const q = 'vision_model.encoder.layers.0.self_attn.q_proj.weight';
    assert.deepEqual(other.params.get(q)!.data, trainer.params.get(q)!.data);
    await other.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await trainer.release();
  }
});
