// Evaluation metrics on score matrices: top-k accuracy, per-class accuracy, confusion matrix, recall@k.
//
// Ranking rule, used everywhere here so results never depend on sort internals:
//   item a ranks before item b when score(a) > score(b), or the scores are equal and a's index is lower
//   (a stable sort by descending score). NaN scores rank after every number.
// A k larger than the pool is clamped to the pool size (top-k of 3 items with k = 5 is all 3 items).

export type Scores = ArrayLike<number>;

/** Scores comparable with `>`: NaN becomes -Infinity, then ties fall to the index rule. */
const key = (x: number): number => (Number.isNaN(x) ? -Infinity : x);

function checkIndex(scores: Scores, i: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= scores.length) {
    throw new RangeError(`${what} ${i} is outside the pool of ${scores.length}`);
  }
}

/** 0-based rank of item `i` among `scores` under the ranking rule (0 = ranked first). */
export function rankOf(scores: Scores, i: number): number {
  checkIndex(scores, i, 'index');
  const s = key(scores[i]!);
  let rank = 0;
  for (let j = 0; j < scores.length; j++) {
    const t = key(scores[j]!);
    if (t > s || (t === s && j < i)) rank++;
  }
  return rank;
}

/** Best (lowest) rank of any of `positives`; a query is a hit at k when this is < k. */
export function bestRank(scores: Scores, positives: readonly number[]): number {
  if (!positives.length) throw new Error('a query needs at least one positive');
  let best = Infinity;
  for (const p of positives) best = Math.min(best, rankOf(scores, p));
  return best;
}

/** Indices of the k best items, best first (k clamped to the pool size). */
export function topK(scores: Scores, k: number): number[] {
  const kk = clampK(k, scores.length);
  if (kk > 32) {
    const idx = Array.from({ length: scores.length }, (_, i) => i);
    // Array.prototype.sort is stable (ES2019): equal keys keep index order.
    idx.sort((a, b) => {
      const x = key(scores[a]!);
      const y = key(scores[b]!);
      return x > y ? -1 : x < y ? 1 : 0;
    });
    return idx.slice(0, kk);
  }
  // Small k: insertion into a sorted list of the best so far (O(n·k), no full sort per row).
  // Strict `>` keeps an earlier index ahead of a later equal score.
  const best: number[] = [];
  const bestKey: number[] = [];
  for (let j = 0; j < scores.length; j++) {
    const s = key(scores[j]!);
    if (best.length === kk && !(s > bestKey[kk - 1]!)) continue;
    let pos = best.length === kk ? kk - 1 : best.length;
    while (pos > 0 && s > bestKey[pos - 1]!) {
      best[pos] = best[pos - 1]!;
      bestKey[pos] = bestKey[pos - 1]!;
      pos--;
    }
    best[pos] = j;
    bestKey[pos] = s;
  }
  return best;
}

export function clampK(k: number, pool: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  return Math.min(k, pool);
}

/** Fraction of rows whose true label ranks within the top k of that row's scores. */
export function topKAccuracy(logits: readonly Scores[], labels: readonly number[], k: number): number {
  if (labels.length !== logits.length) throw new Error(`${logits.length} rows but ${labels.length} labels`);
  return recallFromRanks(logits.map((row, i) => rankOf(row, labelAt(labels, i, row))), k);
}

function labelAt(labels: readonly number[], i: number, row: Scores): number {
  const y = labels[i];
  if (y === undefined) throw new RangeError(`no label for row ${i} (${labels.length} labels)`);
  checkIndex(row, y, `label of row ${i}:`);
  return y;
}

/**
 * Share of 0-based ranks below k (hits at k); NaN for no queries. A rank is always below its pool size,
 * so an unclamped k behaves as clamped.
 */
export function recallFromRanks(ranks: number[], k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  if (!ranks.length) return NaN;
  return ranks.filter((r) => r < k).length / ranks.length;
}

/** A metric for a report: null where it is undefined (NaN: no queries). */
export const orNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** `R@k` for each k, as reports write them. */
export function recallsAt(ranks: number[], ks: readonly number[]): Record<string, number | null> {
  return Object.fromEntries(ks.map((k) => [`R@${k}`, orNull(recallFromRanks(ranks, k))]));
}

/** Top-1 prediction of each row (ties: lowest index). */
export function argmaxRows(logits: readonly Scores[]): number[] {
  return logits.map((row) => topK(row, 1)[0] ?? -1);
}

/** counts[t][p] = number of samples with true class t predicted as p. */
export function confusionMatrix(truth: readonly number[], predicted: readonly number[], numClasses: number): number[][] {
  if (truth.length !== predicted.length) throw new Error(`${truth.length} labels but ${predicted.length} predictions`);
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  truth.forEach((t, i) => {
    const p = predicted[i]!;
    for (const [what, v] of [['true class', t], ['predicted class', p]] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= numClasses) throw new RangeError(`sample ${i}: ${what} ${v} is not in 0..${numClasses - 1}`);
    }
    m[t]![p]!++;
  });
  return m;
}

