// Input enumeration for batch embedding. Each `--input` spec (folder, glob, list file, EasyNLP TSV or a
// single image) expands into items with a stable id: the id is the resume key, so the same command
// must give the same ids on every run (sorted walks, order-preserving lists).
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { readTextBounded } from './lines.js';
import { detectTsvLayout, readCell, scanTsv, type TsvLayout } from './easynlp-tsv.js';
import { walkFiles } from '../io/walk.js';
import { decodeBase64Cell, IMAGE_EXTENSIONS, isImagePath, looksLikeBase64Image, sniffImage } from '../image/formats.js';

/** Extensions a folder walk picks up: the formats the image decoder reads. */
export { IMAGE_EXTENSIONS };

/** Where a base64 image cell lies in a TSV file: read at embedding time, so big tables never sit in memory. */
export interface CellRef { file: string; offset: number; length: number }

export type InputItem =
  | { kind: 'image'; id: string; path: string }
  | { kind: 'image'; id: string; cell: CellRef }
  | { kind: 'text'; id: string; text: string };

/** A row that could not become an input (e.g. a TSV line with the wrong number of columns). */
export interface InvalidInput { id: string; kind: 'row'; error: string }

export interface Inputs { items: InputItem[]; invalid: InvalidInput[] }

export type SpecKind = 'folder' | 'glob' | 'list' | 'tsv' | 'image';

export interface ExtraInputs {
  /** Image paths taken as they are (the `--image` flag). */
  images?: string[];
  /** Texts to embed; their id is the text itself (the `--text` flag). */
  texts?: string[];
}

const PREFIXES: Record<string, SpecKind> = { 'glob:': 'glob', 'list:': 'list', 'tsv:': 'tsv' };

export const hasGlobMagic = (s: string): boolean => /[*?[{]/.test(s);

/**
 * What a spec names. An explicit `glob:`, `list:` or `tsv:` prefix wins. Otherwise: an existing folder is
 * walked; an existing file is an image if its bytes or extension say so, an EasyNLP table if it ends in
 * .tsv, and a list file otherwise; a missing path with * ? [ { in it is a glob.
 */
export function classifySpec(spec: string): { kind: SpecKind; target: string } {
  for (const [p, kind] of Object.entries(PREFIXES)) if (spec.startsWith(p)) return { kind, target: spec.slice(p.length) };
  if (existsSync(spec)) {
    if (statSync(spec).isDirectory()) return { kind: 'folder', target: spec };
    const ext = extname(spec).toLowerCase();
    if (sniffImage(readHead(spec, 16))) return { kind: 'image', target: spec };
    if (ext === '.tsv') return { kind: 'tsv', target: spec };
    if (IMAGE_EXTENSIONS.includes(ext)) return { kind: 'image', target: spec };
    return { kind: 'list', target: spec };
  }
  if (hasGlobMagic(spec)) return { kind: 'glob', target: spec };
  throw new Error(`input not found: ${spec}`);
}

/** Expand specs into de-duplicated items (first occurrence wins), in the order given. */
export function enumerateInputs(specs: string[], extra: ExtraInputs = {}): Inputs {
  const items: InputItem[] = [];
  const invalid: InvalidInput[] = [];
  const seen = new Set<string>();
  const add = (it: InputItem) => {
    // Paths compare resolved, so `./a.png` from a list and `a.png` from a glob are one input.
    const key = 'path' in it ? `image\0${resolve(it.path)}` : `${it.kind}\0${it.id}`;
    if (seen.has(key)) return;
    seen.add(key);
    items.push(it);
  };
  const addPath = (p: string) => add({ kind: 'image', id: p, path: p });

  for (const spec of specs) {
    const { kind, target } = classifySpec(spec);
    if (kind === 'image') addPath(target);
    else if (kind === 'folder') {
      const files = walkFolder(target);
      if (!files.length) throw new Error(`no images (${IMAGE_EXTENSIONS.join(', ')}) under ${target}`);
      files.forEach(addPath);
    } else if (kind === 'glob') {
      const files = expandGlob(target);
      if (!files.length) throw new Error(`no files match ${target}`);
      files.forEach(addPath);
    } else if (kind === 'list') {
      readListFile(target).forEach(addPath);
    } else {
      const t = scanTsv(target);
      t.items.forEach(add);
      invalid.push(...t.invalid);
    }
  }
  for (const p of extra.images ?? []) addPath(p);
  for (const t of extra.texts ?? []) add({ kind: 'text', id: t, text: t });
  return { items, invalid };
}

// ---- folders and lists ----

/** Image files under `dir` (the one walker's policy: see io/walk.ts). */
export function walkFolder(dir: string): string[] {
  return walkFiles(dir, isImagePath);
}

/** One image path per line; blank lines and `#` comments skipped; relative paths are relative to the list file. */
export function readListFile(file: string): string[] {
  const base = dirname(file);
  return readTextBounded(file, 'list file').split('\n')
    .map((l) => l.replace(/\r$/, '').trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => (isAbsolute(l) ? l : join(base, l)));
}

// ---- globs ----

/**
 * A glob as a RegExp over posix paths relative to the glob's base folder. Supports `*`, `?`, `[abc]`,
 * `[!abc]`, `{a,b}` and `**` as a whole path segment. Like the shell, wildcards do not match a leading dot.
 */
export function globToRegExp(pattern: string): RegExp {
  const segs = pattern.split('/');
  let re = '';
  segs.forEach((seg, i) => {
    const last = i === segs.length - 1;
    if (seg === '**') {
      re += last ? '(?!\\.)[^/]+(?:/(?!\\.)[^/]+)*' : '(?:(?!\\.)[^/]+/)*';
      return;
    }
    re += segmentToRegExp(seg) + (last ? '' : '/');
  });
  return new RegExp(`^${re}$`);
}

function segmentToRegExp(seg: string): string {
  let re = /^[*?[{]/.test(seg) ? '(?!\\.)' : '';
  let braces = 0;
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = seg.slice(i + 1, end);
      const neg = body.startsWith('!') || body.startsWith('^');
      if (neg) body = body.slice(1);
      re += `[${neg ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else if (c === '{') { braces++; re += '(?:'; }
    else if (c === '}' && braces) { braces--; re += ')'; }
    else if (c === ',' && braces) re += '|';
    else re += c.replace(/[.+^$()|\\\]}]/g, '\\$&');
  }
  if (braces) throw new Error(`unbalanced { in glob segment "${seg}"`);
  return re;
}

/** Files matching a glob, sorted. The walk starts at the longest leading part without wildcards. */
export function expandGlob(pattern: string): string[] {
  const segs = pattern.split('/');
  const firstMagic = segs.findIndex(hasGlobMagic);
  if (firstMagic < 0) return existsSync(pattern) && statSync(pattern).isFile() ? [pattern] : [];
  const baseSegs = segs.slice(0, firstMagic);
  const base = baseSegs.length === 0 ? '.' : baseSegs.join('/') || '/';
  const rest = segs.slice(firstMagic);
  if (!existsSync(base) || !statSync(base).isDirectory()) return [];
  const re = globToRegExp(rest.join('/'));
  const depth = rest.includes('**') ? Infinity : rest.length;
  // walkFiles joins with path.join, which drops a leading `./`: `*.png` yields `a.png`, as a shell would.
  return walkFiles(base, (r) => re.test(r), depth);
}

function readHead(file: string, n: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

// ---- EasyNLP TSV: the one reader is easynlp-tsv.ts ----

export { decodeBase64Cell, looksLikeBase64Image, sniffImage };
export { detectTsvLayout, readCell, scanTsv, type TsvLayout };
