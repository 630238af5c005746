// The offline image–text benchmark that `npm run data` prepares (src/cli/data.ts), and readers for it.
//
// Location: `${CLIP_CACHE ?? $XDG_CACHE_HOME/clip-ts ?? ~/.cache/clip-ts}/data/` (never committed):
//   packages/<id>/        pinned npm / Debian packages (src/data/sources.ts), checksum-verified, only
//                         the members the build reads extracted
//   images/<style>/       opaque RGB PNGs composited on WHITE (sources are RGBA; see raster.ts):
//                         google, twitter   64x64, from emoji-datasource-<vendor> img/<vendor>/64
//                         openmoji, fluent  64x64, rasterized from SVG with sharp (librsvg)
//                         tuxpaint          224x224, stamp fitted inside and padded with white
//                         fashion-mnist     28x28, the original gray values (white on black), as RGB
//                         tabler-outline, tabler-filled, mdi  64x64 icons (optional vocabulary)
//   manifests/<split>.jsonl, manifests/summary.json   (counts, join statistics, pinned sources)
// Every directory is produced by one step, built under a temporary name and renamed when complete.
//
// Concept keys: codepoint sequence in lower-case hex, "-"-joined, U+FE0F removed ("2764", "0023-20e3");
// see keys.ts. Concepts are emojibase 17's base emojis (no skin-tone variants, no "component" group);
// `group`/`subgroup` are emojibase slugs ("smileys-emotion"/"face-smiling"), `groupName`/`subgroupName`
// its English display names, `order` its sort order (use it to order class lists).
//
// Splits (one JSON object per line; `image` is an absolute path):
//   train          EmojiRow: Noto (google) and Twemoji (twitter) for every concept the vendor draws.
//                  `captions` = [label, "an emoji of <label>", "<label>: <keywords>", "<label> (<group>, <subgroup>)"],
//                  keywords from emojilib then emojibase tags (captions.ts).
//   zeroshot       EmojiRow: the concepts all four styles draw, once per style (google, twitter,
//                  openmoji, fluent). Evaluate zero-shot on openmoji/fluent at three granularities:
//                  9-way `group`, `subgroup`, and `label` (one class per concept); counts in summary.json.
//   tuxpaint       RetrievalRow: Tux Paint stamps with their one-sentence English description.
//   fashion-mnist  FashionRow: test-split images of the 8 classes mapped to an emoji concept (fashion.ts).
//   icons          IconRow: Tabler and MDI icons with names/tags (only when built with icons).
//   clipart        ClipartRow: Open Clip Art Library drawings, titles/keywords as captions, none close to a
//                  Tux Paint stamp (only when built with icons).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataRoot, layout } from './paths.js';
import { parseJsonl } from '../io/jsonl.js';

export { parseJsonl };

export type EmojiStyle = 'google' | 'twitter' | 'openmoji' | 'fluent' | 'emojione' | 'emojione-bw';
/** The styles of the `train` split, in its row order; a recipe picks which of them it trains on. */
export const TRAIN_STYLES = ['google', 'twitter', 'emojione', 'emojione-bw'] as const;
export type TrainStyle = (typeof TRAIN_STYLES)[number];

export interface EmojiRow {
  image: string;
  style: EmojiStyle;
  key: string;
  emoji: string;
  label: string;
  group: string;
  groupName: string;
  subgroup: string;
  subgroupName: string;
  order: number;
  captions: string[];
}

export interface RetrievalRow {
  image: string;
  caption: string;
  /** Stamp path under Tux Paint's stamps dir, without extension. */
  id: string;
  category: string;
}

export interface FashionRow {
  image: string;
  /** Position in the IDX test split. */
  index: number;
  fashionClass: number;
  fashionName: string;
  key: string;
  emoji: string;
  label: string;
  group: string;
  subgroup: string;
}

export interface IconRow {
  image: string;
  style: 'tabler-outline' | 'tabler-filled' | 'mdi';
  name: string;
  category: string;
  keywords: string[];
  captions: string[];
}

export interface ClipartRow {
  image: string;
  /** Path in the package without extension. */
  id: string;
  category: string;
  title: string;
  keywords: string[];
  captions: string[];
}

