// The one EasyNLP TSV reader: `text<TAB>base64(image)` per line (or one column of either), as EasyNLP's CLIP
// app reads and writes them. One rule for lines (streamed, bounded: tasks/lines.ts; blank lines skipped; a
// trailing CR dropped), columns (tabs) and layout (which column is the image), shared by the embed job's inputs
// (scanTsv: cells left in the file, read when embedded) and the eval / train pairs (readRetrievalTsv).
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { decodeBase64Cell, looksLikeBase64Image } from '../image/formats.js';
import { checkCaption, MAX_CAPTION_CHARS, requireFile, type RetrievalDataset } from './datasets.js';
import type { CellRef, InputItem, Inputs, InvalidInput } from './inputs.js';
import { fileLines } from './lines.js';

export type TsvLayout = 'text' | 'image' | 'text+image' | 'image+text';

/** One non-blank line: its cells as byte ranges, read as text or referenced in place on demand. */
export interface TsvRow {
  no: number;
  /** FILE:LINE, for ids and messages. */
  where: string;
  count: number;
  /** Byte length of cell k. */
  size(k: number): number;
  /** Cell k as text. */
  cell(k: number): string;
  /** Where cell k lies in the file. */
  ref(k: number): CellRef;
}

/** Split a line at tabs into [start, end) byte ranges, dropping a trailing CR. */
function columns(bytes: Buffer): Array<[number, number]> {
  let end = bytes.length;
  if (end && bytes[end - 1] === 13) end--;
  const cols: Array<[number, number]> = [];
  let s = 0;
  for (let t = bytes.indexOf(9, s); t >= 0 && t < end; t = bytes.indexOf(9, s)) {
    cols.push([s, t]);
    s = t + 1;
  }
  cols.push([s, end]);
  return cols;
}

/** Only spaces, tabs and CRs: a line that carries nothing (stops at the first other byte). */
function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 32 && b !== 9 && b !== 13) return false;
  return true;
}

/** Rows of a TSV file; a row's cells must be used before asking for the next row (the bytes are a read buffer). */
export function* tsvRows(file: string): Generator<TsvRow> {
  for (const { no, offset, bytes } of fileLines(file)) {
    // A line of only whitespace carries nothing (a blank line, or an editor's trailing spaces).
    if (isBlank(bytes)) continue;
    const cols = columns(bytes);
    yield {
      no, where: `${file}:${no}`, count: cols.length,
      size: (k) => cols[k]![1] - cols[k]![0],
      cell: (k) => bytes.toString('utf8', cols[k]![0], cols[k]![1]),
      ref: (k) => ({ file, offset: offset + cols[k]![0], length: cols[k]![1] - cols[k]![0] }),
    };
  }
}

/**
 * Decide a TSV file's layout from its first non-empty line, as EasyNLP's CLIP app uses them:
 * two columns = a text and a base64 image (normally text first; the column whose cell decodes to an
 * image signature is taken as the image), one column = base64 images if that cell is one, else texts.
 */
export function detectTsvLayout(cells: string[], where: string): TsvLayout {
  if (cells.length === 1) return looksLikeBase64Image(cells[0]!) ? 'image' : 'text';
  if (cells.length === 2) {
    if (looksLikeBase64Image(cells[1]!)) return 'text+image';
    if (looksLikeBase64Image(cells[0]!)) return 'image+text';
    throw new Error(`${where}: two columns, but neither is a base64 image (expected text<TAB>base64-image)`);
  }
  throw new Error(`${where}: ${cells.length} tab-separated columns; expected text<TAB>base64-image, or one column of texts or of base64 images`);
}

const cellsOf = (row: TsvRow): string[] => Array.from({ length: row.count }, (_, k) => row.cell(k));

/**
 * Items of an EasyNLP TSV file for the embed job. Ids are FILE:LINE (1-based); a two-column line gives two
 * inputs, FILE:LINE:text and FILE:LINE:image. Blank lines are skipped, and so is an empty cell of a two-column line.
 */
