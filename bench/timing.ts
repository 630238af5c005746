// Shared measurement helpers for the bench workers.
import { loadavg } from 'node:os';

export interface Rate {
  /** Items (images or texts) processed in the timed runs. */
  items: number;
  seconds: number;
  perSec: number;
  /** Timed calls of the measured function (warm-up excluded). */
  runs: number;
  /** Median over runs of each run's items/s. */
  medianPerSec: number;
  /**
   * Fastest run's items/s: what the table shows. Outside load only ever slows a run down, so on a shared
   * machine the best run is the closest to the code's own speed (the timeit convention).
   */
  bestPerSec: number;
  /** Average cores this process kept busy (CPU time / wall time). Below the thread count = stalls or contention. */
  cpuCores: number;
  /** Load average (1 min) when the measurement ended: above the core count, other processes competed. */
  loadAvg: number;
}

export interface MeasureOptions {
  /** Keep calling until this much time has passed... */
  targetS: number;
  /** ...but always at least this many timed calls (slow variants still get a real sample). */
  minRuns?: number;
  maxRuns?: number;
}

/** Time `fn` (which returns how many items it processed) repeatedly; the caller does the warm-up. */
export async function measureRate(fn: () => Promise<number>, opts: MeasureOptions): Promise<Rate> {
  const minRuns = opts.minRuns ?? 1;
  const maxRuns = opts.maxRuns ?? Infinity;
  let items = 0;
  const perRun: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let elapsed = 0;
  while (perRun.length < maxRuns && (perRun.length < minRuns || elapsed < opts.targetS)) {
    const r0 = performance.now();
    const n = await fn();
    const now = performance.now();
    items += n;
    perRun.push(n / ((now - r0) / 1000));
    elapsed = (now - t0) / 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    items, seconds: elapsed, perSec: items / elapsed, runs: perRun.length, medianPerSec: median(perRun), bestPerSec: Math.max(...perRun),
    cpuCores: (cpu.user + cpu.system) / 1e6 / elapsed, loadAvg: loadavg()[0]!,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, (performance.now() - t0) / 1000];
}

/** Peak and current resident set of this process, MiB. maxRSS is in KiB on Linux and macOS. */
export function memory(): { peakRssMB: number; rssMB: number } {
  return { peakRssMB: process.resourceUsage().maxRSS / 1024, rssMB: process.memoryUsage().rss / 2 ** 20 };
}

export function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/** Measurement lengths: ~10 s per rate keeps 3 workers x 5 rates inside the ~6 min budget on 2 cores. */
export const TARGET_S = Number(process.env.CLIP_BENCH_SECONDS ?? 10);
export const IMAGE_BATCH = 32;
export const TEXT_BATCH = 256;
/** The 77-token model-only row uses a smaller batch: 256 x 77 costs 10-20 s a run on 2 cores. */
export const TEXT77_BATCH = 64;

/** What a worker prints (one JSON line on stdout). */
export interface WorkerResult {
  worker: string;
  side: 'ours' | 'transformers.js';
  dtype: 'fp32' | 'q8' | 'int8';
  threads: number;
  /** Build + session creation (ours) / from_pretrained of both towers, processor and tokenizer (theirs). */
  loadS: number;
  /**
   * Ours only: the load of a fresh process with an empty ONNX cache (build from the weights + write the
   * cache + sessions). `loadS` is then the load the same checkpoint gets on every later run (cache hit).
   */
  coldLoadS?: number;
  loadDetail: Record<string, number | string>;
  rssAfterLoadMB: number;
  /** Image tower alone on preprocessed pixels, batch 32. */
  imageModel: Rate;
  /** Decode + preprocess only (no model), batches of 32. */
  preprocess: Rate;
  /** Files -> embeddings, batch 32, as a user of each library would write it. */
  files: Rate;
  /** `clip embed --out x.tsv` job: files -> EasyNLP TSV on disk (ours only). */
  embedTsv?: Rate;
  /** Captions -> embeddings (tokenize + text tower), one batch of 256. */
  texts: Rate;
  /** Row length the text tower was fed for the caption batch. */
  textTokens: number;
  /** Text tower alone on TEXT77_BATCH rows padded to 77 (same shape both sides: model speed without padding effects). */
  textModel77: Rate;
  peakRssMB: number;
  /** First image's and first caption's embeddings, for a cross-implementation sanity check. */
  sample: { image: number[]; text: number[] };
}
