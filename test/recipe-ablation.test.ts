// The ablation's variants are one change each from the recipe, and its rows read the benchmark's numbers.
import assert from 'node:assert/strict';
import test from 'node:test';
import { EMOJI_RECIPE } from '../src/recipes/emoji-clip.js';
import { ABLATION_BASE, ablationRow, ablationTable, VARIANTS } from '../src/recipes/emoji-ablation.js';
import type { EmojiBenchmarkReport } from '../src/data/emoji-benchmark.js';

test('variants: unique names, base is the v1 recipe, every other one differs and none mutates either recipe', () => {
  const recipe = JSON.stringify(EMOJI_RECIPE);
  const base = JSON.stringify(ABLATION_BASE);
  assert.deepEqual([ABLATION_BASE.train.augment, ABLATION_BASE.data.icons, ABLATION_BASE.config.vision_config.image_size], ['crop+style', 0, 48]);
  assert.equal(new Set(VARIANTS.map((v) => v.name)).size, VARIANTS.length);
  for (const v of VARIANTS) {
    const r = v.apply(ABLATION_BASE);
    if (v.name === 'base') assert.equal(JSON.stringify(r), base);
    else assert.notEqual(JSON.stringify(r), base, v.name);
  }
  assert.equal(JSON.stringify(EMOJI_RECIPE), recipe);
  assert.equal(JSON.stringify(ABLATION_BASE), base);
});

test('a row takes the pooled unseen-style scores by names, Tux Paint text→image R@5 and the seen label top-1', () => {
  const zs = (granularity: string, method: string, top1: number, top5: number) => ({ granularity, method, pooled: { images: 10, top1, top5 }, seen: { images: 10, top1: top1 + 0.5, top5 } });
  const report = {
    zeroshot: { results: [zs('group', 'members', 0.9, 0.9), zs('group', 'names', 0.3, 0.6), zs('subgroup', 'names', 0.1, 0.2), zs('label', 'names', 0.05, 0.25)] },
    tuxpaint: { textToImage: { 'R@1': 0.01, 'R@5': 0.04, 'R@10': 0.08 } },
  } as unknown as EmojiBenchmarkReport;
  const row = ablationRow(VARIANTS[1]!, 17, 60000, 600, report);
  assert.deepEqual([row.labelTop5, row.subgroupTop1, row.groupTop1, row.tuxT2iR5, row.seenLabelTop1, row.samplesPerSec], [0.25, 0.1, 0.3, 0.04, 0.55, 100]);
  const md = ablationTable([row]);
  assert.match(md, /\| 25\.00% +\| 10\.00% +\| 30\.00% +\| 4\.00% +\| 55\.00% +\|/);
});
