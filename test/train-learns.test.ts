// Training from scratch learns: a small CLIP (real CLIP tokenizer, 32 px ViT) trained for a few hundred
// steps on rendered colored shapes ("a red circle", ...) retrieves held-out renders far above chance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shapeSet, type ShapeSample } from '../src/train/synthetic.js';
import { trainClip } from '../src/train/run.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

const CONFIG = {
  projection_dim: 32,
  text_config: { hidden_size: 32, intermediate_size: 128, num_attention_heads: 4, num_hidden_layers: 2, max_position_embeddings: 77 },
  vision_config: { hidden_size: 64, intermediate_size: 256, num_attention_heads: 4, num_hidden_layers: 2, image_size: 32, patch_size: 8 },
};

/** A caption folder: NNNN.png + NNNN.txt. */
function writeFolder(dir: string, samples: ShapeSample[]): void {
  mkdirSync(dir, { recursive: true });
  samples.forEach((s, i) => {
    const stem = join(dir, String(i).padStart(4, '0'));
    writeFileSync(`${stem}.png`, s.png);
    writeFileSync(`${stem}.txt`, s.caption + '\n');
  });
}

test('a small CLIP trained from scratch on rendered shapes retrieves held-out renders far above chance', { skip: SKIP_FIXTURES }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-learns-'));
  try {
    // 6 colors x 4 shapes = 24 captions; 40 renders each to train on, one fresh render each to test.
    writeFolder(join(dir, 'train'), await shapeSet(40, 32, 1));
    const val = await shapeSet(1, 32, 2);
    writeFolder(join(dir, 'val'), val);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
    const t0 = performance.now();
    const res = await trainClip({
      data: join(dir, 'train'), val: join(dir, 'val'), config: join(dir, 'config.json'), tokenizer: fixture('common', 'tokenizer-clip'),
      epochs: 8, batchSize: 32, lr: 2e-3, warmup: 30, weightDecay: 0.1, seed: 0,
    }, { out: join(dir, 'out') });
    const secs = (performance.now() - t0) / 1000;
    const first = res.history[0]!;
    const last = res.history.at(-1)!;
    const chance = 1 / val.length;
    const r1 = { i2t: last.val!.imageToText['R@1']!, t2i: last.val!.textToImage['R@1']! };
    t.diagnostic(`${res.steps} steps in ${secs.toFixed(1)} s (${last.samplesPerSec.toFixed(0)} samples/s); train loss ${first.trainLoss!.toFixed(3)} -> ${last.trainLoss!.toFixed(3)}; `
      + `held-out R@1 image→text ${(r1.i2t * 100).toFixed(1)}%, text→image ${(r1.t2i * 100).toFixed(1)}% (chance ${(chance * 100).toFixed(1)}%); mean recall ${(last.val!.mean! * 100).toFixed(1)}%`);
    assert.ok(res.steps >= 200, `${res.steps} steps`);
    assert.ok(last.trainLoss! < first.trainLoss! - 1, `train loss ${first.trainLoss} -> ${last.trainLoss}`);
    assert.ok(r1.i2t >= 3 * chance && r1.t2i >= 3 * chance, `R@1 ${JSON.stringify(r1)} vs chance ${chance}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
