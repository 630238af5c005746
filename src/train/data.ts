// Image–caption pairs for training and validation, in the formats `clip eval retrieval` reads plus a
// caption folder. Every caption is one training pair (EasyNLP trains on its TSV lines the same way);
// an image with several captions appears in several pairs.
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { imageFilesUnder, MAX_CAPTION_CHARS, readRetrievalCsv, readRetrievalJsonl, readRetrievalTsv, type RetrievalDataset } from '../tasks/datasets.js';
import { readTextBounded } from '../tasks/lines.js';
import { looksLikeBase64Image } from '../image/formats.js';

export type DataFormat = 'tsv' | 'csv' | 'jsonl' | 'folder';
export const DATA_FORMATS: DataFormat[] = ['tsv', 'csv', 'jsonl', 'folder'];

/** First line of a file (up to 64 KiB), without reading the whole of a multi-GB TSV. */
function firstLine(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(65536);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString('utf8');
    const nl = text.indexOf('\n');
    return nl < 0 ? text : text.slice(0, nl);
  } finally {
    closeSync(fd);
  }
}

/**
 * A folder is a caption folder; .jsonl is JSONL; .csv is CSV; .tsv/.txt is EasyNLP (text, base64 image)
 * when a field of its first line is long base64, else a tab-separated `image<TAB>caption` CSV.
 */
export function detectFormat(path: string): DataFormat {
  if (!existsSync(path)) throw new Error(`data ${path}: no such file or directory`);
  if (statSync(path).isDirectory()) return 'folder';
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.json') return 'jsonl';
  if (ext === '.csv') return 'csv';
  const head = firstLine(path);
  if ((ext === '.tsv' || ext === '.txt') && statSync(path).size === 0) {
    throw new Error(`data ${path}: empty file; expected text<TAB>base64-image (EasyNLP) or image<TAB>caption lines`);
  }
  if ((ext === '.tsv' || ext === '.txt') && head.trim() && !head.includes('\t')) {
    throw new Error(`data ${path}:1: no tab; a ${ext} file needs text<TAB>base64-image (EasyNLP) or image<TAB>caption lines`);
  }
  const fields = head.split('\t');
  const base64 = fields.length === 2 && fields.some((f) => looksLikeBase64Image(f));
  if (base64 || ext === '.tsv') return base64 ? 'tsv' : 'csv';
  throw new Error(`data ${path}: cannot tell the format from the extension; pass it (${DATA_FORMATS.join(', ')})`);
}

/** A caption file holds the captions of one image: a few KiB; 4 MiB is far past any real one. */
const MAX_CAPTION_FILE_BYTES = 4 * 2 ** 20;

function captionsIn(file: string): string[] {
  const lines = readTextBounded(file, 'caption file', MAX_CAPTION_FILE_BYTES).split(/\r?\n/);
  return lines.map((s, i) => {
    const t = s.trim();
    if (t.length > MAX_CAPTION_CHARS) throw new Error(`${file}:${i + 1}: caption of ${t.length} characters, above the limit of ${MAX_CAPTION_CHARS}`);
    return t;
  }).filter(Boolean);
}

/**
 * Caption folder: every image (any depth) with a same-name `.txt` beside it (`cat.jpg` + `cat.txt`);
 * each non-empty line of the .txt is one caption. Images without a .txt are left out and counted.
 */
export function readCaptionFolder(dir: string): RetrievalDataset & { uncaptioned: string[] } {
  const images = imageFilesUnder(dir);
  const ds: RetrievalDataset & { uncaptioned: string[] } = { images: [], texts: [], uncaptioned: [] };
  for (const path of images) {
    const txt = path.slice(0, path.length - extname(path).length) + '.txt';
    const caps = existsSync(txt) ? captionsIn(txt) : [];
    if (!caps.length) {
      ds.uncaptioned.push(path);
      continue;
    }
    const i = ds.images.push({ input: path, name: path }) - 1;
    for (const text of caps) ds.texts.push({ text, image: i });
  }
  if (!ds.texts.length) throw new Error(`caption folder ${dir}: no image with a same-name .txt caption file (found ${images.length} images)`);
  return ds;
}

export interface PairData {
  format: DataFormat;
  dataset: RetrievalDataset;
  /** Notes for the user (images left out for want of a caption, ...). */
  notes: string[];
}

export async function readPairs(path: string, format: DataFormat = detectFormat(path)): Promise<PairData> {
  const notes: string[] = [];
  let dataset: RetrievalDataset;
  switch (format) {
    case 'tsv': dataset = await readRetrievalTsv(path, { dedupe: true }); break;
    case 'csv': dataset = readRetrievalCsv(path); break;
    case 'jsonl': dataset = await readRetrievalJsonl(path); break;
    case 'folder': {
      const f = readCaptionFolder(path);
      if (f.uncaptioned.length) notes.push(`${path}: ${f.uncaptioned.length} images have no .txt caption and are left out`);
      dataset = { images: f.images, texts: f.texts };
      break;
    }
  }
  return { format, dataset, notes };
}