export function scanTsv(file: string): Inputs {
  const items: InputItem[] = [];
  const invalid: InvalidInput[] = [];
  let layout: TsvLayout | undefined;
  for (const row of tsvRows(file)) {
    const where = row.where;
    layout ??= detectTsvLayout(cellsOf(row), where);
    const want = layout.includes('+') ? 2 : 1;
    if (row.count !== want) {
      invalid.push({ id: where, kind: 'row', error: `${where}: ${row.count} columns, but this file's first line has ${want}` });
      continue;
    }
    const textCol = layout === 'image' ? -1 : layout === 'image+text' ? 1 : 0;
    // A text costs tokenizer work by its length; the row is listed as invalid instead of embedded.
    if (textCol >= 0 && row.size(textCol) > MAX_CAPTION_CHARS) {
      invalid.push({ id: where, kind: 'row', error: `${where}: text of ${row.size(textCol)} bytes, above the limit of ${MAX_CAPTION_CHARS}` });
      continue;
    }
    if (layout === 'text') items.push({ kind: 'text', id: where, text: row.cell(0) });
    else if (layout === 'image') items.push({ kind: 'image', id: where, cell: row.ref(0) });
    else {
      const [t, im] = layout === 'text+image' ? [0, 1] : [1, 0];
      if (row.size(t)) items.push({ kind: 'text', id: `${where}:text`, text: row.cell(t) });
      if (row.size(im)) items.push({ kind: 'image', id: `${where}:image`, cell: row.ref(im) });
    }
  }
  if (!layout) throw new Error(`${file}: empty TSV file`);
  return { items, invalid };
}

/** Read a base64 cell's bytes back from its file. */
export function readCell(ref: CellRef, id: string): Uint8Array {
  const fd = openSync(ref.file, 'r');
  try {
    const buf = Buffer.alloc(ref.length);
    const n = readSync(fd, buf, 0, ref.length, ref.offset);
    if (n !== ref.length) throw new Error(`${id}: ${ref.file} changed since it was read (short read)`);
    return decodeBase64Cell(buf.toString('latin1'), id);
  } finally {
    closeSync(fd);
  }
}

export interface TsvOptions {
  /**
   * Merge lines whose decoded image bytes are identical into one image with several captions (default
   * true). EasyNLP's files repeat the image on every caption line (Flickr30k: 5 lines per image); without
   * merging, a caption's copies of its own image compete with each other and text→image recall is capped.
   * false keeps one image per line (the pairwise evaluation, each line its own positive).
   */
  dedupe?: boolean;
}

/**
 * Image-caption pairs of an EasyNLP TSV for retrieval eval and training: every line `text<TAB>base64-image`
 * (either column order, as the first line shows), images decoded into memory.
 */
export async function readRetrievalTsv(file: string, opts: TsvOptions = {}): Promise<RetrievalDataset> {
  requireFile(file, 'TSV');
  const dedupe = opts.dedupe ?? true;
  const ds: RetrievalDataset = { images: [], texts: [] };
  const byHash = new Map<string, number>();
  let layout: TsvLayout | undefined;
  for (const row of tsvRows(file)) {
    const { where } = row;
    if (row.count !== 2) {
      throw new Error(`${where}: expected 2 tab-separated fields (text, base64 image), ${row.count === 1 ? 'found no tab' : `got ${row.count}`}`);
    }
    layout ??= detectTsvLayout(cellsOf(row), where);
    const col = layout === 'image+text' ? 0 : 1;
    const caption = row.cell(1 - col).trim();
    if (!caption) throw new Error(`${where}: empty text (expected text<TAB>base64-image)`);
    checkCaption(caption, where);
    const bytes = new Uint8Array(decodeBase64Cell(row.cell(col), where));
    const name = `${basename(file)}:${row.no}`;
    let i: number | undefined;
    if (dedupe) {
      const h = createHash('sha1').update(bytes).digest('hex');
      i = byHash.get(h);
      if (i === undefined) byHash.set(h, (i = ds.images.push({ input: bytes, name }) - 1));
    } else {
      i = ds.images.push({ input: bytes, name }) - 1;
    }
    ds.texts.push({ text: caption, image: i });
  }
  if (!ds.texts.length) throw new Error(`TSV ${file}: no lines (the file is empty or blank); expected text<TAB>base64-image lines`);
  return ds;
}
