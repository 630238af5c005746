// Bench worker for this library: ClipModel (fp32 or int8) with the default (fused) graphs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipModel, runEmbedJob } from '../src/index.js';
import { lengthBuckets } from '../src/runtime/clip-model.js';
import type { BenchInputs, BenchPaths } from './prepare.js';
import { IMAGE_BATCH, TARGET_S, TEXT77_BATCH, TEXT_BATCH, measureRate, memory, progress, timed, type WorkerResult } from './timing.js';

/** The private lazy session getter, reached only to force session creation without running a batch. */
type SessionForcer = { session?: (kind: 'image' | 'text') => Promise<unknown> };

/** Load only (checkpoint + both sessions), for the cold-load measurement in a process of its own. */
export async function benchOursLoad(paths: BenchPaths, threads: number, dtype: 'fp32' | 'int8'): Promise<{ loadS: number; onnxCacheHits: number }> {
  const t0 = performance.now();
  const m = await ClipModel.load(paths.modelDir, { threads, format: 'weights', dtype });
  const forcer = m as unknown as SessionForcer;
  await forcer.session!('image');
  await forcer.session!('text');
  const loadS = (performance.now() - t0) / 1000;
  const hits = m.cacheHits;
  await m.release();
  return { loadS, onnxCacheHits: hits };
}

export async function benchOurs(paths: BenchPaths, inputs: BenchInputs, threads: number, dtype: 'fp32' | 'int8' = 'fp32'): Promise<WorkerResult> {
  const log = (m: string) => progress(`ours ${dtype}: ${m}`);
  log('loading');
  const loadDetail: Record<string, number | string> = {};
  const t0 = performance.now();
  // format 'weights': measure graphs we build from model.safetensors, not the ONNX files also in the dir.
  const [m, openS] = await timed(() => ClipModel.load(paths.modelDir, { threads, format: 'weights', dtype }));
  loadDetail.openCheckpointS = openS;
  loadDetail.towers = `image ${m.checkpoint.image.kind}, text ${m.checkpoint.text.kind}`;
  // Sessions are lazy; create both now so load time = graph build + session creation, like from_pretrained.
  const forcer = m as unknown as SessionForcer;
  if (typeof forcer.session === 'function') {
    loadDetail.imageSessionS = (await timed(() => forcer.session!('image')))[1];
    loadDetail.textSessionS = (await timed(() => forcer.session!('text')))[1];
    loadDetail.method = 'build + create sessions';
  } else {
    // Fallback if the getter is renamed: one single-item call per tower (slightly overstates load).
    const px = new Float32Array(3 * 224 * 224);
    loadDetail.imageSessionS = (await timed(() => m.encodePixels(px, 1)))[1];
    loadDetail.textSessionS = (await timed(() => m.encodeTexts(['a'])))[1];
    loadDetail.method = 'build + create sessions + one 1-item run per tower';
  }
  void m.tokenizer;
  void m.preprocessor;
  const loadS = (performance.now() - t0) / 1000;
  // Towers served by the built-ONNX cache ($CLIP_CACHE/onnx): 0 = built from the weights (a cold load).
  loadDetail.onnxCacheHits = m.cacheHits;
  const rssAfterLoadMB = memory().rssMB;
  log(`loaded in ${loadS.toFixed(2)} s`);

  const batchPaths = inputs.images.slice(0, IMAGE_BATCH);
  const pixelsOf = async (ps: string[]) => Promise.all(ps.map((p) => m.preprocessor(p, p)));

  // Preprocessing alone, with the same 32-way concurrency encodeImages uses.
  log('preprocess only');
  const prepAll = async () => {
    for (let s = 0; s < inputs.images.length; s += IMAGE_BATCH) await pixelsOf(inputs.images.slice(s, s + IMAGE_BATCH));
    return inputs.images.length;
  };
  await pixelsOf(batchPaths);
  const preprocess = await measureRate(prepAll, { targetS: TARGET_S / 2 });

  log('image tower, model only');
  const per = 3 * 224 * 224;
  const buf = new Float32Array(IMAGE_BATCH * per);
  (await pixelsOf(batchPaths)).forEach((px, i) => buf.set(px, i * per));
  const sampleImage = (await m.encodePixels(buf, IMAGE_BATCH))[0]!; // doubles as warm-up
  const imageModel = await measureRate(async () => (await m.encodePixels(buf, IMAGE_BATCH)).length, { targetS: TARGET_S });

  log('files -> embeddings');
  const encodeFiles = async () => {
    const res = await m.encodeImages(inputs.images, { batchSize: IMAGE_BATCH });
    const bad = res.find((r) => r.error);
    if (bad) throw new Error(bad.error);
    return res.length;
  };
  await m.encodeImages(batchPaths, { batchSize: IMAGE_BATCH });
  const files = await measureRate(encodeFiles, { targetS: TARGET_S });

  log('clip embed job, files -> TSV');
  const dir = mkdtempSync(join(tmpdir(), 'clip-bench-embed-'));
  let run = 0;
  const embedTsv = await measureRate(async () => {
    const items = inputs.images.map((p, i) => ({ kind: 'image' as const, id: `${i}:${p}`, path: p }));
    const r = await runEmbedJob(m, { items, out: join(dir, `run${run++}.tsv`), batchSize: IMAGE_BATCH });
    if (r.errors.length) throw new Error(r.errors[0]!.error);
    return r.embedded;
  }, { targetS: TARGET_S });
  rmSync(dir, { recursive: true, force: true });

  log('texts');
  const caps = inputs.captions;
  const sampleText = (await m.encodeTexts(caps, { batchSize: TEXT_BATCH }))[0]!;
  const texts = await measureRate(async () => (await m.encodeTexts(caps, { batchSize: TEXT_BATCH })).length, { targetS: TARGET_S });
  // Mean padded row length over the batches encodeTexts actually runs (sorted, cut by length).
  const lens = caps.map((c) => m.tokenizer.encode(c).length).sort((a, b) => a - b);
  let fed = 0;
  let at = 0;
  for (const size of lengthBuckets(lens, TEXT_BATCH)) {
    fed += size * lens[at + size - 1]!;
    at += size;
  }
  const textTokens = fed / lens.length;

  log('text tower at 77 tokens, model only');
  const b77 = m.tokenizer.encodeBatch(caps.slice(0, TEXT77_BATCH), { pad: 'max' });
  const run77 = async () => (await m.encodeBatch(b77)).length;
  await run77();
  const textModel77 = await measureRate(run77, { targetS: TARGET_S / 2 });

  await m.release();
  return {
    worker: `ours-${dtype}`, side: 'ours', dtype, threads,
    loadS, loadDetail, rssAfterLoadMB,
    imageModel, preprocess, files, embedTsv, texts, textTokens, textModel77,
    peakRssMB: memory().peakRssMB,
    sample: { image: Array.from(sampleImage), text: Array.from(sampleText) },
  };
}
