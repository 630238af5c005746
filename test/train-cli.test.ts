// `clip train` end to end: HF-layout checkpoints that reload exactly, exact --resume after SIGKILL,
// --freeze vision, EasyNLP TSV input with a broken image, and validation numbers equal to
// `evalRetrieval` on the saved model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { buildImageGraph, buildTextGraph } from '../src/models/clip-graph.js';
import { clipConfigFromHF } from '../src/models/config.js';
import { hfClipWeights } from '../src/models/families/hf-clip.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { createSession, ort } from '../src/runtime/session.js';
import { readRetrievalTsv } from '../src/tasks/datasets.js';
import { evalRetrieval } from '../src/tasks/eval-retrieval.js';
import { trainClip } from '../src/train/run.js';
import { shapeSet, toEasyNlpTsv } from '../src/train/synthetic.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { runClip } from './clip-process.js';

const TOKENIZER = fixture('common', 'tokenizer-clip');
const TINY = fixture('hf-clip-tiny');
/** hf-clip-tiny's towers at 32 px (so scratch runs are fast and their keys comparable). */
const CONFIG = {
  projection_dim: 16,
  text_config: { hidden_size: 32, intermediate_size: 128, num_attention_heads: 4, num_hidden_layers: 2, max_position_embeddings: 77 },
  vision_config: { hidden_size: 64, intermediate_size: 256, num_attention_heads: 4, num_hidden_layers: 2, image_size: 32, patch_size: 8 },
};

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'clip-train-cli-'));
}


const jsonLines = (s: string) => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const tensorBytes = (f: SafetensorsFile, k: string) => Buffer.from(f.get(k).bytes);

