// The training bench's emoji-clip ratio comes from alternating ours/torch rounds, not from one pair of runs.
import assert from 'node:assert/strict';
import test from 'node:test';
import { renderTrainBench, roundSummary, type TrainBenchResult, type TrainResult } from '../bench/train.js';

const row = (side: 'ours' | 'torch', round: number, samplesPerSec: number): TrainResult => ({
  side, model: 'emoji', batch: 128, tokens: 16, threads: side === 'ours' ? 2 : 1, warmupSteps: 3, steps: 10,
  sPerStep: 128 / samplesPerSec, samplesPerSec, peakRssMB: 1000, loadAvg: 1, round,
});

test('roundSummary: medians of each side, their ratio, and each complete round\'s own ratio', () => {
  const rows: TrainBenchResult['rows'] = [
    row('ours', 1, 150), row('torch', 1, 100),
    row('ours', 2, 120), row('torch', 2, 90),
    row('ours', 3, 160), row('torch', 3, 100),
    // A round whose torch side failed counts for neither side.
    row('ours', 4, 10), { side: 'torch', model: 'emoji', batch: 128, round: 4, error: 'exited with 1' },
  ];
  const s = roundSummary(rows)!;
  assert.equal(s.rounds, 3);
  assert.equal(s.ours, 150);
  assert.equal(s.torch, 100);
  assert.equal(s.ratio, 1.5);
  assert.deepEqual(s.perRound.map((x) => x.toFixed(3)), ['1.500', '1.333', '1.600']);
  assert.equal(roundSummary(rows.filter((x) => x.side === 'ours')), undefined);

  const text = renderTrainBench({ cpuModel: 'cpu', cores: 2, loadBefore: [0, 0, 0], torch: '1.13', flopsNote: 'note', rows });
  assert.match(text, /over 3 alternating rounds: ours 150\.0 samples\/s, PyTorch 100\.0 \(medians\): 1\.50x/);
  // Each ours row is compared with the torch row of its own round.
  assert.match(text, /ours r2 +120\.00 .* 1\.33x/);
});
