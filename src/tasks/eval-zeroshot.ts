// Zero-shot classification accuracy on a labeled image set, with prompt-template ensembling (CLIP paper):
// each class embedding is the renormalized mean of its L2-normalized template embeddings, and
// logits = logitScale * <image, class>.
import type { EncodeOptions, ImageResult } from '../runtime/clip-model.js';
import type { ImageInput } from '../runtime/preprocess.js';
import type { LabeledDataset } from './datasets.js';
import { classEmbeddings } from './zeroshot.js';
export { classEmbeddings };
import { ClassificationTally, clampK } from './metrics.js';
import { forEachDotRow } from './score-matrix.js';

/** What evaluation needs from a model (ClipModel satisfies it). */
export interface EvalModel {
  readonly logitScale: number;
  encodeImages(inputs: ImageInput[], opts?: EncodeOptions): Promise<ImageResult[]>;
  encodeTexts(texts: string[], opts?: EncodeOptions): Promise<Float32Array[]>;
}

export type StageProgress = (stage: 'texts' | 'images', done: number, total: number) => void;

/**
 * Map the dataset's label names onto a prompts file's class list. Names match exactly, then ignoring
 * case and `_` vs space; when every label is an integer and none is a class name, labels are indices
 * into the list (numbered class folders). Unmatched labels are an error naming them.
 */
export function mapLabelsToClasses(labels: string[], classes: string[]): number[] {
  const exact = new Map(classes.map((c, i) => [c, i]));
  const loose = (s: string) => s.toLowerCase().replaceAll('_', ' ').trim();
  const fuzzy = new Map<string, number>();
  classes.forEach((c, i) => { if (!fuzzy.has(loose(c))) fuzzy.set(loose(c), i); });
  if (labels.every((l) => /^\d+$/.test(l) && !exact.has(l))) {
    const bad = labels.filter((l) => Number(l) >= classes.length);
    if (bad.length) throw new Error(`label indices ${bad.join(', ')} are out of range for ${classes.length} classes`);
    return labels.map(Number);
  }
  const out = labels.map((l) => exact.get(l) ?? fuzzy.get(loose(l)) ?? -1);
  const missing = labels.filter((_, i) => out[i]! < 0);
  if (missing.length) throw new Error(`dataset labels not among the prompt set's classes: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? `, … (${missing.length})` : ''}`);
  return out;
}

/** Re-express a dataset over another class list (e.g. a prompts file's), keeping every sample. */
export function withClasses(ds: LabeledDataset, classes: string[]): LabeledDataset {
  const map = mapLabelsToClasses(ds.classes, classes);
  return { classes, samples: ds.samples.map((s) => ({ input: s.input, label: map[s.label]! })) };
}

export interface ZeroShotOptions {
  /** Templates with `{}` (default `['{}']`: the class name itself). Ignored with `classEmbeddings`. */
  templates?: string[];
  /** Precomputed, normalized class embeddings (one per class); skips the text tower. */
  classEmbeddings?: Float32Array[];
  /** k of top-k accuracy (default 5, clamped to the number of classes). */
  k?: number;
  /** Off-diagonal confusion cells listed in `topConfusions` (default 20). */
  maxConfusions?: number;
  batchSize?: number;
  onProgress?: StageProgress;
}

export interface ZeroShotReport {
  classes: string[];
  templates: string[];
  /** k used for top-k (requested k clamped to the class count). */
  k: number;
  counts: { images: number; evaluated: number; failed: number };
  /** Fractions in [0, 1]: `top1`, `top<k>`, `meanPerClass`; null when no image could be evaluated. */
  accuracy: Record<string, number | null>;
  perClass: { class: string; total: number; correct: number; accuracy: number | null }[];
  /** confusion[true][predicted] counts over evaluated images. */
  confusion: number[][];
  topConfusions: { true: string; predicted: string; count: number }[];
  predictions: { input: string; label: string; predicted: string; top: { class: string; logit: number }[] }[];
  failed: { input: string; error: string }[];
}

export async function evalZeroShot(model: EvalModel, dataset: LabeledDataset, opts: ZeroShotOptions = {}): Promise<ZeroShotReport> {
  const { classes, samples } = dataset;
  if (!classes.length) throw new Error('no classes to classify into');
  const templates = opts.templates ?? ['{}'];
  const k = clampK(opts.k ?? 5, classes.length);
  const weights = opts.classEmbeddings ?? await classEmbeddings(model, classes, templates, {
    batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('texts', d, t),
  });
  if (weights.length !== classes.length) throw new Error(`${weights.length} class embeddings for ${classes.length} classes`);

  const results = await model.encodeImages(samples.map((s) => s.input), {
    normalize: true, batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('images', d, t),
  });
  const failed: ZeroShotReport['failed'] = [];
  const embs: Float32Array[] = [];
  const labels: number[] = [];
  const inputs: string[] = [];
  results.forEach((r, i) => {
    if (!r.embedding) { failed.push({ input: r.input, error: r.error ?? 'no embedding' }); return; }
    embs.push(r.embedding);
    labels.push(samples[i]!.label);
    inputs.push(r.input);
  });
  // Each row of logits is reduced at once (rank of the true class, top k), so memory stays O(images × k).
  const tally = new ClassificationTally(classes, k);
  await forEachDotRow(embs, weights, (cos, i) => {
    tally.add(cos.map((x) => model.logitScale * x), labels[i]!, inputs[i]!);
  });
  const { k: _k, ...scored } = tally.summary(opts.maxConfusions ?? 20);
  return {
    classes,
    templates: opts.classEmbeddings ? [] : templates,
    k,
    counts: { images: samples.length, evaluated: embs.length, failed: failed.length },
    ...scored,
    failed,
  };
}
