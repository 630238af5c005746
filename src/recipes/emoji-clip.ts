// The recipe behind the package's default model: a small CLIP trained from scratch on the emoji
// benchmark that `npm run data` prepares (Noto + Twemoji images, emojibase/emojilib captions, and
// the Tabler + MDI icon sets for vocabulary and line/glyph styles).
// Everything that fixes the result is here (data mix, tokenizer corpus, config, hyperparameters, seed),
// so `npm run train:emoji` reproduces the shipped weights from a clean clone; `npm run ablate:emoji`
// trains variants of it (emoji-ablation.ts) to measure what each choice is worth.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Augment } from '../train/augment.js';
import type { CaptionMode } from '../train/run.js';
import { manifestPath, readManifest, toJsonl, TRAIN_STYLES, type EmojiRow, type SplitRows, type TrainStyle } from '../data/manifests.js';
import { permutation, Rng } from '../tasks/rng.js';

interface EmojiTowerConfig {
  hidden_size: number; intermediate_size: number; num_attention_heads: number; num_hidden_layers: number; hidden_act: string;
}

/** HF CLIPConfig (the subset we set; the rest takes transformers' defaults). */
export interface EmojiClipConfig {
  projection_dim: number;
  logit_scale_init_value: number;
  text_config: EmojiTowerConfig & { max_position_embeddings: number };
  /** conv_stem: clip-ts's convolutional stem (models/config.ts VitConfig.convStem); absent: patchify. */
  vision_config: EmojiTowerConfig & { image_size: number; patch_size: number; conv_stem?: number[] };
}

export const EMOJI_CLIP_CONFIG: EmojiClipConfig = {
  projection_dim: 192,
  logit_scale_init_value: 2.6592,
  text_config: {
    hidden_size: 192, intermediate_size: 768, num_attention_heads: 3, num_hidden_layers: 4,
    max_position_embeddings: 32, hidden_act: 'quick_gelu',
  },
  vision_config: {
    hidden_size: 192, intermediate_size: 768, num_attention_heads: 3, num_hidden_layers: 6,
    image_size: 40, patch_size: 8, hidden_act: 'quick_gelu',
  },
};

/** Tokenizer: CLIP-style byte-level BPE trained on the training captions (the icons' too when they are in the mix). */
export const EMOJI_TOKENIZER = { vocabSize: 6000, minFrequency: 2, contextLength: 32 };

export interface EmojiTrain {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  warmup: number;
  gradClip: number;
  seed: number;
  captions: CaptionMode;
  augment: Augment;
  /** Crop window area range (absent: the trainer's default, 0.6 to 1.8). */
  cropScale?: [number, number];
}

/** Training hyperparameters (see README "Default model" and the model card's ablation for how they were chosen). */
export const EMOJI_TRAIN: EmojiTrain = {
  epochs: 64,
  batchSize: 128,
  lr: 1e-3,
  weightDecay: 0.1,
  warmup: 50,
  gradClip: 1.0,
  seed: 0,
  captions: 'sample',
  augment: 'crop+redraw',
};

/**
 * The training images: the emoji `train` split (Noto + Twemoji) and, with `icons` > 0, that fraction of
 * the `icons` split (a seeded subset, the same every run). Never an image of the evaluation styles
 * (OpenMoji, Fluent) or of Tux Paint.
 */
export interface EmojiData {
  /** Styles of the emoji `train` split to train on (absent: Noto and Twemoji, `google` and `twitter`). */
  styles?: TrainStyle[];
  icons: number;
  /**
   * The share of emoji images (a seeded subset, the same every run; 0 or absent: none) also captioned by
   * their subgroup and group name alone ("hearts", "food & drink"), not only inside "<label> (<group>,
   * <subgroup>)", so the text tower learns what a category name looks like. Every image captioned so
   * draws a name in 1 of 3 epochs instead of its label, which costs label accuracy at a fixed budget.
   */
  nameCaptions?: number;
  /**
   * Icon categories mixed in whole (e.g. the letter and digit glyphs: concepts emoji hardly have), on
   * top of the `icons` share; icons both pick are taken once.
   */
  iconCategories?: string[];
  /**
   * The share of the Open Clip Art drawings (`clipart` split: titled clip art, none close to a Tux Paint
   * stamp) mixed in, a seeded subset; 0 or absent: none.
   */
  clipart?: number;
}
export const EMOJI_DATA: EmojiData = { icons: 0, nameCaptions: 0.5 };

export interface EmojiRecipe {
  config: EmojiClipConfig;
  tokenizer: typeof EMOJI_TOKENIZER;
  train: EmojiTrain;
  data: EmojiData;
}
export const EMOJI_RECIPE: EmojiRecipe = { config: EMOJI_CLIP_CONFIG, tokenizer: EMOJI_TOKENIZER, train: EMOJI_TRAIN, data: EMOJI_DATA };

