#!/usr/bin/env node
// `npm run ablate:emoji`: what each choice of the emoji-clip recipe is worth. Every variant is the first
// shipped recipe (ABLATION_BASE) with one change, trained from scratch for the same number of samples with the same seed by
// the same code path as the shipped model (run-recipe.ts), then scored by `clip eval emoji`.
// Variants that are done (a report.json in their folder) are not trained again; an interrupted one
// resumes. The table goes to <out>/ablation.md (and .json); `npm run train:emoji -- --ship` puts it in
// the model card.
// Usage: npm run ablate:emoji [-- --out DIR] [-- --budget SAMPLES] [-- --only a,b] [-- --threads N]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { clipCacheRoot } from '../data/paths.js';
import { markdownTable, type EmojiBenchmarkReport, type Granularity } from '../data/emoji-benchmark.js';
import { EMOJI_RECIPE, trainingRows, type EmojiRecipe } from './emoji-clip.js';
import { runRecipe } from './run-recipe.js';

export const ABLATION_FILE = 'ablation.md';
export const defaultAblationDir = () => join(clipCacheRoot(), 'runs', 'emoji-ablation');

export interface Variant {
  name: string;
  /** What changes against the base, for the table. */
  change: string;
  apply(r: EmojiRecipe): EmojiRecipe;
}

const vision = (r: EmojiRecipe, v: Partial<EmojiRecipe['config']['vision_config']>): EmojiRecipe =>
  ({ ...r, config: { ...r.config, vision_config: { ...r.config.vision_config, ...v } } });

/**
 * The first shipped recipe (emoji only, crop+style), which every variant changes in one respect; its
 * epochs do not matter here (the budget sets them).
 */
export const ABLATION_BASE: EmojiRecipe = vision(
  { ...EMOJI_RECIPE, train: { ...EMOJI_RECIPE.train, augment: 'crop+style' }, data: { icons: 0 } },
  { image_size: 48, patch_size: 8, hidden_size: 192, intermediate_size: 768, num_attention_heads: 3, num_hidden_layers: 6 },
);

/** Each one change from ABLATION_BASE. */
export const VARIANTS: Variant[] = [
  { name: 'base', change: 'v1 recipe: 48 px, crop+style, emoji only', apply: (r) => r },
  { name: 'redraw', change: 'augment crop+redraw (10 drawing changes)', apply: (r) => ({ ...r, train: { ...r.train, augment: 'crop+redraw' } }) },
  { name: 'icons-half', change: 'half the icons in the mix', apply: (r) => ({ ...r, data: { ...r.data, icons: 0.5 } }) },
  { name: 'name-captions', change: 'subgroup and group names as captions too', apply: (r) => ({ ...r, data: { ...r.data, nameCaptions: 1 } }) },
  { name: 'img-32', change: 'images 32 px (16 patches)', apply: (r) => vision(r, { image_size: 32 }) },
  { name: 'img-40', change: 'images 40 px (25 patches)', apply: (r) => vision(r, { image_size: 40 }) },
  { name: 'names-half', change: 'names as captions for half the images', apply: (r) => ({ ...r, data: { ...r.data, nameCaptions: 0.5 } }) },
  { name: 'lr-2e-3', change: 'learning rate 2e-3', apply: (r) => ({ ...r, train: { ...r.train, lr: 2e-3 } }) },
  { name: 'icons-all', change: 'all icons in the mix', apply: (r) => ({ ...r, data: { ...r.data, icons: 1 } }) },
  { name: 'patch-6', change: 'patch 6 (64 patches)', apply: (r) => vision(r, { patch_size: 6 }) },
  { name: 'batch-256', change: 'batch 256', apply: (r) => ({ ...r, train: { ...r.train, batchSize: 256 } }) },
  { name: 'no-augment', change: 'no augmentation', apply: (r) => ({ ...r, train: { ...r.train, augment: 'none' } }) },
  { name: 'vit-8x192', change: 'image tower 8 layers', apply: (r) => vision(r, { num_hidden_layers: 8 }) },
  { name: 'vit-4x256', change: 'image tower 4 layers of width 256', apply: (r) => vision(r, { num_hidden_layers: 4, hidden_size: 256, intermediate_size: 1024, num_attention_heads: 4 }) },
  { name: 'conv-stem', change: 'conv stem (32, 64, 128 channels) instead of patchify', apply: (r) => vision(r, { conv_stem: [32, 64, 128] }) },
];

export interface AblationRow {
  name: string;
  change: string;
  epochs: number;
  samples: number;
  trainMinutes: number;
  samplesPerSec: number;
  labelTop5: number | null;
  subgroupTop1: number | null;
  groupTop1: number | null;
  tuxT2iR5: number | null;
  seenLabelTop1: number | null;
}

const zs = (r: EmojiBenchmarkReport, g: Granularity) => r.zeroshot?.results.find((x) => x.granularity === g && x.method === 'names');

