// Metrics on small hand-computed cases: ties, several positives per query, k larger than the pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  argmaxRows, bestRank, confusionMatrix, meanPerClassAccuracy, perClassAccuracy, rankOf, recallAtK, topConfusions, topK, topKAccuracy,
} from '../src/tasks/metrics.js';

test('ranking: higher score first, ties by lower index, NaN last', () => {
  const s = [0.5, 0.9, 0.5, 0.1];
  assert.deepEqual([0, 1, 2, 3].map((i) => rankOf(s, i)), [1, 0, 2, 3]);
  assert.deepEqual(topK(s, 3), [1, 0, 2]);
  assert.deepEqual(topK(s, 10), [1, 0, 2, 3], 'k larger than the pool is clamped');
  const withNaN = [NaN, 0.2, -Infinity];
  assert.deepEqual(topK(withNaN, 3), [1, 0, 2]);
  assert.equal(rankOf(withNaN, 0), 1);
  assert.equal(rankOf(withNaN, 2), 2);
  assert.deepEqual(argmaxRows([[0.3, 0.3, 0.3], [0, 2, 2]]), [0, 1]);
  assert.throws(() => rankOf(s, 4), /index 4 is outside the pool of 4/);
  assert.throws(() => topK(s, 0), /positive integer/);
});

test('top-k accuracy with ties and k beyond the class count', () => {
  const logits = [
    [0.1, 0.7, 0.2], // label 1: rank 0
    [0.3, 0.3, 0.3], // label 2: all tied, index 2 ranks last (rank 2)
    [0.9, 0.1, 0.5], // label 2: rank 1
    [0.2, 0.4, 0.4], // label 2: tied with class 1, which wins on index (rank 1)
  ];
  const labels = [1, 2, 2, 2];
  assert.equal(topKAccuracy(logits, labels, 1), 1 / 4);
  assert.equal(topKAccuracy(logits, labels, 2), 3 / 4);
  assert.equal(topKAccuracy(logits, labels, 3), 1);
  assert.equal(topKAccuracy(logits, labels, 5), 1);
  assert.ok(Number.isNaN(topKAccuracy([], [], 1)), 'no rows: NaN, not 0');
  assert.throws(() => topKAccuracy(logits, [1, 2, 2], 1), /4 rows but 3 labels/);
  assert.throws(() => topKAccuracy(logits, [1, 2, 3, 0], 1), /label of row 2: 3 is outside the pool of 3/);
});

test('confusion matrix, per-class accuracy and top confusions', () => {
  const truth = [0, 0, 1, 2, 2, 2, 1];
  const pred = [0, 1, 1, 2, 0, 0, 3];
  const m = confusionMatrix(truth, pred, 4);
  assert.deepEqual(m, [[1, 1, 0, 0], [0, 1, 0, 1], [2, 0, 1, 0], [0, 0, 0, 0]]);
  const pc = perClassAccuracy(m);
  assert.deepEqual(pc, [
    { total: 2, correct: 1, accuracy: 0.5 },
    { total: 2, correct: 1, accuracy: 0.5 },
    { total: 3, correct: 1, accuracy: 1 / 3 },
    { total: 0, correct: 0, accuracy: null },
  ]);
  assert.equal(meanPerClassAccuracy(pc), (0.5 + 0.5 + 1 / 3) / 3, 'classes with no samples are left out');
  // (2->0) x2 first; the two single confusions tie and go by true class.
  assert.deepEqual(topConfusions(m, 10), [
    { truth: 2, predicted: 0, count: 2 }, { truth: 0, predicted: 1, count: 1 }, { truth: 1, predicted: 3, count: 1 },
  ]);
  assert.deepEqual(topConfusions(m, 1), [{ truth: 2, predicted: 0, count: 2 }]);
  assert.throws(() => confusionMatrix([0, 4], [0, 0], 4), /sample 1: true class 4 is not in 0..3/);
  assert.throws(() => confusionMatrix([0], [0, 1], 4), /1 labels but 2 predictions/);
});

test('recall@k: a query hits when any positive is in its top k; k beyond the pool is clamped', () => {
  const scores = [
    [0.1, 0.9, 0.8, 0.3, 0.2], // positives 3 (rank 2) and 4 (rank 3): best rank 2
    [0.5, 0.5, 0.5, 0.5, 0.5], // all tied: positive 2 ranks 2, positive 4 ranks 4
    [1, 0, 0, 0, 0], // positive 0: rank 0
  ];
  const positives = [[3, 4], [4, 2], [0]];
  assert.deepEqual(scores.map((s, q) => bestRank(s, positives[q]!)), [2, 2, 0]);
  assert.deepEqual(recallAtK(scores, positives, [1, 2, 3, 10]), [1 / 3, 1 / 3, 1, 1]);
  // Only the best positive counts: listing the worse one too changes nothing.
  assert.deepEqual(recallAtK([scores[0]!], [[3]], [3]), recallAtK([scores[0]!], [[3, 4]], [3]));
  assert.throws(() => recallAtK(scores, [[3], [], [0]], [1]), /query 1 has no positive/);
  assert.throws(() => recallAtK(scores, positives, [0]), /positive integer/);
  assert.throws(() => recallAtK(scores, [[9], [0], [0]], [1]), /index 9 is outside the pool of 5/);
});

test('top-k: the small-k selection and the full sort agree, ties included', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  // Few distinct values, so most scores tie; a NaN too.
  const s = Array.from({ length: 200 }, () => Math.floor(rand() * 6) / 6);
  s[17] = NaN;
  const reference = s.map((x, i) => ({ x: Number.isNaN(x) ? -Infinity : x, i })).sort((a, b) => b.x - a.x || a.i - b.i).map((e) => e.i);
  for (const k of [1, 5, 32, 33, 200, 500]) assert.deepEqual(topK(s, k), reference.slice(0, k), `k = ${k}`);
  assert.deepEqual(reference.map((i) => rankOf(s, i)), reference.map((_, r) => r));
});