export const DEFAULT_TRAIN_STYLES: TrainStyle[] = ['google', 'twitter'];

/** The emoji rows of the train split in the recipe's styles, in the split's order. */
export function emojiTrainRows(data: EmojiData, root?: string): EmojiRow[] {
  const styles = new Set<string>(data.styles ?? DEFAULT_TRAIN_STYLES);
  const unknown = [...styles].filter((s) => !(TRAIN_STYLES as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`recipe data.styles: unknown style ${unknown.join(', ')} (known: ${TRAIN_STYLES.join(', ')})`);
  const rows = readManifest('train', root).filter((r) => styles.has(r.style));
  const absent = [...styles].filter((s) => !rows.some((r) => r.style === s));
  if (absent.length) throw new Error(`recipe data.styles: the train split has no ${absent.join(', ')} images; rerun \`npm run data\``);
  return rows;
}

/** Rows of the training mix: every emoji row of the recipe's styles, then its icons. */
export function trainingRows(data: EmojiData, root?: string): { image: string; captions: string[] }[] {
  if (!(data.icons >= 0 && data.icons <= 1)) throw new Error(`recipe data.icons must be a fraction in [0, 1], got ${data.icons}`);
  const names = data.nameCaptions ?? 0;
  if (!(names >= 0 && names <= 1)) throw new Error(`recipe data.nameCaptions must be a fraction in [0, 1], got ${data.nameCaptions}`);
  const manifest = emojiTrainRows(data, root);
  const named = seededSubset(manifest.length, names, 8);
  const emoji = manifest.map((r, i) => ({ image: r.image, captions: named.has(i) ? [...r.captions, r.subgroupName, r.groupName] : r.captions }));
  const clipart = clipartRows(data.clipart ?? 0, root);
  const categories = new Set(data.iconCategories ?? []);
  if (data.icons === 0 && !categories.size) return [...emoji, ...clipart];
  const icons = extraSplit('icons', 'icons', root);
  const picks = seededSubset(icons.length, data.icons, 7);
  const found = new Set<string>();
  icons.forEach((r, i) => { if (categories.has(r.category)) { picks.add(i); found.add(r.category); } });
  const missing = [...categories].filter((c) => !found.has(c));
  if (missing.length) throw new Error(`recipe data.iconCategories: no icon has the category ${missing.map((c) => JSON.stringify(c)).join(', ')}`);
  const picked = [...picks].sort((a, b) => a - b).map((i) => icons[i]!);
  return [...emoji, ...picked.map((r) => ({ image: r.image, captions: r.captions })), ...clipart];
}

/** An optional split (built by `npm run data` unless --no-icons) that the recipe mixes in: absent or empty is an error. */
function extraSplit<S extends 'icons' | 'clipart'>(split: S, what: string, root?: string): SplitRows[S][] {
  const rows = existsSync(manifestPath(split, root)) ? readManifest(split, root) : [];
  if (!rows.length) throw new Error(`the recipe mixes in ${what} but the data has none: run \`npm run data\` without --no-icons`);
  return rows;
}

/** The recipe's seeded share of the `clipart` split. */
export function clipartRows(share: number, root?: string): { image: string; captions: string[] }[] {
  if (!(share >= 0 && share <= 1)) throw new Error(`recipe data.clipart must be a fraction in [0, 1], got ${share}`);
  if (share === 0) return [];
  const rows = extraSplit('clipart', 'clip art', root);
  const picks = seededSubset(rows.length, share, 9);
  return rows.filter((_, i) => picks.has(i)).map((r) => ({ image: r.image, captions: r.captions }));
}

/** round(share * n) of the indices 0..n-1, drawn by a fixed stream (the same every run). */
function seededSubset(n: number, share: number, stream: number): Set<number> {
  if (share <= 0) return new Set();
  return new Set(permutation(n, new Rng(0, stream)).subarray(0, Math.round(share * n)));
}

/**
 * The training data file for `clip train` (the mix, written into `dir`: the train split holds more styles
 * than a recipe may use) and the tokenizer's corpus: every caption of the mix (what the text tower sees). One read of the manifests.
 */
export function trainingData(data: EmojiData, dir: string, root?: string): { path: string; images: number; corpus: string[] } {
  const rows = trainingRows(data, root);
  const path = join(dir, 'train-mix.jsonl');
  writeFileSync(path, toJsonl(rows));
  return { path, images: rows.length, corpus: rows.flatMap((r) => r.captions) };
}
