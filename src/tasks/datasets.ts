// Dataset readers for evaluation: labeled images (class folders, `path,label` CSV) and image-caption
// pairs for retrieval (EasyNLP TSV with base64 images, CSV, JSONL). Structural problems (missing file,
// bad line) throw with the file and line; unreadable images are left for the encoder to report.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ImageInput } from '../runtime/preprocess.js';
import { parseCsv, sniffDelimiter } from './csv.js';
import { fileLines, readTextBounded } from './lines.js';
import { MAX_CLASSES } from './templates.js';
import { walkFiles } from '../io/walk.js';
import { isImagePath } from '../image/formats.js';

/** Extensions taken as images in class folders; formats we cannot decode still show up as failed images. */

export interface LabeledDataset {
  classes: string[];
  /** `label` indexes `classes`. */
  samples: { input: string; label: number }[];
}

export interface RetrievalDataset {
  /** `name` is what reports show: the path, or `file:line` for embedded images. */
  images: { input: ImageInput; name: string }[];
  /** Each caption belongs to one image (`image` indexes `images`). */
  texts: { text: string; image: number }[];
}

/** Class names in a stable order: numerically when all are integers ("2" before "10"), else by code point. */
export function sortClassNames(names: Iterable<string>): string[] {
  const u = [...new Set(names)];
  if (u.length && u.every((n) => /^\d+$/.test(n))) return u.sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
  return u.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new Error(`${what} ${path}: no such file`);
  if (!statSync(path).isFile()) throw new Error(`${what} ${path}: not a file`);
}

/** Longest caption or label accepted: far past any real one, and it bounds tokenizer work per text. */
export const MAX_CAPTION_CHARS = 65536;
/** Image files under `dir`, any depth, in name order (the one walker's policy: see io/walk.ts). */
export function imageFilesUnder(dir: string): string[] {
  return walkFiles(dir, isImagePath);
}

export function checkCaption(text: string, where: string, what = 'caption'): string {
  if (text.length > MAX_CAPTION_CHARS) throw new Error(`${where}: ${what} of ${text.length} characters, above the limit of ${MAX_CAPTION_CHARS}`);
  return text;
}

/** torchvision ImageFolder layout: DIR/<class>/**\/<image>. Empty class folders are kept as classes. */
export function readLabeledFolder(dir: string): LabeledDataset {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`dataset folder ${dir}: no such directory`);
  const classDirs = readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isDirectory());
  const classes = sortClassNames(classDirs);
  if (!classes.length) throw new Error(`dataset folder ${dir}: no class subfolders (expected ${dir}/<class>/<image>)`);
  if (classes.length > MAX_CLASSES) throw new Error(`dataset folder ${dir}: ${classes.length} class folders, above the limit of ${MAX_CLASSES}`);
  const samples = classes.flatMap((c, label) => imageFilesUnder(join(dir, c)).sort().map((input) => ({ input, label })));
  if (!samples.length) throw new Error(`dataset folder ${dir}: no image files in its ${classes.length} class folders`);
  return { classes, samples };
}

const PATH_COLUMNS = ['path', 'image', 'image_path', 'filepath', 'file', 'filename', 'img', 'image_file'];
const LABEL_COLUMNS = ['label', 'class', 'class_name', 'classname', 'category', 'target'];
const CAPTION_COLUMNS = ['caption', 'text', 'title', 'sentence', 'raw', 'description'];

/** Column indices from a header row naming them, or the first two columns when the first row is data. */
function pickColumns(first: string[], second: string[]): { a: number; b: number; header: boolean } {
  const low = first.map((f) => f.trim().toLowerCase());
  const a = low.findIndex((f) => PATH_COLUMNS.includes(f));
  const b = low.findIndex((f) => second.includes(f));
  return a >= 0 && b >= 0 ? { a, b, header: true } : { a: 0, b: 1, header: false };
}

function readRows(file: string, secondColumn: string[], what: string) {
  requireFile(file, what);
  const text = readTextBounded(file, what);
  const delimiter = sniffDelimiter(text);
  const rows = parseCsv(text, file, delimiter);
  const value = what === 'labels CSV' ? 'label' : 'caption';
  const sep = delimiter === '\t' ? 'tab' : 'comma';
  if (!rows.length) throw new Error(`${what} ${file}: no rows (the file is empty or blank); expected lines of image path${sep === 'tab' ? '<TAB>' : ','}${value}`);
  const { a, b, header } = pickColumns(rows[0]!.fields, secondColumn);
  const base = dirname(resolve(file));
  return (header ? rows.slice(1) : rows).map(({ fields, line }) => {
    const p = fields[a]?.trim();
    const v = fields[b];
    if (!p || v === undefined || !v.trim()) {
      const found = fields.length === 1 ? `found no ${sep}` : `found ${fields.length} ${sep}-separated fields${!p ? ', the path empty' : `, the ${value} empty`}`;
      throw new Error(`${file}:${line}: expected an image path and a ${value} (${sep}-separated), ${found}`);
    }
    // Relative paths are relative to the index file, so the dataset folder can move as a whole.
    return { path: resolve(base, p), value: checkCaption(v.trim(), `${file}:${line}`, value), line };
  });
}