export interface SplitRows {
  train: EmojiRow;
  zeroshot: EmojiRow;
  tuxpaint: RetrievalRow;
  'fashion-mnist': FashionRow;
  icons: IconRow;
  clipart: ClipartRow;
}

export type Split = keyof SplitRows;
export const SPLITS: readonly Split[] = ['train', 'zeroshot', 'tuxpaint', 'fashion-mnist', 'icons', 'clipart'];

export interface DataSummary {
  root: string;
  background: 'white';
  sources: { id: string; name: string; version: string; license: string }[];
  concepts: { emojibase: number; emojilibMatched: number; emojilibEntries: number };
  /** Concepts each style draws. */
  styles: Record<EmojiStyle, number>;
  fluentJoin: {
    names: number;
    matched: number;
    matchRate: number;
    byMethod: Record<string, number>;
    variants: number;
    agree: number;
    disagree: string[];
    unchecked: number;
    unmatched: string[];
  };
  splits: {
    train: { rows: number; concepts: number; perStyle: Record<string, number> };
    zeroshot: { rows: number; concepts: number; groups: number; subgroups: number; labels: number; perStyle: Record<string, number> };
    tuxpaint: { pairs: number; uniqueCaptions: number; png: number; svg: number; noImage: number; noEnglish: number };
    'fashion-mnist': { rows: number; classes: number; perClass: Record<string, number>; leftOut: string[] };
    icons?: { rows: number; perStyle: Record<string, number> };
    clipart?: { rows: number; untitled: number; tooLarge: number; repeated: number; unrenderable: number; tuxDuplicates: number };
  };
}

export const manifestPath = (split: Split, root = dataRoot()): string => layout(root).manifest(split);
export const summaryPath = (root = dataRoot()): string => layout(root).summary;


export const toJsonl = (rows: readonly unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');

function requireData(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} not found: run \`npm run data\` first (or set CLIP_CACHE to where it was prepared)`);
}

export function readManifest<S extends Split>(split: S, root = dataRoot()): SplitRows[S][] {
  const p = manifestPath(split, root);
  requireData(p);
  return parseJsonl<SplitRows[S]>(readFileSync(p, 'utf8'), p);
}

export function readSummary(root = dataRoot()): DataSummary {
  const p = summaryPath(root);
  requireData(p);
  return JSON.parse(readFileSync(p, 'utf8')) as DataSummary;
}

export type ClassField = 'group' | 'subgroup' | 'label';

/**
 * Class list for one granularity, in emojibase order (a class sits where its first concept does),
 * and each row's class index: ready for a zero-shot evaluation.
 */
export function emojiClasses(rows: readonly EmojiRow[], field: ClassField): { classes: string[]; targets: number[] } {
  const first = new Map<string, number>();
  for (const r of rows) first.set(r[field], Math.min(first.get(r[field]) ?? Infinity, r.order));
  const classes = [...first.keys()].sort((a, b) => first.get(a)! - first.get(b)!);
  const index = new Map(classes.map((c, i) => [c, i]));
  return { classes, targets: rows.map((r) => index.get(r[field])!) };
}

/** Labeled-dataset shape used by the evaluation code: `{ classes, samples: [{ input, label }] }`. */
export function asLabeledDataset(rows: readonly EmojiRow[], field: ClassField): { classes: string[]; samples: { input: string; label: number }[] } {
  const { classes, targets } = emojiClasses(rows, field);
  return { classes, samples: rows.map((r, i) => ({ input: r.image, label: targets[i]! })) };
}

/** Retrieval-dataset shape used by the evaluation code: one caption per image here. */
export function asRetrievalDataset(rows: readonly RetrievalRow[]): { images: { input: string; name: string }[]; texts: { text: string; image: number }[] } {
  return { images: rows.map((r) => ({ input: r.image, name: r.id })), texts: rows.map((r, i) => ({ text: r.caption, image: i })) };
}

/** Rows of some styles only (e.g. the zero-shot evaluation proper: openmoji + fluent). */
export const ofStyles = <R extends { style: string }>(rows: readonly R[], styles: readonly string[]): R[] => rows.filter((r) => styles.includes(r.style));

export const imagesDir = (style: string, root = dataRoot()): string => join(root, 'images', style);

/** True once `npm run data` has completed (the summary is written last). */
export const dataReady = (root = dataRoot()): boolean => existsSync(summaryPath(root));
