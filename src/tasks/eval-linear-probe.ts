// `clip eval linear-probe`: embed a labeled TRAIN and TEST set (cached, resumable), fit the probe on TRAIN,
// score it on TEST next to zero-shot. With `shots`, K images per class are drawn from TRAIN for each of
// several seeds, and the report gives the mean ± standard deviation over seeds.
import type { ClipModel } from '../runtime/clip-model.js';
import { Rng, permutation } from './rng.js';
import type { LabeledDataset } from './datasets.js';
import { withClasses } from './eval-zeroshot.js';
import { labeledFeatures, type LabeledFeatures } from './features.js';
import { fitLinearProbe, headLogits, takeRows, zeroShotHead, type Backend, type LinearHead, type LinearProbeFit } from './linear-probe.js';
import { ClassificationTally, type ClassificationSummary } from './metrics.js';
import { classEmbeddings } from './zeroshot.js';

export interface LinearProbeEvalOptions {
  /** Prompt templates of the zero-shot head (default: the class name itself). */
  templates?: string[];
  /** k of top-k accuracy (default 5). */
  k?: number;
  /** K images per class drawn from TRAIN (few-shot); default: all of TRAIN. */
  shots?: number;
  /** Draws of the few-shot sample (default 5). */
  seeds?: number;
  C?: number;
  blend?: 'auto' | 'none' | number;
  featuresDir?: string;
  modelKey: Record<string, unknown>;
  batchSize?: number;
  backend?: Backend;
  onProgress?: (stage: 'train images' | 'test images' | 'texts', done: number, total: number) => void;
  onLog?: (message: string) => void;
}

export interface MeanStd { mean: number; std: number; values: number[] }

export interface LinearProbeReport {
  classes: string[];
  templates: string[];
  k: number;
  counts: { train: number; test: number; failedTrain: number; failedTest: number };
  features: { train: string; test: string; dim: number; reused: { train: number; test: number } };
  /** Zero-shot on TEST (same features, class-name prompts). */
  zeroShot: { top1: number | null; topK: number | null };
  /** Full-TRAIN probe: the plain linear head and the head used (blended when blending chose α < 1). */
  probe?: {
    plain: { top1: number | null; topK: number | null; C: number };
    head: { top1: number | null; topK: number | null; C: number; alpha: number };
    selection: LinearProbeFit['selection'];
    optimizer: LinearProbeFit['optimizer'];
    fitSeconds: number;
  };
  /** Few-shot: per seed and aggregated over seeds. */
  fewShot?: {
    shots: number;
    seeds: { seed: number; plain: number; head: number; C: number; plainC: number; alpha: number; scheme: string }[];
    plain: MeanStd;
    head: MeanStd;
  };
  /** Top-1/top-k, per class and confusion of the head used (few-shot: seed 0's). */
  detail: ClassificationSummary;
  failed: { input: string; error: string }[];
  /** The head `detail` describes, to save with --save-head. */
  head: LinearHead;
  fit: Record<string, unknown>;
}

function meanStd(values: number[]): MeanStd {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, std, values };
}

function score(head: LinearHead, f: LabeledFeatures, k: number, keep = false): ClassificationTally {
  const t = new ClassificationTally(head.classes, k, keep);
  for (let i = 0; i < f.x.rows; i++) t.add(headLogits(head, f.x.data.subarray(i * f.x.dim, (i + 1) * f.x.dim)), f.labels[i]!, f.inputs[i]!);
  return t;
}

const accuracies = (t: ClassificationTally) => {
  const s = t.summary(0);
  return { top1: s.accuracy.top1 ?? null, topK: s.accuracy[`top${t.k}`] ?? null };
};

/** K rows per class, chosen by `seed`; every class must have K. */
export function sampleShots(labels: readonly number[], classes: readonly string[], shots: number, seed: number): number[] {
  const byClass: number[][] = classes.map(() => []);
  labels.forEach((y, i) => byClass[y]!.push(i));
  const rng = new Rng(seed, 0x73686f74);
  return byClass.flatMap((rows, c) => {
    if (rows.length < shots) throw new Error(`class ${classes[c]} has ${rows.length} training images, fewer than --shots ${shots}`);
    return Array.from(permutation(rows.length, rng).subarray(0, shots), (p) => rows[p]!).sort((a, b) => a - b);
  });
}

