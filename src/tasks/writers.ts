// Output writers for batch embedding: EasyNLP TSV, .npy (+ row metadata) and JSONL.
// Every writer appends, fsyncs after each chunk, and reports the byte size of each file it appends to.
// The job records those sizes as its resume marker and truncates back to them after a kill, so rows
// written after the last marker are dropped and redone, never duplicated.
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import { extname } from 'node:path';

export type OutputFormat = 'tsv' | 'npy' | 'jsonl';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['tsv', 'npy', 'jsonl'];

/** The format an explicit choice names, or else the output's extension (.tsv, .npy, .jsonl / .ndjson). */
export function formatFor(path: string, explicit?: string): OutputFormat {
  if (explicit) {
    if (!(OUTPUT_FORMATS as readonly string[]).includes(explicit)) throw new Error(`unknown output format "${explicit}" (expected ${OUTPUT_FORMATS.join(', ')})`);
    return explicit as OutputFormat;
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.tsv') return 'tsv';
  if (ext === '.npy') return 'npy';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new Error(`cannot tell the output format of ${path} from its extension: use .tsv, .npy or .jsonl, or name the format`);
}

export interface EmbeddingRow { id: string; kind: 'image' | 'text'; embedding: Float32Array }

/** What the resume marker stores: committed byte size of each file in `files`, and the row count. */
export interface WriterState { sizes: number[]; rows: number }

export interface EmbeddingWriter {
  readonly format: OutputFormat;
  /** Files appended to, in the order of `state().sizes`. */
  readonly files: string[];
  state(): WriterState;
  /** Append rows and fsync: when this returns, the rows are on disk. */
  append(rows: EmbeddingRow[]): void;
  close(): void;
}

/** The metadata file written beside a .npy: one JSON line per row, `{"row","input","kind"}`. */
export const npyMetaPath = (out: string): string => `${out}.meta.jsonl`;

/**
 * Open a writer. Without `resume` the files are created empty; with it they are truncated to the sizes
 * of the last marker, which must not exceed what is on disk (else the files were changed by someone else).
 */
export function openWriter(format: OutputFormat, out: string, dim: number, resume?: WriterState): EmbeddingWriter {
  if (format === 'npy') return new NpyWriter(out, dim, resume);
  return new LineWriter(format, out, resume);
}

// ---- number and field formatting ----

/**
 * Shortest decimal that reads back as the same float32, as numpy's `str(np.float32(x))` (what EasyNLP's
 * predictor writes) gives; 9 significant digits always suffice for a float32.
 */
export function formatFloat32(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const f = Math.fround(x);
  const reads = (p: number) => Math.fround(Number(f.toPrecision(p))) === f;
  // Round-tripping is monotone in the digit count (p+1 digits are never farther off than p), and most
  // embedding values need 7 to 9 digits: start at 7 and walk down or up rather than up from 1.
  let p = 7;
  if (reads(p)) while (p > 1 && reads(p - 1)) p--;
  else p = reads(8) ? 8 : 9;
  return String(Number(f.toPrecision(p)));
}

/** Ids go in one TSV field: tab, newline, CR and backslash are escaped as \t \n \r \\. */
export function escapeTsvField(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

export function unescapeTsvField(s: string): string {
  return s.replace(/\\([\\tnr])/g, (_, c: string) => (c === '\\' ? '\\' : c === 't' ? '\t' : c === 'n' ? '\n' : '\r'));
}

// ---- durable append-only files ----

class AppendFile {
  readonly fd: number;
  size: number;

  constructor(readonly path: string, resumeSize?: number) {
    if (resumeSize === undefined) {
      this.fd = openSync(path, 'w');
      this.size = 0;
      return;
    }
    const have = existsSync(path) ? statSync(path).size : -1;
    if (have < resumeSize) {
      throw new Error(`${path} is ${have < 0 ? 'missing' : `${have} bytes`}, but the resume marker says ${resumeSize} bytes were written: ` +
        'it was changed outside this job; delete its .progress file or pass --no-resume to start over');
    }
    // 'r+', not 'a': positional writes (the .npy header) are ignored in append mode on Linux.
    this.fd = openSync(path, 'r+');
    ftruncateSync(this.fd, resumeSize);
    this.size = resumeSize;
  }

  append(buf: Uint8Array): void {
    this.writeAt(buf, this.size);
    this.size += buf.length;
  }

  writeAt(buf: Uint8Array, pos: number): void {
    for (let off = 0; off < buf.length;) off += writeSync(this.fd, buf, off, buf.length - off, pos + off);
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

// ---- TSV and JSONL ----

/**
 * EasyNLP TSV: like EasyNLP's CLIP predictor with `--output_schema=image_feat|text_feat --append_cols=id`,
 * one line per input, the D values tab-separated, then the id as the last column; no header.
 * JSONL: one `{"input":ID,"kind":"image"|"text","embedding":[...]}` per line.
 */
class LineWriter implements EmbeddingWriter {
  private readonly file: AppendFile;
  private rows: number;
  readonly files: string[];

  constructor(readonly format: 'tsv' | 'jsonl', out: string, resume?: WriterState) {
    this.file = new AppendFile(out, resume?.sizes[0]);
    this.rows = resume?.rows ?? 0;
    this.files = [out];
  }

  private line(r: EmbeddingRow): string {
    const vals = Array.from(r.embedding, formatFloat32);
    if (this.format === 'tsv') return `${vals.join('\t')}\t${escapeTsvField(r.id)}\n`;
    const json = vals.map((v) => (/^-?(nan|inf)$/.test(v) ? 'null' : v));
    return `{"input":${JSON.stringify(r.id)},"kind":"${r.kind}","embedding":[${json.join(',')}]}\n`;
  }

  append(rows: EmbeddingRow[]): void {
    if (!rows.length) return;
    this.file.append(Buffer.from(rows.map((r) => this.line(r)).join(''), 'utf8'));
    this.file.sync();
    this.rows += rows.length;
  }

  state(): WriterState {
    return { sizes: [this.file.size], rows: this.rows };
  }

  close(): void {
    this.file.close();
  }
}

// ---- .npy ----

/** A fixed 128-byte header (a multiple of 64, as the format asks) leaves room for any row count, so it is rewritten in place. */
export const NPY_HEADER_BYTES = 128;

/** NPY v1.0 header for a C-order float32 little-endian [rows, dim] array. */
export function npyHeader(rows: number, dim: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const pad = NPY_HEADER_BYTES - 10 - dict.length - 1;
  if (pad < 0) throw new Error(`npy header for shape (${rows}, ${dim}) does not fit in ${NPY_HEADER_BYTES} bytes`);
  const buf = Buffer.alloc(NPY_HEADER_BYTES);
  buf.write('\x93NUMPY', 0, 'latin1');
  buf[6] = 1; // major version
  buf[7] = 0; // minor version
  buf.writeUInt16LE(NPY_HEADER_BYTES - 10, 8);
  buf.write(dict + ' '.repeat(pad) + '\n', 10, 'latin1');
  return buf;
}

export interface NpyHeader { descr: string; fortranOrder: boolean; shape: number[]; dataOffset: number }

/** Parse an NPY header (versions 1, 2 and 3). */
export function parseNpyHeader(bytes: Uint8Array): NpyHeader {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error('not an .npy file (bad magic)');
  const major = buf[6]!;
  const [lenBytes, len] = major === 1 ? [2, buf.readUInt16LE(8)] : [4, buf.readUInt32LE(8)];
  const start = 8 + lenBytes;
  if (buf.length < start + len) throw new Error('truncated .npy header');
  const dict = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + len);
  const descr = /'descr':\s*'([^']+)'/.exec(dict)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(dict)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(dict)?.[1];
  if (!descr || !fortran || shape === undefined) throw new Error(`malformed .npy header: ${dict.trim()}`);
  return {
    descr,
    fortranOrder: fortran === 'True',
    shape: shape.split(',').map((s) => s.trim()).filter(Boolean).map(Number),
    dataOffset: start + len,
  };
}

/**
 * Rows go straight into the final .npy after a fixed-size header that is rewritten with the row count
 * after every chunk: the file is a valid array of the committed rows at every marker, and a later run
 * can append to it. Row i's input is line i of the `.meta.jsonl` file beside it.
 */
class NpyWriter implements EmbeddingWriter {
  readonly format = 'npy' as const;
  readonly files: string[];
  private readonly data: AppendFile;
  private readonly meta: AppendFile;
  private rows: number;

  constructor(out: string, private readonly dim: number, resume?: WriterState) {
    this.files = [out, npyMetaPath(out)];
    this.data = new AppendFile(out, resume?.sizes[0]);
    this.meta = new AppendFile(this.files[1]!, resume?.sizes[1]);
    this.rows = resume?.rows ?? 0;
    if (!resume) {
      this.data.append(npyHeader(0, dim));
    } else {
      const expect = NPY_HEADER_BYTES + this.rows * dim * 4;
      if (this.data.size !== expect) throw new Error(`${out}: resume marker says ${this.rows} rows of ${dim} (${expect} bytes), but ${this.data.size} bytes are recorded`);
      // The header may have been rewritten for rows after the marker: put it back to the committed count.
      this.data.writeAt(npyHeader(this.rows, dim), 0);
    }
    this.data.sync();
  }

  append(rows: EmbeddingRow[]): void {
    if (!rows.length) return;
    const buf = Buffer.alloc(rows.length * this.dim * 4);
    rows.forEach((r, i) => {
      if (r.embedding.length !== this.dim) throw new Error(`${r.id}: embedding has ${r.embedding.length} values, the .npy has ${this.dim} columns`);
      for (let j = 0; j < this.dim; j++) buf.writeFloatLE(r.embedding[j]!, (i * this.dim + j) * 4);
    });
    const meta = rows.map((r, i) => JSON.stringify({ row: this.rows + i, input: r.id, kind: r.kind }) + '\n').join('');
    this.data.append(buf);
    this.meta.append(Buffer.from(meta, 'utf8'));
    this.rows += rows.length;
    this.data.writeAt(npyHeader(this.rows, this.dim), 0);
    this.data.sync();
    this.meta.sync();
  }

  state(): WriterState {
    return { sizes: [this.data.size, this.meta.size], rows: this.rows };
  }

  close(): void {
    this.data.close();
    this.meta.close();
  }
}