test('fine-tune with --freeze vision on EasyNLP TSV: vision weights unchanged, bad image skipped, val recall = evalRetrieval of the saved model', { skip: SKIP_FIXTURES }, async (t) => {
  const dir = tmp();
  try {
    const lines = toEasyNlpTsv(await shapeSet(2, 32, 1, ['red', 'blue', 'green'])).trim().split('\n');
    // A PNG signature followed by junk: looks like an image to the TSV reader, fails to decode.
    const broken = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]).toString('base64');
    lines.splice(5, 0, `a broken image\t${broken}`);
    writeFileSync(join(dir, 'train.tsv'), lines.join('\n') + '\n');
    writeFileSync(join(dir, 'val.tsv'), toEasyNlpTsv(await shapeSet(1, 32, 2, ['red', 'blue', 'green'])));
    const out = join(dir, 'out');
    const r = await runClip([
      'train', join(dir, 'train.tsv'), '--model', TINY, '--freeze', 'vision', '--val', join(dir, 'val.tsv'),
      '-o', out, '--epochs', '2', '--batch-size', '8', '--lr', '1e-3', '--save-every', '2', '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skipping 1 unreadable image/);
    assert.match(r.stderr, /train\.tsv:6/);
    const recs = jsonLines(r.stdout);
    assert.deepEqual(recs.map((x) => x.type), ['epoch', 'epoch', 'done']);
    assert.equal(recs[2].skippedImages.length, 1);

    const src = new SafetensorsFile(join(TINY, 'model.safetensors'));
    const saved = new SafetensorsFile(join(out, 'model.safetensors'));
    assert.deepEqual(saved.keys().sort(), src.keys().sort());
    const vision = src.keys().filter((k) => k.startsWith('vision_model.') || k.startsWith('visual_projection.'));
    assert.ok(vision.length > 20);
    for (const k of vision) assert.ok(tensorBytes(saved, k).equals(tensorBytes(src, k)), `${k} changed`);
    const textChanged = src.keys().filter((k) => k.startsWith('text_model.') && !tensorBytes(saved, k).equals(tensorBytes(src, k)));
    assert.ok(textChanged.length > 10, `only ${textChanged.length} text tensors changed`);

    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual([cfg.architectures, cfg.model_type, cfg.projection_dim, cfg.text_config.model_type, cfg.vision_config.model_type],
      [['CLIPModel'], 'clip', 16, 'clip_text_model', 'clip_vision_model']);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) assert.ok(existsSync(join(out, f)), f);

    // The epoch's validation numbers are what `clip eval retrieval` gives on the saved model.
    const model = await ClipModel.load(out);
    const report = await evalRetrieval(model, await readRetrievalTsv(join(dir, 'val.tsv')));
    await model.release();
    const last = recs[1].val;
    assert.deepEqual([last.imageToText, last.textToImage, last.mean], [report.imageToText, report.textToImage, report.mean]);
    t.diagnostic(`val after 2 epochs: mean recall ${(report.mean! * 100).toFixed(1)}%; ${textChanged.length} text tensors trained, ${vision.length} vision tensors bit-identical`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--resume after SIGKILL continues exactly like an uninterrupted run', { skip: SKIP_FIXTURES }, async (t) => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'train.tsv'), toEasyNlpTsv(await shapeSet(4, 32, 3)));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
    const args = (out: string) => ['train', join(dir, 'train.tsv'), '--config', join(dir, 'config.json'), '--tokenizer', TOKENIZER, '-o', out,
      '--epochs', '6', '--batch-size', '16', '--lr', '2e-3', '--warmup', '5', '--grad-clip', '1', '--seed', '5', '--save-every', '4', '--threads', '2', '--augment', 'crop+style', '--json'];

    const full = await runClip(args(join(dir, 'full')));
    assert.equal(full.code, 0, full.stderr);

    const cut = join(dir, 'cut');
    const killed = await runClip(args(cut), /saved \S*checkpoint-4\b/);
    assert.equal(killed.signal, 'SIGKILL', `not killed: ${killed.stderr}`);
    assert.ok(!existsSync(join(cut, 'model.safetensors')), 'the run finished before the kill');
    // Without --resume an existing run is not overwritten; with it, options come from the run.
    const refused = await runClip(args(cut));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--resume/);
    const resumed = await runClip(['train', '--resume', '-o', cut, '--threads', '2', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);

    const [a, b] = [jsonLines(full.stdout).at(-1), jsonLines(resumed.stdout).at(-1)];
    assert.equal(a.steps, 36);
    assert.equal(b.steps, 36);
    assert.ok(Math.abs(a.finalLoss - b.finalLoss) <= 1e-6, `final loss ${a.finalLoss} vs ${b.finalLoss}`);
    const weights = (d: string) => readFileSync(join(d, 'model.safetensors'));
    const identical = weights(join(dir, 'full')).equals(weights(cut));
    assert.ok(identical, 'final weights differ');
    const losses = (d: string) => readFileSync(join(d, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).trainLoss);
    assert.deepEqual(losses(cut), losses(join(dir, 'full')));
    // The step log survives the kill: lines up to the checkpoint are kept, the rest written again.
    const steps = (d: string) => readFileSync(join(d, 'train_steps.jsonl'), 'utf8').trim().split('\n').map((l) => { const r = JSON.parse(l); return [r.step, r.loss, r.lr]; });
    assert.equal(steps(cut).length, 36);
    assert.deepEqual(steps(cut), steps(join(dir, 'full')));
    t.diagnostic(`killed after ${(killed.stderr.match(/saved/g) ?? []).length} checkpoint(s); final loss ${a.finalLoss} (uninterrupted) vs ${b.finalLoss} (resumed); model.safetensors bit-identical`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a saved checkpoint reloads with ClipModel.load and embeds exactly like the trainer\'s final weights', { skip: SKIP_FIXTURES }, async () => {
  const dir = tmp();
  try {
    const samples = await shapeSet(2, 32, 4, ['red', 'green']);
    writeFileSync(join(dir, 'train.tsv'), toEasyNlpTsv(samples));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
    const out = join(dir, 'out');
    const res = await trainClip({ data: join(dir, 'train.tsv'), config: join(dir, 'config.json'), tokenizer: TOKENIZER, batchSize: 8, lr: 1e-3, epochs: 2 }, { out });
    assert.equal(res.steps, 4);

    // Towers built straight from the trainer's parameters: HF CLIPModel tensors as stored.
    const w = hfClipWeights({
      origin: 'trainer', keys: () => [...res.params.keys()], has: (k) => res.params.has(k),
      get: (k) => {
        const p = res.params.get(k)!;
        return { dtype: 'float32', shape: p.dims, bytes: new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength) };
      },
    });
    const cfg = clipConfigFromHF(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')));
    const model = await ClipModel.load(out);
    const pixels = new Float32Array(2 * 3 * 32 * 32);
    pixels.set(await model.preprocessor(samples[0]!.png, 'a'), 0);
    pixels.set(await model.preprocessor(samples[3]!.png, 'b'), 3 * 32 * 32);
    const img = await createSession(buildImageGraph(cfg, w, { fused: true }));
    const mine = (await img.run({ pixel_values: new ort.Tensor('float32', pixels, [2, 3, 32, 32]) })).image_embeds!.data as Float32Array;
    const theirs = await model.encodePixels(pixels, 2);
    assert.deepEqual(Array.from(mine), [...theirs[0]!, ...theirs[1]!]);

    const texts = ['a red circle', 'a green cross'];
    const batch = model.tokenizer.encodeBatch(texts, { pad: 'longest' });
    const txt = await createSession(buildTextGraph(cfg, w, { fused: true }));
    const mineT = (await txt.run({
      input_ids: new ort.Tensor('int64', batch.inputIds, batch.dims),
      pool_index: new ort.Tensor('int64', BigInt64Array.from(batch.eotIndex, (e, i) => BigInt(i * batch.length + e)), [2]),
    })).text_embeds!.data as Float32Array;
    const theirsT = await model.encodeTexts(texts);
    assert.deepEqual(Array.from(mineT), [...theirsT[0]!, ...theirsT[1]!]);
    assert.ok(Math.abs(model.logitScale - Math.exp(res.params.get('logit_scale')!.data[0]!)) === 0);
    await Promise.all([img.release(), txt.release(), model.release()]);

    // A scratch model has exactly the tensors transformers' CLIPModel has (hf-clip-tiny: same towers).
    const keys = (p: string) => new SafetensorsFile(p).keys().sort();
    assert.deepEqual(keys(join(out, 'model.safetensors')), keys(join(TINY, 'model.safetensors')));

    // Images decoded per batch (no cache) train to the very same weights as the byte cache.
    const streamed = join(dir, 'streamed');
    await trainClip({ data: join(dir, 'train.tsv'), config: join(dir, 'config.json'), tokenizer: TOKENIZER, batchSize: 8, lr: 1e-3, epochs: 2 }, { out: streamed, cacheBytes: 0 });
    assert.ok(readFileSync(join(streamed, 'model.safetensors')).equals(readFileSync(join(out, 'model.safetensors'))), 'streamed run differs');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parameters and moments updated in place equal double-buffered updates bit for bit', { skip: SKIP_FIXTURES }, async () => {
  const { openCheckpoint } = await import('../src/models/checkpoint.js');
  const { ClipTrainer } = await import('../src/train/trainer.js');
  // In-place writes are an option of the update in the graph (the default chunked update copies each slice back in place).
  const make = (memory: { inPlace: boolean; pattern?: boolean; arena?: boolean }) => {
    const ck = openCheckpoint(TINY);
    return ClipTrainer.create(ck.config!, ck.weights!, { memory: { ...memory, update: 'graph' }, adamw: { betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2, maxGradNorm: 1 } });
  };
  const [a, b] = [await make({ inPlace: true, arena: false }), await make({ inPlace: false, pattern: true })];
  assert.equal(a.inPlace, true);
  assert.equal(b.inPlace, false);
  const n = 4;
  const model = await ClipModel.load(TINY);
  const samples = await shapeSet(1, 32, 9, ['red']);
  const pixels = new Float32Array(n * 3 * 224 * 224);
  for (let i = 0; i < n; i++) pixels.set(await model.preprocessor(samples[i]!.png, `s${i}`), i * 3 * 224 * 224);
  const ids = model.tokenizer.encodeBatch(samples.slice(0, n).map((s) => s.caption), { pad: 'longest' });
  await model.release();
  const batch = { pixelValues: pixels, inputIds: ids.inputIds, n, seqLen: ids.length, eot: ids.eotIndex };
  for (let s = 0; s < 3; s++) {
    const [x, y] = [await a.step(batch, 1e-3), await b.step(batch, 1e-3)];
    assert.equal(x.loss, y.loss);
  }
  for (const [name, p] of a.params) assert.deepEqual(p.data, b.params.get(name)!.data, name);
  for (const [name, m] of a.state.m) assert.deepEqual([m, a.state.v.get(name)], [b.state.m.get(name), b.state.v.get(name)], name);
  await Promise.all([a.release(), b.release()]);
});

test('--crop-scale: checked when given, kept with the run, and a resume may not change it', { skip: SKIP_FIXTURES }, async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'train.tsv'), toEasyNlpTsv(await shapeSet(2, 32, 3)));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
    const out = join(dir, 'run');
    const args = (scale: string) => ['train', join(dir, 'train.tsv'), '--config', join(dir, 'config.json'), '--tokenizer', TOKENIZER, '-o', out,
      '--epochs', '1', '--batch-size', '4', '--threads', '1', '--augment', 'crop', '--crop-scale', scale, '--json'];
    const bad = await runClip(args('2,1'));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /crop scale must be two numbers 0 < min <= max <= 4/);
    const noCrops = await runClip(args('0.8,2.4').map((a) => (a === 'crop' ? 'none' : a)));
    assert.notEqual(noCrops.code, 0);
    assert.match(noCrops.stderr, /--crop-scale sets the crops of --augment/);
    const ok = await runClip(args('0.8,2.4'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(join(out, 'model.safetensors')));
    const changed = await runClip([...args('0.6,1.8'), '--resume']);
    assert.notEqual(changed.code, 0);
    assert.match(changed.stderr, /these differ from it: cropScale/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
