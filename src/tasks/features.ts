// Image features of a labeled dataset, cached on disk through the resumable embed job: the features of
// one (model, dataset) pair live in `DIR/<key>.npy` (+ .meta.jsonl, .progress), so a rerun — or a rerun
// after Ctrl-C — embeds only what is missing. The key hashes the model's identity and every image's
// resolved path, size and modification time, so a changed image or another model gets a new file.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ClipModel } from '../runtime/clip-model.js';
import { clipCacheRoot } from '../io/cache-root.js';
import type { LabeledDataset } from './datasets.js';
import { runEmbedJob } from './embed-job.js';
import type { InputItem } from './inputs.js';
import { takeRows, type FeatureMatrix } from './linear-probe.js';
import { npyMetaPath, parseNpyHeader } from './writers.js';

export const defaultFeaturesDir = (env: NodeJS.ProcessEnv = process.env): string => join(clipCacheRoot(env), 'features');

export interface LabeledFeatures {
  /** Rows for the samples that embedded, in dataset order. */
  x: FeatureMatrix;
  labels: number[];
  inputs: string[];
  failed: { input: string; error: string }[];
  /** The .npy holding them. */
  file: string;
  /** Images an earlier run had already embedded. */
  reused: number;
}

export interface FeatureOptions {
  /** Cache folder (default `$CLIP_CACHE/features`). */
  dir?: string;
  /** What identifies the model (path, dtype, ...): part of the cache key. */
  modelKey: Record<string, unknown>;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Cache key of a dataset's features under a model. Stats every image (cheap next to embedding it). */
export function featuresKey(modelKey: Record<string, unknown>, paths: readonly string[]): string {
  const h = createHash('sha256').update(JSON.stringify(modelKey));
  for (const p of paths) {
    let stamp = 'missing';
    try {
      const s = statSync(p);
      stamp = `${s.size}:${s.mtimeMs}`;
    } catch { /* a missing image fails in the embed job, with its own error */ }
    h.update(`\n${p}\0${stamp}`);
  }
  return h.digest('hex').slice(0, 24);
}

/** Read a float32 [rows, dim] .npy and its row ids (the embed job's output). */
export function readFeatureNpy(file: string): { x: FeatureMatrix; ids: string[] } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 4096));
    readSync(fd, head, 0, head.length, 0);
    const h = parseNpyHeader(head);
    if (h.descr !== '<f4' || h.fortranOrder || h.shape.length !== 2) throw new Error(`${file}: expected a C-order float32 [rows, dim] array, got ${h.descr} ${JSON.stringify(h.shape)}`);
    const [rows, dim] = h.shape as [number, number];
    if (h.dataOffset + rows * dim * 4 > size) throw new Error(`${file}: header says ${rows} × ${dim} but the file is ${size} bytes`);
    const data = new Float32Array(rows * dim);
    readSync(fd, new Uint8Array(data.buffer), 0, rows * dim * 4, h.dataOffset);
    const ids = readFileSync(npyMetaPath(file), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { input: string }).input);
    if (ids.length < rows) throw new Error(`${npyMetaPath(file)}: ${ids.length} rows listed, the .npy has ${rows}`);
    return { x: { data, rows, dim }, ids: ids.slice(0, rows) };
  } finally {
    closeSync(fd);
  }
}

/** Embed (or reuse) the images of `ds` and return their L2-normalized features with labels. */
export async function labeledFeatures(model: ClipModel, ds: LabeledDataset, opts: FeatureOptions): Promise<LabeledFeatures> {
  const paths = ds.samples.map((s) => resolve(s.input));
  const dir = opts.dir ?? defaultFeaturesDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${featuresKey(opts.modelKey, paths)}.npy`);
  const unique = [...new Set(paths)];
  const items: InputItem[] = unique.map((p) => ({ kind: 'image', id: p, path: p }));
  const job = await runEmbedJob(model, {
    items, out: file, normalize: true, batchSize: opts.batchSize, modelId: JSON.stringify(opts.modelKey), onProgress: opts.onProgress,
  });
  const { x: all, ids } = readFeatureNpy(file);
  const rowOf = new Map(ids.map((id, i) => [id, i]));
  const errorOf = new Map(job.errors.map((e) => [e.input, e.error]));
  const keep: number[] = [];
  const labels: number[] = [];
  const inputs: string[] = [];
  const failed: LabeledFeatures['failed'] = [];
  paths.forEach((p, i) => {
    const r = rowOf.get(p);
    if (r === undefined) failed.push({ input: p, error: errorOf.get(p) ?? `${p}: no embedding` });
    else { keep.push(r); labels.push(ds.samples[i]!.label); inputs.push(p); }
  });
  return { x: takeRows(all, keep), labels, inputs, failed, file, reused: job.skipped };
}
