// One emoji-clip recipe, run end to end: tokenizer, `clip train` from scratch, the benchmark report and
// the training curve. Shared by `npm run train:emoji` (the shipped model) and `npm run ablate:emoji`
// (its variants), so an ablation row is trained exactly as the shipped model is.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataReady } from '../data/manifests.js';
import { ClipModel } from '../runtime/clip-model.js';
import { emojiBenchmarkTable, runEmojiBenchmark, type BenchmarkPart, type EmojiBenchmarkReport } from '../data/emoji-benchmark.js';
import { renderTrainingCurve } from '../train/training-curve.js';
import { trainClipBpe, writeClipBpe } from '../text/train-bpe.js';
import { trainClip } from '../train/run.js';
import { trainingData, type EmojiRecipe } from './emoji-clip.js';

export interface RecipeRun {
  runDir: string;
  report: EmojiBenchmarkReport;
  table: string;
  trainSeconds: number;
  steps: number;
  images: number;
  samples: number;
  finalLoss: number | null;
}

export interface RecipeOptions {
  threads?: number;
  /** Benchmark parts (default all). */
  parts?: BenchmarkPart[];
  modelName?: string;
  log?: (m: string) => void;
}

export async function runRecipe(recipe: EmojiRecipe, out: string, opts: RecipeOptions = {}): Promise<RecipeRun> {
  const log = opts.log ?? (() => {});
  if (!dataReady()) throw new Error('the benchmark data is not prepared: run `npm run data` first');
  mkdirSync(out, { recursive: true });
  const started = Date.now();

  // 1. Data, tokenizer and config (deterministic: rewriting them on a resumed run changes nothing).
  const data = trainingData(recipe.data, out);
  const tokDir = join(out, 'tokenizer');
  const bpe = trainClipBpe(data.corpus, recipe.tokenizer);
  writeClipBpe(tokDir, bpe);
  log(`data: ${data.images} images (${data.path}); tokenizer: ${bpe.stats.vocab} tokens (${bpe.stats.merges} merges over ${bpe.stats.words} distinct words) in ${tokDir}`);
  const configPath = join(out, 'config.json');
  writeFileSync(configPath, JSON.stringify(recipe.config, null, 2) + '\n');

  // 2. Train (the same as `clip train` with the flags printed here).
  const runDir = join(out, 'run');
  const t = recipe.train;
  const flags = `--epochs ${t.epochs} --batch-size ${t.batchSize} --lr ${t.lr} --wd ${t.weightDecay} --warmup ${t.warmup} --grad-clip ${t.gradClip} --seed ${t.seed} --captions ${t.captions} --augment ${t.augment}${t.cropScale ? ` --crop-scale ${t.cropScale.join(',')}` : ''}`;
  log(`equivalent: clip train ${data.path} --config ${configPath} --tokenizer ${tokDir} --out ${runDir} ${flags} --resume`);
  let lastShown = 0;
  const result = await trainClip({ data: data.path, config: configPath, tokenizer: tokDir, ...t }, { out: runDir, resume: true, threads: opts.threads }, {
    note: (m) => log(m),
    step: (s) => {
      if (Date.now() - lastShown < 15_000 && s.step !== s.total) return;
      lastShown = Date.now();
      log(`epoch ${s.epoch}/${s.epochs} step ${s.step}/${s.total} loss ${s.loss?.toFixed(4) ?? 'skipped'} lr ${s.lr.toExponential(2)} ${s.samplesPerSec.toFixed(1)} samples/s`);
    },
    epoch: (r) => log(`epoch ${r.epoch}: mean loss ${r.trainLoss?.toFixed(4)} (${r.seconds.toFixed(0)} s)`),
  });
  const trainSeconds = result.history.reduce((s, h) => s + h.seconds, 0);
  const samples = result.history.reduce((s, h) => s + h.samples, 0);
  log(`trained ${result.steps} steps (${samples} samples) in ${(trainSeconds / 60).toFixed(1)} min of steps (${((Date.now() - started) / 60000).toFixed(1)} min in this process)`);

  // 3. Report and curve. Loaded once, right after training: no use for the ONNX cache.
  const model = await ClipModel.load(runDir, { threads: opts.threads, cache: false });
  let report: EmojiBenchmarkReport;
  try {
    report = await runEmojiBenchmark(model, { modelName: opts.modelName ?? 'emoji-clip (fp32, run output)', parts: opts.parts, onProgress: (stage, d, n) => { if (d === n) log(`${stage}: ${n}`); } });
  } finally {
    await model.release();
  }
  const full = { recipe: { ...recipe, trainSeconds, steps: result.steps, samples, images: data.images, finalLoss: result.finalLoss }, ...report };
  writeFileSync(join(out, 'report.json'), JSON.stringify(full, null, 1) + '\n');
  const table = emojiBenchmarkTable(report);
  writeFileSync(join(out, 'report.md'), table + '\n');
  await renderTrainingCurve(runDir, join(out, 'training-curve.png'), { title: 'emoji-clip: from scratch on Noto + Twemoji' });
  return { runDir, report, table, trainSeconds, steps: result.steps, images: data.images, samples, finalLoss: result.finalLoss };
}