/** `path,label` rows (optional header naming the columns, e.g. `path,label` or `filepath,class`). */
export function readLabeledCsv(file: string): LabeledDataset {
  const rows = readRows(file, LABEL_COLUMNS, 'labels CSV');
  if (!rows.length) throw new Error(`labels CSV ${file}: no rows after the header`);
  const classes = sortClassNames(rows.map((r) => r.value));
  if (classes.length > MAX_CLASSES) throw new Error(`labels CSV ${file}: ${classes.length} distinct labels, above the limit of ${MAX_CLASSES}`);
  const index = new Map(classes.map((c, i) => [c, i]));
  return { classes, samples: rows.map((r) => ({ input: r.path, label: index.get(r.value)! })) };
}

/** Group (image path, caption) pairs by image, in order of first appearance. */
function groupPairs(pairs: { path: string; caption: string }[]): RetrievalDataset {
  const byPath = new Map<string, number>();
  const ds: RetrievalDataset = { images: [], texts: [] };
  for (const { path, caption } of pairs) {
    let i = byPath.get(path);
    if (i === undefined) {
      i = ds.images.push({ input: path, name: path }) - 1;
      byPath.set(path, i);
    }
    ds.texts.push({ text: caption, image: i });
  }
  return ds;
}

/** CSV (or tab-separated) rows `image,caption`; several rows may name the same image. */
export function readRetrievalCsv(file: string): RetrievalDataset {
  const rows = readRows(file, CAPTION_COLUMNS, 'captions CSV');
  if (!rows.length) throw new Error(`captions CSV ${file}: no rows after the header`);
  return groupPairs(rows.map((r) => ({ path: r.path, caption: r.value })));
}

/** Non-blank lines as text (a trailing CR dropped), each bounded by MAX_LINE_BYTES. */
function* lines(file: string): Generator<{ text: string; line: number }> {
  for (const { no, bytes } of fileLines(file)) {
    const text = bytes.toString('utf8', 0, bytes.length && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length);
    if (text.trim()) yield { text, line: no };
  }
}

const JSON_IMAGE_KEYS = ['image', 'image_path', 'path', 'filepath', 'file', 'filename', 'img'];
const JSON_CAPTION_KEYS = ['captions', 'caption', 'texts', 'text', 'sentences', 'title'];

/** A caption field may be a string, a list of strings, or Karpathy-style objects `{raw}` / `{text}`. */
function captionsOf(v: unknown): string[] | undefined {
  const one = (x: unknown): string | undefined => {
    if (typeof x === 'string') return x;
    if (x && typeof x === 'object') for (const k of ['raw', 'text', 'caption']) if (typeof (x as any)[k] === 'string') return (x as any)[k];
    return undefined;
  };
  const list = Array.isArray(v) ? v.map(one) : [one(v)];
  return list.every((s) => s !== undefined) ? (list as string[]) : undefined;
}

/**
 * JSONL, one object per line: an image path (`image`, `path`, `filepath`, ...) and its captions
 * (`captions` list, `caption`, `text`, or `sentences` as strings or `{raw}` objects). Lines naming the
 * same image are merged; an image with an empty caption list stays in the pool as a distractor.
 */
export async function readRetrievalJsonl(file: string): Promise<RetrievalDataset> {
  requireFile(file, 'captions JSONL');
  const base = dirname(resolve(file));
  const pairs: { path: string; caption: string }[] = [];
  const distractors: string[] = [];
  for (const { text, line } of lines(file)) {
    let obj: any;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new Error(`${file}:${line}: not valid JSON (${(e as Error).message})`);
    }
    const imageKey = JSON_IMAGE_KEYS.find((k) => typeof obj?.[k] === 'string');
    const captionKey = JSON_CAPTION_KEYS.find((k) => obj?.[k] !== undefined);
    const caps = captionKey ? captionsOf(obj[captionKey]) : undefined;
    if (!imageKey || !caps) {
      throw new Error(`${file}:${line}: expected an object with an image path (${JSON_IMAGE_KEYS.join('/')}) and captions (${JSON_CAPTION_KEYS.join('/')})`);
    }
    const path = resolve(base, obj[imageKey]);
    caps.forEach((c) => checkCaption(c, `${file}:${line}`));
    if (!caps.length) distractors.push(path);
    for (const caption of caps) pairs.push({ path, caption });
  }
  const ds = groupPairs(pairs);
  const known = new Set(ds.images.map((im) => im.name));
  for (const p of distractors) if (!known.has(p)) { known.add(p); ds.images.push({ input: p, name: p }); }
  if (!ds.images.length) throw new Error(`captions JSONL ${file}: no images`);
  return ds;
}

// EasyNLP TSV (text<TAB>base64-image): the one reader in easynlp-tsv.ts, shared with the embed job's inputs.
export { readRetrievalTsv, type TsvOptions } from './easynlp-tsv.js';
