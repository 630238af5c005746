// Chinese-CLIP training (BERT text tower pooled at [CLS] + ViT): one contrastive AdamW step on zh-clip-tiny
// against a plain-PyTorch port of transformers' ChineseCLIPModel (test/goldens/zh-clip-train-step, made by
// scripts/goldens/zh_train_step.py), with and without the frozen vision tower, within the tolerances of the
// hf-clip-tiny train-step test; and `clip train --model zh-clip-tiny --freeze vision` on EasyNLP TSV saving a
// checkpoint that keeps HF's keys and shapes and loads in our tools. Also any other tower: an OpenAI
// ModifiedResNet (frozen) fine-tuned and saved in its own open_clip layout.
import { test } from 'node:test';
import { assertGradClose, assertParamsAfterStep, type AfterStepStats } from './helpers.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { ClipTrainer, type TrainBatch } from '../src/train/trainer.js';
import { trainClip } from '../src/train/run.js';
import { shapeSet } from '../src/train/synthetic.js';
import { CLIP_BIN, fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';

const DIR = fixture('zh-clip-tiny');
const GOLDEN = join(REPO_ROOT, 'test', 'goldens', 'zh-clip-train-step');

type Mode = 'full' | 'frozen_vision';

async function setup(mode: Mode) {
  const spec = JSON.parse(readFileSync(join(GOLDEN, 'train-step.json'), 'utf8'));
  const ref = new SafetensorsFile(join(GOLDEN, 'train-step.safetensors'));
  const published = new SafetensorsFile(join(DIR, 'golden.safetensors'));
  const [n, T] = ref.info('input_ids')!.shape as [number, number];
  const ids = new BigInt64Array(ref.get('input_ids').bytes.slice().buffer);
  const mask = new BigInt64Array(ref.get('attention_mask').bytes.slice().buffer);
  // The batch is the published golden's: its first n token rows and all its pixels.
  const pubIds = new BigInt64Array(published.get('input_ids').bytes.slice().buffer);
  assert.deepEqual(ids, pubIds.subarray(0, n * T));
  assert.deepEqual(published.info('pixel_values')!.shape[0], n);
  const batch: TrainBatch = { pixelValues: toFloat32(published.get('pixel_values')), inputIds: ids, attentionMask: mask, n, seqLen: T, eot: [] };
  const ck = openCheckpoint(DIR, { format: 'weights' });
  const o = spec.optimizer;
  const trainer = await ClipTrainer.create(ck.config!, ck.weights!, {
    adamw: { betas: o.betas, eps: o.eps, weightDecay: o.weight_decay }, outputGrads: true,
    freeze: mode === 'frozen_vision' ? 'vision' : undefined,
  });
  return { spec, ref, batch, trainer, lr: o.lr as number };
}

for (const mode of ['full', 'frozen_vision'] as const) {
  test(`one AdamW step on zh-clip-tiny (${mode === 'full' ? 'every tower trains' : 'vision tower frozen'}) matches PyTorch's ChineseCLIPModel`, { skip: SKIP_FIXTURES }, async (t) => {
    const { spec, ref, batch, trainer, lr } = await setup(mode);
    const get = (k: string) => toFloat32(ref.get(`${mode}/${k}`));
    const src = new SafetensorsFile(join(DIR, 'model.safetensors'));
    try {
      const before = new Map([...trainer.params].map(([k, p]) => [k, Float32Array.from(p.data)]));
      const res = await trainer.step(batch, lr);
      const lossRef = get('loss')[0]!;
      assert.ok(Math.abs(res.loss - lossRef) <= 1e-5, `loss ${res.loss} vs ${lossRef}`);

      // Gradients arrive for the checkpoint's own tensors, exactly the ones PyTorch trains.
      const grads = res.grads!;
      const trained = src.keys().filter((k) => mode === 'full' || !(k.startsWith('vision_model.') || k.startsWith('visual_projection.')));
      assert.deepEqual([...grads.keys()].sort(), trained.sort());
      const stored = ref.keys().filter((k) => k.startsWith(`${mode}/grad/`)).map((k) => k.slice(`${mode}/grad/`.length));
      assert.deepEqual(stored.sort(), trained.filter((k) => !spec.omitted.includes(k)).sort());
      let worstGrad = 0;
      for (const name of stored) {
        worstGrad = Math.max(worstGrad, assertGradClose(grads.get(name)!, get(`grad/${name}`), `grad/${name}`));
      }

      // Parameters after the step: 1e-5 plus what the gradient difference explains through Adam's first
      // step (the same bound as the hf-clip-tiny train-step test, see there).
      const eps = spec.optimizer.eps as number;
      const stats: AfterStepStats = { explained: 0, worstWellConditioned: 0 };
      for (const name of stored) {
        assertParamsAfterStep(trainer.params.get(name)!.data, get(`after/${name}`), grads.get(name)!, get(`grad/${name}`), lr, eps, `after/${name}`, stats);
      }
      const { worstWellConditioned } = stats;
      // A frozen tower: not fed, no optimizer state, bit for bit unchanged.
      const frozen = src.keys().filter((k) => !trained.includes(k));
      assert.equal(frozen.length, mode === 'full' ? 0 : 40);
      for (const k of frozen) {
        assert.ok(!trainer.state.m.has(k) && !trainer.graph.inputs.some((i) => i.name === k), `${k} is frozen`);
        assert.deepEqual(trainer.params.get(k)!.data, before.get(k), `${k} moved`);
      }

      const after = await trainer.evaluate(batch);
      const afterRef = get('loss_after_step')[0]!;
      assert.ok(Math.abs(after - afterRef) <= 1e-5, `loss after step ${after} vs ${afterRef}`);
      t.diagnostic(`${mode}: loss ${res.loss} (ref ${lossRef}); after ${after} (ref ${afterRef}); worst |grad diff| ${worstGrad.toExponential(2)}; `
        + `worst param diff where |grad| >= 1e-5: ${worstWellConditioned.toExponential(2)}`);
    } finally {
      src.close?.();
      await trainer.release();
    }
  });
}

test('clip train --model zh-clip-tiny --freeze vision on EasyNLP TSV: an HF ChineseCLIPModel checkpoint that loads in our tools', { skip: SKIP_FIXTURES }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-zh-train-'));
  try {
    const captions = ['一个红色的圆', '一个红色的方块', '一个红色的三角形', '一个红色的十字', '一个蓝色的圆', '一个蓝色的方块', '一个蓝色的三角形', '一个蓝色的十字'];
    const samples = await shapeSet(1, 32, 5, ['red', 'blue']);
    writeFileSync(join(dir, 'train.tsv'), samples.map((s, i) => `${captions[i]}\t${Buffer.from(s.png).toString('base64')}`).join('\n') + '\n');
    const out = join(dir, 'out');
    const r = spawnSync(process.execPath, [CLIP_BIN, 'train', join(dir, 'train.tsv'), '--model', DIR, '--freeze', 'vision',
      '-o', out, '--batch-size', '4', '--lr', '1e-3', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);

    const src = new SafetensorsFile(join(DIR, 'model.safetensors'));
    const saved = new SafetensorsFile(join(out, 'model.safetensors'));
    assert.deepEqual(saved.keys().sort(), src.keys().sort());
    for (const k of src.keys()) assert.deepEqual(saved.info(k)!.shape, src.info(k)!.shape, k);
    const same = (k: string) => Buffer.from(saved.get(k).bytes).equals(Buffer.from(src.get(k).bytes));
    const vision = src.keys().filter((k) => k.startsWith('vision_model.') || k.startsWith('visual_projection.'));
    for (const k of vision) assert.ok(same(k), `${k} changed`);
    assert.ok(src.keys().filter((k) => k.startsWith('text_model.') && !same(k)).length > 10, 'the text tower trained');
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual([cfg.model_type, cfg.architectures], ['chinese_clip', ['ChineseCLIPModel']]);

    const model = await ClipModel.load(out);
    try {
      assert.equal(model.checkpoint.family, 'chinese-clip');
      const [a, b] = await model.encodeTexts(['一个红色的圆', '一个蓝色的十字']);
      assert.equal(a!.length, 16);
      assert.ok(Math.abs(Math.hypot(...a!) - 1) < 1e-5 && a!.some((x, i) => x !== b![i]));
    } finally {
      await model.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an OpenAI-family ModifiedResNet trains with its image tower frozen and is saved in open_clip layout with every original key', { skip: SKIP_FIXTURES }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-rn-train-'));
  const model = fixture('openai-rn-tiny');
  try {
    const samples = await shapeSet(1, 32, 3, ['red', 'blue']);
    writeFileSync(join(dir, 'train.tsv'), samples.map((s) => `${s.caption}\t${Buffer.from(s.png).toString('base64')}`).join('\n') + '\n');
    const common = { data: join(dir, 'train.tsv'), model, tokenizer: fixture('common', 'tokenizer-clip'), batchSize: 4, lr: 1e-3 };
    await assert.rejects(trainClip(common, { out: join(dir, 'refused') }), /ModifiedResNet image tower only frozen \(--freeze vision\)/);
    const out = join(dir, 'out');
    const res = await trainClip({ ...common, freeze: 'vision' }, { out });
    assert.equal(res.steps, 2);
    const src = new SafetensorsFile(join(model, 'open_clip_model.safetensors'));
    const saved = new SafetensorsFile(join(out, 'open_clip_model.safetensors'));
    // num_batches_tracked (int64, read by no tower) comes through as stored; the frozen tower is unchanged.
    assert.deepEqual(saved.keys().sort(), src.keys().sort());
    for (const k of src.keys()) assert.deepEqual([saved.info(k)!.dtype, saved.info(k)!.shape], [src.info(k)!.dtype, src.info(k)!.shape], k);
    const same = (k: string) => Buffer.from(saved.get(k).bytes).equals(Buffer.from(src.get(k).bytes));
    assert.ok(src.keys().filter((k) => k.startsWith('visual.')).every(same));
    assert.ok(!same('text_projection') && !same('transformer.resblocks.0.attn.in_proj_weight'));
    const reloaded = await ClipModel.load(out);
    try {
      assert.equal(reloaded.checkpoint.family, 'open-clip');
      assert.equal((await reloaded.encodeTexts(['a red circle']))[0]!.length, 16);
    } finally {
      await reloaded.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