export async function evalLinearProbe(model: ClipModel, trainSet: LabeledDataset, testSet: LabeledDataset, opts: LinearProbeEvalOptions): Promise<LinearProbeReport> {
  const classes = trainSet.classes;
  const test = withClasses(testSet, classes);
  const k = opts.k ?? 5;
  const log = opts.onLog ?? (() => {});
  const templates = opts.templates ?? ['{}'];
  const common = { dir: opts.featuresDir, modelKey: opts.modelKey, batchSize: opts.batchSize };
  const train = await labeledFeatures(model, trainSet, { ...common, onProgress: (d, t) => opts.onProgress?.('train images', d, t) });
  const testF = await labeledFeatures(model, test, { ...common, onProgress: (d, t) => opts.onProgress?.('test images', d, t) });
  if (!train.x.rows) throw new Error('no training image could be embedded');
  if (!testF.x.rows) throw new Error('no test image could be embedded');
  const texts = await classEmbeddings(model, classes, templates, { batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('texts', d, t) });
  const prior = { weights: texts, logitScale: model.logitScale };
  const zs = zeroShotHead(prior, classes);
  const zsTally = score(zs, testF, k);
  const base = {
    classes, templates, k: zsTally.k,
    counts: { train: train.x.rows, test: testF.x.rows, failedTrain: train.failed.length, failedTest: testF.failed.length },
    features: { train: train.file, test: testF.file, dim: train.x.dim, reused: { train: train.reused, test: testF.reused } },
    zeroShot: accuracies(zsTally),
    failed: [...train.failed, ...testF.failed],
  };
  const fitOpts = { classes, zeroShot: prior, blend: opts.blend ?? 'auto', C: opts.C, backend: opts.backend };

  if (!opts.shots) {
    const fit = await fitLinearProbe(train.x, train.labels, { ...fitOpts, onProgress: log });
    const detail = score(fit.head, testF, k, true);
    return {
      ...base,
      probe: {
        plain: { ...accuracies(score(fit.plain, testF, k)), C: fit.plainC },
        head: { ...accuracies(detail), C: fit.C, alpha: fit.alpha },
        selection: fit.selection, optimizer: fit.optimizer, fitSeconds: fit.seconds,
      },
      detail: detail.summary(),
      head: fit.head,
      fit: { C: fit.C, alpha: fit.alpha, plainC: fit.plainC, trainImages: train.x.rows, templates, selection: { ...fit.selection, sweep: undefined } },
    };
  }

  const seeds: NonNullable<LinearProbeReport['fewShot']>['seeds'] = [];
  let first: { fit: LinearProbeFit; tally: ClassificationTally } | undefined;
  for (let seed = 0; seed < (opts.seeds ?? 5); seed++) {
    const rows = sampleShots(train.labels, classes, opts.shots, seed);
    const fit = await fitLinearProbe(takeRows(train.x, rows), rows.map((r) => train.labels[r]!), { ...fitOpts, seed });
    const tally = score(fit.head, testF, k, seed === 0);
    first ??= { fit, tally };
    seeds.push({
      seed, plain: score(fit.plain, testF, k).top1, head: tally.top1,
      C: fit.C, plainC: fit.plainC, alpha: fit.alpha, scheme: fit.selection.scheme,
    });
    log(`${opts.shots}-shot seed ${seed}: plain ${(seeds.at(-1)!.plain * 100).toFixed(2)}%, blended ${(tally.top1 * 100).toFixed(2)}% (C=${fit.C.toExponential(1)}, α=${fit.alpha})`);
  }
  return {
    ...base,
    fewShot: { shots: opts.shots, seeds, plain: meanStd(seeds.map((s) => s.plain)), head: meanStd(seeds.map((s) => s.head)) },
    detail: first!.tally.summary(),
    head: first!.fit.head,
    fit: { C: first!.fit.C, alpha: first!.fit.alpha, shots: opts.shots, seed: 0, templates, selection: { ...first!.fit.selection, sweep: undefined } },
  };
}
