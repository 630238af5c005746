// `clip train` as a library call: data → batches → ClipTrainer steps on a warmup + cosine schedule,
// checkpoints (state.ts layout) every N steps and at each epoch end, validation recall per epoch, and
// exact resumption from the newest checkpoint.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pipelineFor } from '../runtime/preprocess.js';
import type { RetrievalReport } from '../tasks/eval-retrieval.js';
import type { RawTensor } from '../io/tensor.js';
import { modelTensors, unreadTensors, writeModelDir, writeOptimizerState } from './checkpoint-io.js';
import { readPairs, type DataFormat } from './data.js';
import { hfPreprocessorJson } from './hf-config.js';
import { PixelStore } from './pixels.js';
import { augmentBatch, checkCropScale, DEFAULT_CROP, type Augment, type CropRange } from './augment.js';
import { permutation, Rng, STREAM } from '../tasks/rng.js';
import { cosineLr, type CosineSchedule } from './schedule.js';
import { fromCheckpoint, fromConfig, fromResume, type TrainSource } from './source.js';
import { checkpointDir, commitCheckpoint, LAYOUT, LAYOUT_FILE, listCheckpoints, LOG_FILE, OPTIMIZER_FILE, readState, readStepLog, STATE_FORMAT, STEP_LOG_FILE, writeFileAtomic, type EpochRecord, type RecallSummary, type StepRecord, type TrainState } from './state.js';
import { ClipTrainer, type Param, type TrainBatch, type TrainMemory } from './trainer.js';
import { LOSS_KINDS, type LossKind } from '../models/family.js';
import { Validator } from './validate.js';

/** Everything that fixes the trajectory of a run (saved with each checkpoint; --resume keeps it). */
export interface TrainSetup {
  data: string;
  dataFormat?: DataFormat;
  val?: string;
  valFormat?: DataFormat;
  /** Fine-tune this checkpoint, or ... */
  model?: string;
  /** ... train from this CLIPConfig with random weights. */
  config?: string;
  tokenizer?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Linear warmup steps, then cosine decay to 0 at the last step. */
  warmup: number;
  /** Clip the global gradient norm to this. */
  gradClip?: number;
  /** Data order and scratch init. */
  seed: number;
  /** Tower kept frozen (no backward pass through it, weights saved unchanged). */
  freeze?: 'vision' | 'text';
  betas: [number, number];
  eps: number;
  /**
   * 'all': every caption is one pair per epoch (EasyNLP). 'sample': every image once per epoch with one
   * of its captions drawn at random, so images with many captions do not dominate and an epoch holds no
   * duplicate image (a duplicate is a false negative for the contrastive loss).
   */
  captions?: CaptionMode;
  /** Image augmentation (augment.ts). */
  augment?: Augment;
  /** The crops' window area relative to the image, [min, max] (default augment.ts's DEFAULT_CROP.scale). */
  cropScale?: [number, number];
  /** The objective: softmax (CLIP) or the pairwise sigmoid (needs a logit_bias); default: the model family's own. */
  loss?: LossKind;
}

export type CaptionMode = 'all' | 'sample';
export const CAPTION_MODES: CaptionMode[] = ['all', 'sample'];

/** open_clip's ViT optimizer settings; a fine-tuning learning rate. */
export const SETUP_DEFAULTS = {
  epochs: 1, batchSize: 32, lr: 1e-5, weightDecay: 0.2, warmup: 0, seed: 0, betas: [0.9, 0.98] as [number, number], eps: 1e-6,
  captions: 'all' as CaptionMode, augment: 'none' as Augment,
};

/** How this process runs (free to change across a resume). */
export interface RunOptions {
  out: string;
  /** Continue from the newest checkpoint in `out` (starts afresh when there is none). */
  resume?: boolean;
  /** Checkpoint every N steps (besides every epoch end). */
  saveEvery?: number;
  /** Checkpoints kept (newest first); default 1. */
  keep?: number;
  threads?: number;
  /** Decoded-image cache budget; larger data sets are decoded per batch. Default min(8 GiB, RAM / 4). */
  cacheBytes?: number;
  memory?: TrainMemory;
}