/** The four targets (unseen styles pooled, Tux Paint) and the seen label accuracy (underfitting). */
export function ablationRow(v: Variant, epochs: number, samples: number, seconds: number, r: EmojiBenchmarkReport): AblationRow {
  return {
    name: v.name, change: v.change, epochs, samples, trainMinutes: seconds / 60, samplesPerSec: samples / Math.max(1e-9, seconds),
    labelTop5: zs(r, 'label')?.pooled.top5 ?? null,
    subgroupTop1: zs(r, 'subgroup')?.pooled.top1 ?? null,
    groupTop1: zs(r, 'group')?.pooled.top1 ?? null,
    tuxT2iR5: r.tuxpaint?.textToImage['R@5'] ?? null,
    seenLabelTop1: zs(r, 'label')?.seen?.top1 ?? null,
  };
}

const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(2)}%`);

export function ablationTable(rows: AblationRow[]): string {
  return markdownTable(
    ['variant', 'change', 'epochs', 'samples', 'train min', 'samples/s', 'label top-5', 'subgroup top-1', 'group top-1', 'Tux t→i R@5', 'seen label top-1'],
    rows.map((r) => [r.name, r.change, String(r.epochs), String(r.samples), r.trainMinutes.toFixed(1), r.samplesPerSec.toFixed(0), pct(r.labelTop5), pct(r.subgroupTop1), pct(r.groupTop1), pct(r.tuxT2iR5), pct(r.seenLabelTop1)]),
  );
}

function parseArgs(argv: string[]): { out: string; budget: number; only?: string[]; threads?: number } {
  let out = defaultAblationDir();
  let budget = 64_000;
  let only: string[] | undefined;
  let threads: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') out = argv[++i]!;
    else if (a === '--budget') budget = Number(argv[++i]);
    else if (a === '--only') only = argv[++i]!.split(',');
    else if (a === '--threads') threads = Number(argv[++i]);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(`usage: npm run ablate:emoji [-- --out DIR] [-- --budget SAMPLES] [-- --only ${VARIANTS.map((v) => v.name).join(',')}] [-- --threads N]\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(budget) || budget < 1000) throw new Error('--budget must be an integer number of samples, at least 1000');
  const unknown = only?.filter((n) => !VARIANTS.some((v) => v.name === n)) ?? [];
  if (unknown.length) throw new Error(`unknown variant(s) ${unknown.join(', ')}; known: ${VARIANTS.map((v) => v.name).join(', ')}`);
  return { out: resolve(out), budget, only, threads };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  mkdirSync(args.out, { recursive: true });
  const log = (m: string) => process.stderr.write(`[ablate:emoji] ${m}\n`);
  const rows: AblationRow[] = [];
  for (const v of VARIANTS) {
    const dir = join(args.out, v.name);
    const done = join(dir, 'report.json');
    // Variants left out by --only still get their row when an earlier run trained them.
    if (args.only && !args.only.includes(v.name) && !existsSync(done)) continue;
    let row: AblationRow;
    if (existsSync(done)) {
      // The row says what that run did (its epochs and samples), whatever --budget is now.
      const rep = JSON.parse(readFileSync(done, 'utf8')) as EmojiBenchmarkReport & { recipe: EmojiRecipe & { trainSeconds: number; samples: number } };
      row = ablationRow(v, rep.recipe.train.epochs, rep.recipe.samples, rep.recipe.trainSeconds, rep);
      log(`${v.name}: done before (${done})`);
    } else {
      const r0 = v.apply(ABLATION_BASE);
      // Same budget in samples: epochs of the variant's own data, rounded to the nearest whole epoch.
      const images = trainingRows(r0.data).length;
      const epochs = Math.max(1, Math.round(args.budget / images));
      const recipe: EmojiRecipe = { ...r0, train: { ...r0.train, epochs } };
      log(`${v.name}: ${v.change}; ${epochs} epochs of ${images} images`);
      const r = await runRecipe(recipe, dir, { threads: args.threads, modelName: `emoji-clip ablation ${v.name}`, log: (m) => log(`${v.name}: ${m}`) });
      row = ablationRow(v, epochs, r.samples, r.trainSeconds, r.report);
    }
    rows.push(row);
    const table = ablationTable(rows);
    writeFileSync(join(args.out, ABLATION_FILE), `Budget ${args.budget} samples per variant, seed ${EMOJI_RECIPE.train.seed}; unseen styles (OpenMoji + Fluent) pooled, names as class texts.\n\n${table}\n`);
    writeFileSync(join(args.out, 'ablation.json'), JSON.stringify({ budget: args.budget, rows }, null, 1) + '\n');
    process.stdout.write(table + '\n');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`[ablate:emoji] ${(e as Error).message}\n`);
    process.exit(1);
  });
}
