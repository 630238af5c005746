// Bench workers for 12 MP photos (4000x3000 JPEGs, see prepare.ts bigPhotos): decode + preprocess and
// files -> embeddings, ours (exact decode, then the opt-in fast decode with its cosine to exact) next to
// transformers.js fp32. Separate workers, so the big decodes never inflate the main workers' peak RSS.
import type { BenchPaths } from './prepare.js';
import { IMAGE_BATCH, TARGET_S, measureRate, memory, progress, type Rate } from './timing.js';

export interface PhotoRates {
  /** Decode + preprocess only (no model), one batch of 32 at a time. */
  preprocess: Rate;
  /** Files -> embeddings, batch 32. */
  files: Rate;
}

export interface PhotosResult {
  worker: 'ours-12mp' | 'tjs-12mp';
  threads: number;
  exact: PhotoRates;
  /** Ours only: exact, files -> embeddings with decoding kept on the main thread (decodeWorkers: 0). */
  exactMainThread?: Rate;
  /** Ours only: LoadOptions.fastDecode / --fast-decode. */
  fast?: PhotoRates & { cosine: { min: number; mean: number; photos: number } };
  peakRssMB: number;
}

const runs = { targetS: TARGET_S, minRuns: 1 };

export async function benchOursPhotos(paths: BenchPaths, photos: { distinct: string[]; images: string[] }, threads: number): Promise<PhotosResult> {
  const { ClipModel } = await import('../src/index.js');
  const measure = async (fastDecode: boolean, decodeWorkers?: number): Promise<PhotoRates & { embeddings: Float32Array[] }> => {
    const log = (m: string) => progress(`ours 12 MP ${fastDecode ? 'fast decode' : 'exact'}${decodeWorkers === 0 ? ', main thread' : ''}: ${m}`);
    log('loading');
    const m = await ClipModel.load(paths.modelDir, { threads, format: 'weights', fastDecode, decodeWorkers });
    const encode = async (ps: string[]) => {
      const res = await m.encodeImages(ps, { batchSize: IMAGE_BATCH });
      const bad = res.find((r) => r.error);
      if (bad) throw new Error(bad.error);
      return res.map((r) => r.embedding!);
    };
    const embeddings = await encode(photos.distinct); // warm-up (sessions), and the embeddings to compare
    log('decode + preprocess only');
    const preprocess = decodeWorkers === 0 ? undefined! : await measureRate(async () => {
      await Promise.all(photos.images.map((p) => m.preprocessor(p, p)));
      return photos.images.length;
    }, runs);
    log('files -> embeddings');
    const files = await measureRate(async () => (await encode(photos.images)).length, runs);
    await m.release();
    return { preprocess, files, embeddings };
  };
  const exact = await measure(false);
  const mainThread = await measure(false, 0);
  const fast = await measure(true);
  const cos = exact.embeddings.map((e, i) => e.reduce((s, v, k) => s + v * fast.embeddings[i]![k]!, 0));
  return {
    worker: 'ours-12mp', threads,
    exact: { preprocess: exact.preprocess, files: exact.files },
    exactMainThread: mainThread.files,
    fast: {
      preprocess: fast.preprocess, files: fast.files,
      cosine: { min: Math.min(...cos), mean: cos.reduce((a, b) => a + b, 0) / cos.length, photos: cos.length },
    },
    peakRssMB: memory().peakRssMB,
  };
}

interface TTensor { dims: number[]; data: Float32Array }

export async function benchTjsPhotos(paths: BenchPaths, photos: { distinct: string[]; images: string[] }, threads: number): Promise<PhotosResult> {
  const log = (m: string) => progress(`transformers.js 12 MP: ${m}`);
  log('loading');
  const { env, AutoProcessor, CLIPVisionModelWithProjection, RawImage } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = paths.benchDir;
  const vision = await CLIPVisionModelWithProjection.from_pretrained(paths.modelName, {
    dtype: 'fp32', device: 'cpu', local_files_only: true, session_options: { intraOpNumThreads: threads },
  });
  const processor = await AutoProcessor.from_pretrained(paths.modelName, { local_files_only: true });
  const processorFn = processor as unknown as (images: unknown[]) => Promise<{ pixel_values: TTensor }>;
  const visionFn = vision as unknown as (inputs: Record<string, unknown>) => Promise<Record<string, TTensor>>;
  const prep = async (ps: string[]) => (await processorFn(await Promise.all(ps.map((p) => RawImage.read(p))))).pixel_values;
  // The same loop as the main transformers.js worker: read, process, run, one batch after another.
  const encodeFiles = async (ps: string[]) => {
    let n = 0;
    for (let s = 0; s < ps.length; s += IMAGE_BATCH) n += (await visionFn({ pixel_values: await prep(ps.slice(s, s + IMAGE_BATCH)) })).image_embeds!.dims[0]!;
    return n;
  };
  await encodeFiles(photos.distinct); // warm-up
  log('decode + preprocess only');
  const preprocess = await measureRate(async () => (await prep(photos.images)).dims[0]!, runs);
  log('files -> embeddings');
  const files = await measureRate(() => encodeFiles(photos.images), runs);
  await (vision as unknown as { dispose(): Promise<unknown> }).dispose();
  return { worker: 'tjs-12mp', threads, exact: { preprocess, files }, peakRssMB: memory().peakRssMB };
}

/** Lines for the bench's text output. */
export function renderPhotos(ours: PhotosResult | undefined, theirs: PhotosResult | undefined, cpuModel: string): string {
  const f = (r: Rate | undefined) => (r ? r.bestPerSec.toFixed(2) : 'n/a');
  const ratio = (a: Rate | undefined, b: Rate | undefined) => (a && b ? `${(a.bestPerSec / b.bestPerSec).toFixed(2)}x` : 'n/a');
  const load = Math.max(...[ours, theirs].flatMap((w) => (w ? [w.exact.files, w.exact.preprocess, ...(w.fast ? [w.fast.files, w.fast.preprocess] : [])] : [])).map((r) => r.loadAvg));
  const out = [
    `12 MP photos (4000x3000 JPEG q90, ${BIG_NOTE}), images/s, best run; ${cpuModel}, load average up to ${load.toFixed(1)}:`,
    `  decode + preprocess only (ours: main thread): ours exact ${f(ours?.exact.preprocess)}, ours fast decode ${f(ours?.fast?.preprocess)}, transformers.js ${f(theirs?.exact.preprocess)} (ours exact / theirs ${ratio(ours?.exact.preprocess, theirs?.exact.preprocess)})`,
    `  files -> embeddings:      ours exact ${f(ours?.exact.files)} (${f(ours?.exactMainThread)} decoding on the main thread only), ours fast decode ${f(ours?.fast?.files)}, transformers.js ${f(theirs?.exact.files)} (ours exact / theirs ${ratio(ours?.exact.files, theirs?.exact.files)}, fast / theirs ${ratio(ours?.fast?.files, theirs?.exact.files)})`,
  ];
  if (ours?.fast) out.push(`  cos(fast decode, exact) over ${ours.fast.cosine.photos} photos: min ${ours.fast.cosine.min.toFixed(5)}, mean ${ours.fast.cosine.mean.toFixed(5)}`);
  return out.join('\n');
}

const BIG_NOTE = 'fixture photos upscaled, batch 32, fp32';
