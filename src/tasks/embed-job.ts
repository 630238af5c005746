// Batch embedding job: input items -> chunks -> encodeImages / encodeTexts -> an output writer, resumable.
//
// Durability: after each chunk the rows are appended and fsynced, then one line is appended to
// `OUT.progress` (and fsynced) with the byte size of every output file and the ids the chunk completed.
// On a rerun the output files are truncated back to the sizes of the last complete line, so whatever a
// kill left behind after it (rows without a marker, a torn marker line) is dropped and redone: each input
// ends up in the output exactly once. Inputs that failed are not marked done, so a rerun retries them.
import { existsSync, fsyncSync, openSync, closeSync, readFileSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { writeAll } from '../io/write-all.js';
import type { ClipModel } from '../runtime/clip-model.js';
import type { ImageInput } from '../runtime/preprocess.js';
import { readCell, type InputItem, type InvalidInput } from './inputs.js';
import { formatFor, openWriter, type EmbeddingRow, type OutputFormat, type WriterState } from './writers.js';

export type EmbedModel = Pick<ClipModel, 'dim' | 'encodeImages' | 'encodeTexts'>;

export interface EmbedJobOptions {
  items: InputItem[];
  /** Rows that could not become inputs; they are listed with the errors. */
  invalid?: InvalidInput[];
  out: string;
  /** Default: from the extension of `out`. */
  format?: OutputFormat;
  /** Continue from `OUT.progress` (default true); false starts over. */
  resume?: boolean;
  /** Model batch size (default: the model's own). */
  batchSize?: number;
  /** Inputs per durable chunk (default 256): the most work a kill can lose. */
  chunkSize?: number;
  normalize?: boolean;
  /** Recorded in the progress file so that resuming with another model is refused. */
  modelId?: string;
  /** Counts only this run's work: inputs done earlier are not in `total`. */
  onProgress?: (done: number, total: number) => void;
}

export interface InputError { input: string; kind: 'image' | 'text' | 'row'; error: string }

export interface EmbedJobResult {
  format: OutputFormat;
  /** Output files (the .npy and its .meta.jsonl, or the one TSV/JSONL file). */
  files: string[];
  progressFile: string;
  /** Written only when there were errors. */
  errorsFile: string;
  total: number;
  /** Inputs an earlier run already wrote. */
  skipped: number;
  /** Rows this run added. */
  embedded: number;
  /** Rows in the output now. */
  rows: number;
  errors: InputError[];
  seconds: number;
}

export const progressPath = (out: string): string => `${out}.progress`;
export const errorsPath = (out: string): string => `${out}.errors.jsonl`;

const keyOf = (kind: string, id: string) => `${kind}\0${id}`;

interface ProgressHeader { clipEmbedProgress: 1; format: OutputFormat; dim: number; normalize: boolean; model?: string }
interface ProgressMark extends WriterState { images: string[]; texts: string[] }

interface SavedProgress { header?: ProgressHeader; last?: ProgressMark; done: Set<string>; validBytes: number }

/**
 * Read a progress file, stopping at the first line that is incomplete or does not parse: every prefix of
 * marks is a consistent state (outputs get truncated to its last mark), so the tail can always be dropped.
 */
function readProgress(path: string): SavedProgress {
  const text = readFileSync(path);
  const res: SavedProgress = { done: new Set(), validBytes: 0 };
  let pos = 0;
  for (let nl = text.indexOf(10, pos); nl >= 0; nl = text.indexOf(10, pos)) {
    let rec: any;
    try {
      rec = JSON.parse(text.toString('utf8', pos, nl));
    } catch {
      break;
    }
    if (!res.header) {
      if (rec?.clipEmbedProgress !== 1) throw new Error(`${path} is not a clip embed progress file`);
      res.header = rec;
    } else {
      if (!Array.isArray(rec?.sizes)) break;
      res.last = rec as ProgressMark;
      for (const id of res.last.images) res.done.add(keyOf('image', id));
      for (const id of res.last.texts) res.done.add(keyOf('text', id));
    }
    pos = nl + 1;
    res.validBytes = pos;
  }
  return res;
}

function checkCompatible(saved: ProgressHeader, now: ProgressHeader, path: string): void {
  const diff: string[] = [];
  if (saved.format !== now.format) diff.push(`format ${saved.format}, not ${now.format}`);
  if (saved.dim !== now.dim) diff.push(`${saved.dim}-dim embeddings, not ${now.dim}`);
  if (saved.normalize !== now.normalize) diff.push(saved.normalize ? 'normalized embeddings, not raw' : 'raw features, not normalized');
  if (saved.model && now.model && saved.model !== now.model) diff.push(`model ${saved.model}, not ${now.model}`);
  if (diff.length) throw new Error(`${path} records a job with ${diff.join('; ')}: pass --no-resume to start over, or choose another output`);
}

/** Append-only JSON lines, each fsynced. */
class JsonLog {
  private readonly fd: number;
  constructor(path: string, mode: 'a' | 'w') {
    this.fd = openSync(path, mode);
  }
  write(recs: unknown[]): void {
    if (!recs.length) return;
    const buf = Buffer.from(recs.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
    writeAll(this.fd, buf);
    fsyncSync(this.fd);
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Open the progress log for this run; returns what is already done and the writer state to resume from. */
function openProgress(out: string, header: ProgressHeader, resume: boolean): { log: JsonLog; done: Set<string>; state?: WriterState } {
  const path = progressPath(out);
  if (resume && existsSync(path)) {
    const saved = readProgress(path);
    if (saved.header) {
      checkCompatible(saved.header, header, path);
      truncateSync(path, saved.validBytes);
      const log = new JsonLog(path, 'a');
      const state = saved.last ? { sizes: saved.last.sizes, rows: saved.last.rows } : undefined;
      return { log, done: saved.done, state };
    }
    // A torn header: the job was killed before any row could be written, so start afresh.
  } else if (resume && existsSync(out) && statSync(out).size > 0) {
    throw new Error(`${out} exists but ${path} does not, so which inputs it holds is unknown: pass --no-resume to overwrite it`);
  }
  // The header goes to disk before the outputs are created: a kill in between leaves a progress file with
  // no marks, which a rerun treats as a fresh start, never as an unexplained output.
  const log = new JsonLog(path, 'w');
  log.write([header]);
  return { log, done: new Set() };
}

/** Texts of one chunk; if the batch fails, each text is retried alone so one bad text fails alone. */
async function encodeTextsIsolated(model: EmbedModel, texts: string[], opts: { batchSize?: number; normalize?: boolean }): Promise<Array<Float32Array | Error>> {
  try {
    return await model.encodeTexts(texts, opts);
  } catch {
    const out: Array<Float32Array | Error> = [];
    for (const t of texts) {
      try {
        out.push((await model.encodeTexts([t], opts))[0]!);
      } catch (e) {
        out.push(e as Error);
      }
    }
    return out;
  }
}

/** Error text that names the input: byte inputs come back from encodeImages as `<buffer k>`. */
function nameError(msg: string, id: string, bufferIndex?: number): string {
  const named = bufferIndex === undefined ? msg : msg.replaceAll(`<buffer ${bufferIndex}>`, id);
  return named.includes(id) ? named : `${id}: ${named}`;
}

export async function runEmbedJob(model: EmbedModel, opts: EmbedJobOptions): Promise<EmbedJobResult> {
  const t0 = Date.now();
  const format = opts.format ?? formatFor(opts.out);
  const normalize = opts.normalize ?? true;
  const chunkSize = Math.max(1, opts.chunkSize ?? 256);
  const enc = { batchSize: opts.batchSize, normalize };
  const header: ProgressHeader = { clipEmbedProgress: 1, format, dim: model.dim, normalize, ...(opts.modelId ? { model: opts.modelId } : {}) };

  const progress = openProgress(opts.out, header, opts.resume ?? true);
  const writer = openWriter(format, opts.out, model.dim, progress.state);
  const errorsFile = errorsPath(opts.out);
  // Errors are rewritten each run: failed inputs are retried, so this run's list is the complete one.
  const errorLog = new JsonLog(errorsFile, 'w');
  const errors: InputError[] = (opts.invalid ?? []).map((v) => ({ input: v.id, kind: v.kind, error: v.error }));
  errorLog.write(errors);

  const todo = opts.items.filter((it) => !progress.done.has(keyOf(it.kind, it.id)));
  const skipped = opts.items.length - todo.length;
  const startRows = writer.state().rows;
  const report = (d: number) => opts.onProgress?.(d, todo.length);
  report(0);

  try {
    for (let start = 0; start < todo.length; start += chunkSize) {
      const chunk = todo.slice(start, start + chunkSize);
      const rows: Array<EmbeddingRow | undefined> = new Array(chunk.length);
      const errs: Array<InputError | undefined> = new Array(chunk.length);

      const imageAt: number[] = [];
      const images: ImageInput[] = [];
      const texts: number[] = [];
      chunk.forEach((it, k) => {
        if (it.kind === 'text') return void texts.push(k);
        try {
          images.push('path' in it ? it.path : readCell(it.cell, it.id));
          imageAt.push(k);
        } catch (e) {
          errs[k] = { input: it.id, kind: 'image', error: nameError((e as Error).message, it.id) };
        }
      });

      if (images.length) {
        const res = await model.encodeImages(images, { ...enc, onProgress: (d) => report(start + d) });
        res.forEach((r, j) => {
          const k = imageAt[j]!;
          const id = chunk[k]!.id;
          if (r.embedding) rows[k] = { id, kind: 'image', embedding: r.embedding };
          else errs[k] = { input: id, kind: 'image', error: nameError(r.error ?? 'no embedding', id, typeof images[j] === 'string' ? undefined : j) };
        });
      }
      if (texts.length) {
        const embs = await encodeTextsIsolated(model, texts.map((k) => (chunk[k] as { text: string }).text), enc);
        embs.forEach((e, j) => {
          const k = texts[j]!;
          const id = chunk[k]!.id;
          if (e instanceof Error) errs[k] = { input: id, kind: 'text', error: nameError(`cannot embed text: ${e.message}`, id) };
          else rows[k] = { id, kind: 'text', embedding: e };
        });
      }

      const done = rows.filter((r): r is EmbeddingRow => r !== undefined);
      // Order matters: rows durable first, then the marker that vouches for them.
      writer.append(done);
      progress.log.write([{
        ...writer.state(),
        images: done.filter((r) => r.kind === 'image').map((r) => r.id),
        texts: done.filter((r) => r.kind === 'text').map((r) => r.id),
      } satisfies ProgressMark]);
      const chunkErrors = errs.filter((e): e is InputError => e !== undefined);
      errorLog.write(chunkErrors);
      errors.push(...chunkErrors);
      report(start + chunk.length);
    }
  } finally {
    writer.close();
    progress.log.close();
    errorLog.close();
  }
  // FILE.progress stays: it records which inputs FILE holds, so a later run over more inputs adds only the new ones.
  if (!errors.length) unlinkSync(errorsFile);

  const rows = writer.state().rows;
  return {
    format,
    files: writer.files,
    progressFile: progressPath(opts.out),
    errorsFile,
    total: opts.items.length,
    skipped,
    embedded: rows - startRows,
    rows,
    errors,
    seconds: (Date.now() - t0) / 1000,
  };
}
