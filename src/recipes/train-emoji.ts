#!/usr/bin/env node
// `npm run train:emoji`: reproduce the bundled default model from a clean clone.
//   1. train the BPE tokenizer on the training captions (our own trainer, src/text/train-bpe.ts)
//   2. `clip train` from scratch with the recipe in emoji-clip.ts (resumable: rerun to continue)
//   3. the benchmark report (`clip eval emoji`) and the training curve
//   4. with --ship, the fp16 copy into models/emoji-clip/ (what `--model` defaults to)
// Usage: npm run train:emoji [-- --out DIR] [-- --ship] [-- --threads N]
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BUNDLED_MODELS } from '../hub/bundled.js';
import { clipCacheRoot } from '../data/paths.js';
import type { TrainStyle } from '../data/manifests.js';
import { exportHalf } from '../train/export.js';
import { clipartRows, DEFAULT_TRAIN_STYLES, EMOJI_RECIPE, emojiTrainRows } from './emoji-clip.js';
import { runRecipe, type RecipeRun } from './run-recipe.js';
import { ABLATION_FILE, defaultAblationDir } from './emoji-ablation.js';

const log = (m: string) => process.stderr.write(`[train:emoji] ${m}\n`);

function parseArgs(argv: string[]): { out: string; ship: boolean; threads?: number } {
  let out = join(clipCacheRoot(), 'runs', 'emoji-clip');
  let ship = false;
  let threads: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') out = argv[++i]!;
    else if (a === '--ship') ship = true;
    else if (a === '--threads') threads = Number(argv[++i]);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: npm run train:emoji [-- --out DIR] [-- --ship] [-- --threads N]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return { out: resolve(out), ship, threads };
}

/** Who drew each training style, under which license (CC-BY asks for the credit). */
const STYLE_CREDITS: Record<TrainStyle, string> = {
  google: 'Noto Emoji (Apache-2.0) from emoji-datasource-google',
  twitter: 'Twemoji (CC-BY 4.0, © Twitter, Inc. and other contributors) from emoji-datasource-twitter',
  emojione: 'EmojiOne 2 colour (CC-BY 4.0, emoji artwork provided by EmojiOne) from the emojione 2.2.7 package',
  'emojione-bw': 'EmojiOne 2 black-and-white (the same license and package)',
};

/** The model directory's README: what it is, how it was made, what it scores, and the data's licenses. */
function modelCard(r: RecipeRun, ablation: string | undefined): string {
  const { config: c, tokenizer: tok, train: t, data } = EMOJI_RECIPE;
  const styles = data.styles ?? DEFAULT_TRAIN_STYLES;
  const stem = c.vision_config.conv_stem;
  const emoji = emojiTrainRows(data).length;
  const clipart = clipartRows(data.clipart ?? 0).length;
  const iconCount = r.images - emoji - clipart;
  const kinds = data.iconCategories?.length ? ` (${data.icons > 0 ? `${Math.round(data.icons * 100)}% of them, seeded, and ` : ''}all of the categories ${data.iconCategories.join(', ')})` : '';
  const icons = iconCount > 0
    ? ` and ${iconCount} icons of Tabler Icons (MIT) and Material Design Icons (Apache-2.0)${kinds} with their names and tags as captions`
    : '';
  return `# emoji-clip (bundled default model of clip-ts)

A small CLIP trained from scratch by \`npm run train:emoji\` (src/recipes/) on ${emoji.toLocaleString('en-US')} emoji images in ${styles.length} styles:
${styles.map((st) => `- ${STYLE_CREDITS[st]}`).join('\n')}

captioned from emojibase-data and emojilib (MIT)${icons}${clipart ? `, and ${clipart} drawings of the Open Clip Art Library (public domain, Debian's openclipart-svg; their titles and keywords as captions; none that looks like a Tux Paint stamp)` : ''}. Weights stored as float16.

## What it is for

Emoji-like drawings, icons and clip art on a light background (transparent images are composited on white):
zero-shot labels, search by text, grouping. It knows the words of emoji names and keywords${iconCount > 0 ? ' and icon names' : ''}, in English.
**Not for photos**: it never saw one (Fashion-MNIST below stays near chance), and not for other languages.

## How it was made

- Image tower: ViT, ${c.vision_config.image_size} px, patch ${c.vision_config.patch_size}${stem ? ` over a conv stem of ${stem.length} 3x3 stride-2 conv + ReLU layers (${stem.join(', ')} channels; \`vision_config.conv_stem\`, a clip-ts extension that transformers' CLIPModel does not read)` : ''}, width ${c.vision_config.hidden_size}, ${c.vision_config.num_hidden_layers} layers.
- Text tower: CLIP causal transformer, width ${c.text_config.hidden_size}, ${c.text_config.num_hidden_layers} layers, ${c.text_config.max_position_embeddings} tokens;
  byte-level BPE of ${tok.vocabSize} tokens trained on the captions by our own trainer.
- Training: ${t.epochs} epochs of ${r.images} images, batch ${t.batchSize}, AdamW lr ${t.lr}, wd ${t.weightDecay}, warmup ${t.warmup}, seed ${t.seed},
  captions sampled per image${data.nameCaptions ? ` (${Math.round(data.nameCaptions * 100)}% of the images, a seeded subset, also captioned by their subgroup and group names alone)` : ''}, augmentation ${t.augment}${t.cropScale ? ` (crops ${t.cropScale.join(' to ')} of the area)` : ''}; ${r.steps} steps (${r.samples} samples), ${(r.trainSeconds / 60).toFixed(1)} min on 2 CPU cores.
${ablation ? `\n## Ablation (each change alone from the previous recipe, same sample budget, same seed)\n\n${ablation}\n` : ''}
## Evaluation (\`clip eval emoji\`, styles never seen in training: OpenMoji, Fluent Emoji Flat)

${r.table}
`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const r = await runRecipe(EMOJI_RECIPE, args.out, { threads: args.threads, log });
  process.stdout.write(r.table + '\n');
  log(`report: ${join(args.out, 'report.json')}, ${join(args.out, 'report.md')}, ${join(args.out, 'training-curve.png')}`);
  const runDir = r.runDir;

  // 4. Ship.
  if (args.ship) {
    const dst = BUNDLED_MODELS['emoji-clip']!.dir;
    rmSync(dst, { recursive: true, force: true });
    const { bytes } = exportHalf(runDir, dst);
    // Transparent PNGs (most emoji files) are seen on white, as the training images were drawn.
    const ppPath = join(dst, 'preprocessor_config.json');
    writeFileSync(ppPath, JSON.stringify({ ...JSON.parse(readFileSync(ppPath, 'utf8')), background_color: [255, 255, 255] }, null, 2) + '\n');
    for (const f of ['report.json', 'report.md', 'training-curve.png']) copyFileSync(join(args.out, f), join(dst, f));
    const ablation = join(defaultAblationDir(), ABLATION_FILE);
    writeFileSync(join(dst, 'README.md'), modelCard(r, existsSync(ablation) ? readFileSync(ablation, 'utf8').trim() : undefined));
    log(`shipped fp16 weights (${(bytes / 2 ** 20).toFixed(1)} MiB, file ${(statSync(join(dst, 'model.safetensors')).size / 2 ** 20).toFixed(1)} MiB) to ${dst}`);
  }
}

main().catch((e) => {
  process.stderr.write(`[train:emoji] ${(e as Error).message}\n`);
  process.exit(1);
});