export interface StepInfo {
  step: number;
  total: number;
  /** 1-based. */
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number | null;
  lr: number;
  /** Over the last few steps, data preparation included. */
  samplesPerSec: number;
}

export interface TrainEvents {
  note?(message: string): void;
  prepare?(stage: string, done: number, total: number): void;
  step?(s: StepInfo): void;
  epoch?(r: EpochRecord): void;
  saved?(dir: string, step: number): void;
}

export interface TrainResult {
  out: string;
  steps: number;
  /** Loss of the last step (before its update). */
  finalLoss: number | null;
  history: EpochRecord[];
  /** Final parameters: the checkpoint's tensors under its names and in its layout. */
  params: Map<string, Param>;
  skippedImages: { name: string; error: string }[];
}

function summarize(r: RetrievalReport): RecallSummary {
  return {
    imageToText: r.imageToText, textToImage: r.textToImage, mean: r.mean,
    images: r.counts.images, texts: r.counts.texts, failedImages: r.counts.failedImages,
  };
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

function normalizeSetup(given: Partial<TrainSetup>): TrainSetup {
  const abs = (p?: string) => (p !== undefined && existsSync(p) ? resolve(p) : p);
  const s = { ...SETUP_DEFAULTS, ...defined(given) } as TrainSetup;
  if (!s.data) throw new Error('no training data given');
  if (!!s.model === !!s.config) throw new Error('give either a checkpoint to fine-tune (--model) or a config to train from scratch (--config)');
  if (s.config && !s.tokenizer) throw new Error('training from a config needs --tokenizer DIR (a directory with tokenizer.json)');
  for (const [k, v] of [['epochs', s.epochs], ['batchSize', s.batchSize]] as const) if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
  if (!(s.lr > 0) || s.weightDecay < 0 || s.warmup < 0 || (s.gradClip !== undefined && !(s.gradClip > 0))) throw new Error('lr must be > 0, weight decay and warmup >= 0, grad clip > 0');
  if (!Number.isInteger(s.seed) || s.seed < 0 || s.seed >= 2 ** 32) throw new Error('seed must be an integer in [0, 2^32)');
  if (s.cropScale !== undefined) {
    checkCropScale(s.cropScale);
    // Without crops the range would be ignored: say so rather than train something else than asked.
    if ((s.augment ?? 'none') === 'none') throw new Error('--crop-scale sets the crops of --augment crop, crop+style or crop+redraw, and this run has no augmentation');
  }
  if (s.loss !== undefined && !LOSS_KINDS.includes(s.loss)) throw new Error(`loss must be one of ${LOSS_KINDS.join(', ')}, got ${JSON.stringify(s.loss)}`);
  return { ...s, data: abs(s.data)!, val: abs(s.val), model: abs(s.model), config: abs(s.config), tokenizer: abs(s.tokenizer) };
}

/**
 * What a resume may not change. Paths may (data that moved is recognized by its fingerprint; the model
 * or config is read from the checkpoint; validation does not steer training).
 */
const FIXED: (keyof TrainSetup)[] = ['epochs', 'batchSize', 'lr', 'weightDecay', 'warmup', 'gradClip', 'seed', 'freeze', 'betas', 'eps', 'dataFormat', 'captions', 'augment', 'cropScale', 'loss'];

/** The run's own setup with the paths given now; throws on a changed hyperparameter. */
function resumeSetup(given: Partial<TrainSetup>, saved: TrainSetup, out: string): TrainSetup {
  const merged = normalizeSetup({ ...saved, ...defined(given) });
  const bad = FIXED.filter((k) => given[k] !== undefined && JSON.stringify(merged[k]) !== JSON.stringify(saved[k]));
  if (bad.length) {
    // The schedule's length is part of the trajectory: extending a run would change every learning rate after warmup.
    const more = bad.includes('epochs')
      ? `. A run's --epochs fixes its learning-rate schedule (warmup, then cosine down to 0 at the last step), so it cannot be extended; ` +
        `to train further, fine-tune the saved model in a new run: clip train DATA --model ${out} --out NEW_DIR --epochs N`
      : '';
    throw new Error(`--resume continues the run as it was set up; these differ from it: ${bad.map((k) => k === 'epochs' ? `epochs (${saved.epochs} in the run)` : k).join(', ')}${more}`);
  }
  return { ...saved, data: merged.data, val: merged.val, valFormat: merged.valFormat };
}

function fingerprint(format: string, ds: { images: { name: string }[]; texts: { text: string; image: number }[] }): string {
  const h = createHash('sha1').update(`${format}\n${ds.images.length}\n`);
  for (const t of ds.texts) h.update(`${t.image}\t${ds.images[t.image]!.name}\t${t.text}\n`);
  return h.digest('hex');
}

/** A checkpoint of this run, in the family's own layout: the trainer's weights (and the tensors no tower reads) with the config, preprocessing and tokenizer it started with. */
function writeTrainedModel(dir: string, trainer: ClipTrainer, src: TrainSource, unread: Map<string, RawTensor>): void {
  writeModelDir(dir, modelTensors(trainer.params, unread), {
    weightsFile: src.weightsFile,
    jsonFiles: src.configFiles,
    preprocessor: src.hfPreprocessor ? hfPreprocessorJson(src.preprocess) : undefined,
    files: src.tokenizerFiles,
  });
}

const MODEL_FILES = (src: TrainSource) => [src.weightsFile, ...Object.keys(src.configFiles), ...(src.hfPreprocessor ? ['preprocessor_config.json'] : []), ...Object.keys(src.tokenizerFiles)];

export async function trainClip(given: Partial<TrainSetup>, run: RunOptions, ev: TrainEvents = {}): Promise<TrainResult> {
  const out = resolve(run.out);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, LAYOUT_FILE), `# Training output of \`clip train\`\n\n\`\`\`\n${LAYOUT}\`\`\`\n`);
  const keep = run.keep ?? 1;
  if (!Number.isInteger(keep) || keep < 1) throw new Error('keep must be a positive integer');
  const existing = listCheckpoints(out);
  if (existing.length && !run.resume) throw new Error(`${out} already has training checkpoints: pass --resume to continue, or choose another --out`);
  const latest = run.resume ? existing.at(-1) : undefined;
  if (run.resume && !latest) ev.note?.(`nothing to resume in ${out}: starting from the beginning`);
  const saved = latest ? readState(latest.dir) : undefined;

  let setup: TrainSetup;
  if (saved) {
    setup = resumeSetup(given, saved.setup as unknown as TrainSetup, out);
    if (saved.threads !== (run.threads ?? null)) ev.note?.(`the run used --threads ${saved.threads ?? '(default)'}; with a different count the results can differ in the last bits`);
  } else {
    setup = normalizeSetup(given);
  }

  const src = saved ? fromResume(latest!.dir, saved)
    : setup.model ? await fromCheckpoint(setup.model, setup.tokenizer, setup.freeze)
    : fromConfig(setup.config!, setup.tokenizer!, setup.seed);
  const size = src.config.vision.imageSize;

  // Data: pairs, the decoded-image store, token rows.
  const train = await readPairs(setup.data, setup.dataFormat);
  train.notes.forEach((n) => ev.note?.(n));
  const images = train.dataset.images;
  const budget = run.cacheBytes ?? Math.min(8 * 2 ** 30, totalmem() / 4);
  const store = new PixelStore(images, pipelineFor(src.preprocess), size, budget);
  if (!store.cached) ev.note?.(`${images.length} images do not fit the ${(budget / 2 ** 20).toFixed(0)} MiB cache: decoding them per batch`);
  await store.fill((d, t) => ev.prepare?.('decoding training images', d, t));
  const reported = new Set<number>();
  const reportFailures = () => {
    const fresh = store.failures.filter((f) => !reported.has(f.index));
    fresh.forEach((f) => reported.add(f.index));
    if (fresh.length) ev.note?.(`skipping ${fresh.length} unreadable image(s) and their captions:\n${fresh.slice(0, 20).map((f) => `  ${f.error}`).join('\n')}${fresh.length > 20 ? `\n  … and ${fresh.length - 20} more` : ''}`);
  };
  reportFailures();
  const samples = train.dataset.texts.map((t) => ({ image: t.image, ids: src.tokenizer.encode(t.text) }));
  // --captions sample: the epoch's units are images; each draws one of its pairs.
  const byImage: number[][] = [];
  samples.forEach((p, k) => (byImage[p.image] ??= []).push(k));
  const units = setup.captions === 'sample' ? byImage.filter(Boolean) : samples.map((_, k) => [k]);
  const n = units.length;
  const batchSize = Math.min(setup.batchSize, n);
  const unit = setup.captions === 'sample' ? 'images' : 'pairs';
  if (n < 2) throw new Error(`${setup.data}: ${n} image–caption ${unit}; contrastive training needs at least 2`);
  if (batchSize < setup.batchSize) ev.note?.(`only ${n} ${unit}: batch size ${batchSize} instead of ${setup.batchSize}`);
  const stepsPerEpoch = Math.floor(n / batchSize);
  // As open_clip (drop_last): every step contrasts a full batch; the order changes every epoch.
  if (n % batchSize) ev.note?.(`${n % batchSize} of the ${n} ${unit} fall outside the last full batch of each epoch and are left out of that epoch (different ones each epoch)`);
  const fp = fingerprint(train.format, train.dataset);
  if (saved && (saved.data.fingerprint !== fp || saved.data.samples !== n)) throw new Error(`${setup.data} changed since the run started (other pairs or captions): cannot resume exactly`);
  const steps: StepRecord[] = saved ? readStepLog(out, saved.step) : [];
  const schedule: CosineSchedule = saved?.schedule ?? { baseLr: setup.lr, warmup: setup.warmup, total: setup.epochs * stepsPerEpoch };

  const valData = setup.val ? await readPairs(setup.val, setup.valFormat) : undefined;
  valData?.notes.forEach((m) => ev.note?.(m));
  const validator = valData ? new Validator(valData.dataset, budget, run.threads) : undefined;

  const trainer = await ClipTrainer.create(src.config, src.weights, {
    adamw: { betas: setup.betas, eps: setup.eps, weightDecay: setup.weightDecay, maxGradNorm: setup.gradClip },
    freeze: setup.freeze, loss: setup.loss ?? src.loss, towers: src.towers,
    threads: run.threads, memory: run.memory,
  });
  try {
    if (saved) trainer.loadState(join(latest!.dir, OPTIMIZER_FILE));
    const unread = src.weightsPath ? unreadTensors(src.weightsPath, trainer.params) : new Map<string, RawTensor>();

    let step = saved?.step ?? 0;
    let acc = saved ? { ...saved.epochLoss } : { sum: 0, count: 0, seconds: 0, samples: 0 };
    let lastLoss = saved?.lastLoss ?? null;
    const history: EpochRecord[] = saved ? [...saved.history] : [];
    const stateAt = (epoch: number, batch: number): TrainState => ({
      format: STATE_FORMAT, version: 1, step, epoch, batch, lastLoss, epochLoss: { ...acc },
      setup: setup as unknown as Record<string, unknown>, threads: run.threads ?? null,
      data: { samples: n, fingerprint: fp, stepsPerEpoch, batchSize },
      schedule, rng: { algorithm: 'xoshiro128**', seed: setup.seed, epochOrderStream: '1000 + epoch' },
      preprocess: src.preprocess, tokenizer: { mode: src.tokenizerMode, contextLength: src.tokenizer.contextLength },
      history: [...history],
    });
    const save = async (epoch: number, batch: number, record?: EpochRecord) => {
      const dir = await commitCheckpoint(out, step, (d) => {
        writeTrainedModel(d, trainer, src, unread);
        writeOptimizerState(join(d, OPTIMIZER_FILE), trainer.state, trainer.params);
      }, async (d) => {
        if (record && validator) {
          const report = await validator.run(d, ev.prepare);
          if (report.failed.length && !history.some((h) => h.val)) ev.note?.(`validation: ${report.failed.length} unreadable image(s) left out:\n${report.failed.slice(0, 20).map((f) => `  ${f.error}`).join('\n')}`);
          record.val = summarize(report);
        }
        if (record) history.push(record);
        return stateAt(epoch, batch);
      }, keep);
      if (record) writeFileAtomic(join(out, LOG_FILE), history.map((h) => JSON.stringify(h)).join('\n') + '\n');
      writeFileAtomic(join(out, STEP_LOG_FILE), steps.map((r) => JSON.stringify(r)).join('\n') + '\n');
      ev.saved?.(dir, step);
      return dir;
    };

    const crop: CropRange = { ...DEFAULT_CROP, ...(setup.cropScale ? { scale: setup.cropScale } : {}) };
    const makeBatch = async (order: Uint32Array, e: number, b: number): Promise<TrainBatch | undefined> => {
      const pick = Array.from(order.subarray(b * batchSize, (b + 1) * batchSize));
      const { pixels, kept } = await store.gather(pick.map((k) => samples[k]!.image));
      if (kept.length < 2) return undefined;
      augmentBatch(pixels, kept.length, size, setup.augment ?? 'none', new Rng(setup.seed, STREAM.augment(e, b)), src.preprocess, crop);
      const tb = src.tokenizer.pad(kept.map((k) => samples[pick[k]!]!.ids), { pad: src.textPadding });
      return { pixelValues: pixels, inputIds: tb.inputIds, attentionMask: tb.attentionMask, n: kept.length, seqLen: tb.length, eot: tb.eotIndex };
    };

    const recent: { t: number; samples: number }[] = [];
    for (let e = saved?.epoch ?? 0; e < setup.epochs; e++) {
      const unitOrder = permutation(n, new Rng(setup.seed, STREAM.epoch(e)));
      const pickRng = new Rng(setup.seed, STREAM.captions(e));
      const order = setup.captions === 'sample' ? unitOrder.map((u) => { const c = units[u]!; return c[pickRng.below(c.length)]!; }) : unitOrder;
      const first = saved && e === saved.epoch ? saved.batch : 0;
      let next = first < stepsPerEpoch ? makeBatch(order, e, first) : undefined;
      let lr = 0;
      for (let b = first; b < stepsPerEpoch; b++) {
        const t0 = performance.now();
        const batch = await next!;
        // Decode the next batch while ORT runs this one.
        next = b + 1 < stepsPerEpoch ? makeBatch(order, e, b + 1) : undefined;
        lr = cosineLr(schedule, step);
        let loss: number | null = null;
        if (batch) {
          loss = (await trainer.step(batch, lr)).loss;
          acc.sum += loss;
          acc.count++;
          acc.samples += batch.n;
          lastLoss = loss;
        } else {
          ev.note?.(`step ${step + 1}: fewer than 2 readable images in the batch, skipped`);
        }
        reportFailures();
        step++;
        const dt = (performance.now() - t0) / 1000;
        acc.seconds += dt;
        recent.push({ t: dt, samples: batch?.n ?? 0 });
        if (recent.length > 10) recent.shift();
        const rate = recent.reduce((s, r) => s + r.samples, 0) / Math.max(1e-9, recent.reduce((s, r) => s + r.t, 0));
        steps.push({ step, epoch: e + 1, loss, lr, samplesPerSec: Math.round(rate * 100) / 100 });
        ev.step?.({ step, total: schedule.total, epoch: e + 1, epochs: setup.epochs, batch: b + 1, batches: stepsPerEpoch, loss, lr, samplesPerSec: rate });
        if (b < stepsPerEpoch - 1 && run.saveEvery && step % run.saveEvery === 0) await save(e, b + 1);
      }
      const record: EpochRecord = {
        type: 'epoch', epoch: e + 1, step, trainLoss: acc.count ? acc.sum / acc.count : null, lr,
        samples: acc.samples, seconds: acc.seconds, samplesPerSec: acc.samples / Math.max(1e-9, acc.seconds),
        checkpoint: checkpointDir(out, step),
      };
      acc = { sum: 0, count: 0, seconds: 0, samples: 0 };
      await save(e + 1, 0, record);
      ev.epoch?.(record);
    }

    // The final model at the top of OUT: a copy of the last checkpoint's model files.
    const last = listCheckpoints(out).at(-1)!;
    for (const f of MODEL_FILES(src)) copyFileSync(join(last.dir, f), join(out, f));
    return { out, steps: step, finalLoss: lastLoss, history, params: trainer.params, skippedImages: store.failures };
  } finally {
    await trainer.release();
  }
}