export interface ClassAccuracy {
  total: number;
  correct: number;
  /** null when the class has no samples (0/0 is not 0 %). */
  accuracy: number | null;
}

/** Per-class accuracy (recall of each true class) from a confusion matrix. */
export function perClassAccuracy(confusion: readonly (readonly number[])[]): ClassAccuracy[] {
  return confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    const correct = row[c] ?? 0;
    return { total, correct, accuracy: total ? correct / total : null };
  });
}

/** Mean of the per-class accuracies over classes that have samples (balanced accuracy). */
export function meanPerClassAccuracy(perClass: readonly ClassAccuracy[]): number {
  const acc = perClass.flatMap((c) => (c.accuracy === null ? [] : [c.accuracy]));
  return acc.length ? acc.reduce((a, b) => a + b, 0) / acc.length : NaN;
}

export interface Confusion {
  truth: number;
  predicted: number;
  count: number;
}

/** The n largest off-diagonal cells, largest first; ties by true class, then predicted class. */
export function topConfusions(confusion: readonly (readonly number[])[], n: number): Confusion[] {
  const cells: Confusion[] = [];
  confusion.forEach((row, t) => row.forEach((count, p) => {
    if (t !== p && count > 0) cells.push({ truth: t, predicted: p, count });
  }));
  cells.sort((a, b) => b.count - a.count || a.truth - b.truth || a.predicted - b.predicted);
  return cells.slice(0, Math.max(0, n));
}

/**
 * Recall@k for retrieval: query q is a hit at k when ANY of positives[q] ranks within the top k of
 * scores[q] (k clamped to the pool). Returns one recall per k, in the order of `ks`.
 */
export function recallAtK(scores: readonly Scores[], positives: readonly (readonly number[])[], ks: readonly number[]): number[] {
  if (scores.length !== positives.length) throw new Error(`${scores.length} queries but ${positives.length} positive lists`);
  const ranks = scores.map((row, q) => {
    if (!positives[q]!.length) throw new Error(`query ${q} has no positive`);
    return bestRank(row, positives[q]!);
  });
  return ks.map((k) => recallFromRanks(ranks, k));
}

export interface ClassificationSummary {
  /** k used for top-k (requested k clamped to the class count). */
  k: number;
  /** Fractions in [0, 1]: `top1`, `top<k>`, `meanPerClass`; null when nothing was scored. */
  accuracy: Record<string, number | null>;
  perClass: { class: string; total: number; correct: number; accuracy: number | null }[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  topConfusions: { true: string; predicted: string; count: number }[];
  predictions: { input: string; label: string; predicted: string; top: { class: string; logit: number }[] }[];
}

/**
 * Scores a classifier one row of logits at a time (memory O(rows × k)), for every report that shows
 * top-1 / top-k, per-class accuracy and the confusion matrix (zero-shot, linear probe).
 */
export class ClassificationTally {
  readonly k: number;
  private readonly ranks: number[] = [];
  private readonly truth: number[] = [];
  private readonly predicted: number[] = [];
  private readonly predictions: ClassificationSummary['predictions'] = [];

  constructor(readonly classes: readonly string[], k: number, private readonly keepPredictions = true) {
    this.k = clampK(k, classes.length);
  }

  add(logits: Scores, label: number, input: string): void {
    this.ranks.push(rankOf(logits, label));
    const top = topK(logits, this.k);
    this.truth.push(label);
    this.predicted.push(top[0]!);
    if (this.keepPredictions) {
      this.predictions.push({ input, label: this.classes[label]!, predicted: this.classes[top[0]!]!, top: top.map((c) => ({ class: this.classes[c]!, logit: logits[c]! })) });
    }
  }

  /** Top-1 accuracy so far (NaN when empty). */
  get top1(): number {
    return recallFromRanks(this.ranks, 1);
  }

  summary(maxConfusions = 20): ClassificationSummary {
    const confusion = confusionMatrix(this.truth, this.predicted, this.classes.length);
    const perClass = perClassAccuracy(confusion);
    return {
      k: this.k,
      accuracy: {
        top1: orNull(recallFromRanks(this.ranks, 1)),
        [`top${this.k}`]: orNull(recallFromRanks(this.ranks, this.k)),
        meanPerClass: orNull(meanPerClassAccuracy(perClass)),
      },
      perClass: perClass.map((c, i) => ({ class: this.classes[i]!, ...c })),
      confusion,
      topConfusions: topConfusions(confusion, maxConfusions)
        .map((c) => ({ true: this.classes[c.truth]!, predicted: this.classes[c.predicted]!, count: c.count })),
      predictions: this.predictions,
    };
  }
}
