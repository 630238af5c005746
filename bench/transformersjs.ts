// Bench worker for transformers.js: its ONNX exports (fp32 or the _quantized q8 files), its processor and
// tokenizer, used the way its README shows. Loaded only in this worker so the parent never pays for it.
import type { BenchInputs, BenchPaths } from './prepare.js';
import { IMAGE_BATCH, TARGET_S, TEXT77_BATCH, TEXT_BATCH, measureRate, memory, progress, timed, type WorkerResult } from './timing.js';

// Narrow views of the callable objects (their d.ts types the call signatures loosely).
interface TTensor { dims: number[]; data: Float32Array }
type ImageProcessorFn = (images: unknown[]) => Promise<{ pixel_values: TTensor }>;
type TokenizerFn = (texts: string[], opts: { padding: boolean | 'max_length'; truncation: boolean; max_length?: number }) => { input_ids: TTensor; attention_mask: TTensor };
type ModelFn = (inputs: Record<string, unknown>) => Promise<Record<string, TTensor>>;

export async function benchTransformersJs(paths: BenchPaths, inputs: BenchInputs, threads: number, dtype: 'fp32' | 'q8'): Promise<WorkerResult> {
  const log = (m: string) => progress(`transformers.js ${dtype}: ${m}`);
  log('loading');
  const tjs = await import('@huggingface/transformers');
  const { env, AutoProcessor, AutoTokenizer, CLIPVisionModelWithProjection, CLIPTextModelWithProjection, RawImage } = tjs;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = paths.benchDir;
  // Same explicit intra-op thread count as ours; everything else left at transformers.js's defaults.
  const opts = { dtype, device: 'cpu' as const, local_files_only: true, session_options: { intraOpNumThreads: threads } };

  const loadDetail: Record<string, number | string> = {};
  const t0 = performance.now();
  const [vision, visionS] = await timed(() => CLIPVisionModelWithProjection.from_pretrained(paths.modelName, opts));
  const [text, textS] = await timed(() => CLIPTextModelWithProjection.from_pretrained(paths.modelName, opts));
  const [processor, procS] = await timed(() => AutoProcessor.from_pretrained(paths.modelName, { local_files_only: true }));
  const [tokenizer, tokS] = await timed(() => AutoTokenizer.from_pretrained(paths.modelName, { local_files_only: true }));
  const loadS = (performance.now() - t0) / 1000;
  Object.assign(loadDetail, { visionS, textS, processorS: procS, tokenizerS: tokS, method: 'from_pretrained x4' });
  const rssAfterLoadMB = memory().rssMB;
  log(`loaded in ${loadS.toFixed(2)} s`);

  const visionFn = vision as unknown as ModelFn;
  const textFn = text as unknown as ModelFn;
  const processorFn = processor as unknown as ImageProcessorFn;
  const tokenizerFn = tokenizer as unknown as TokenizerFn;

  const batchPaths = inputs.images.slice(0, IMAGE_BATCH);
  const prep = async (ps: string[]) => (await processorFn(await Promise.all(ps.map((p) => RawImage.read(p))))).pixel_values;

  log('preprocess only');
  const prepAll = async () => {
    for (let s = 0; s < inputs.images.length; s += IMAGE_BATCH) await prep(inputs.images.slice(s, s + IMAGE_BATCH));
    return inputs.images.length;
  };
  await prep(batchPaths);
  const preprocess = await measureRate(prepAll, { targetS: TARGET_S / 2 });

  log('image tower, model only');
  const pixel_values = await prep(batchPaths);
  const embedRows = (t: TTensor) => t.dims[0]!;
  const first = await visionFn({ pixel_values }); // doubles as warm-up
  const sampleImage = Array.from(first.image_embeds!.data.subarray(0, first.image_embeds!.dims[1]));
  const imageModel = await measureRate(async () => embedRows((await visionFn({ pixel_values })).image_embeds!), { targetS: TARGET_S });

  log('files -> embeddings');
  // The straightforward loop a user writes: read, process, run, one batch after another.
  const encodeFiles = async (ps: string[]) => {
    let n = 0;
    for (let s = 0; s < ps.length; s += IMAGE_BATCH) {
      const out = await visionFn({ pixel_values: await prep(ps.slice(s, s + IMAGE_BATCH)) });
      n += embedRows(out.image_embeds!);
    }
    return n;
  };
  await encodeFiles(batchPaths);
  const files = await measureRate(() => encodeFiles(inputs.images), { targetS: TARGET_S });

  log('texts');
  const caps = inputs.captions;
  const encodeTexts = async () => {
    let n = 0;
    for (let s = 0; s < caps.length; s += TEXT_BATCH) {
      const enc = tokenizerFn(caps.slice(s, s + TEXT_BATCH), { padding: true, truncation: true });
      n += embedRows((await textFn({ ...enc })).text_embeds!);
    }
    return n;
  };
  const enc0 = tokenizerFn(caps.slice(0, TEXT_BATCH), { padding: true, truncation: true });
  const textTokens = enc0.input_ids.dims[1]!;
  const t0out = await textFn({ ...enc0 }); // warm-up
  const sampleText = Array.from(t0out.text_embeds!.data.subarray(0, t0out.text_embeds!.dims[1]));
  const texts = await measureRate(encodeTexts, { targetS: TARGET_S });

  log('text tower at 77 tokens, model only');
  const enc77 = tokenizerFn(caps.slice(0, TEXT77_BATCH), { padding: 'max_length', truncation: true, max_length: 77 });
  const run77 = async () => embedRows((await textFn({ ...enc77 })).text_embeds!);
  if (enc77.input_ids.dims[1] !== 77) throw new Error(`expected 77-token rows, got ${enc77.input_ids.dims[1]}`);
  await run77(); // new shape: warm up again
  const textModel77 = await measureRate(run77, { targetS: TARGET_S / 2 });

  await (vision as unknown as { dispose(): Promise<unknown> }).dispose();
  await (text as unknown as { dispose(): Promise<unknown> }).dispose();
  return {
    worker: `tjs-${dtype}`, side: 'transformers.js', dtype, threads,
    loadS, loadDetail, rssAfterLoadMB,
    imageModel, preprocess, files, texts, textTokens, textModel77,
    peakRssMB: memory().peakRssMB,
    sample: { image: sampleImage, text: sampleText },
  };
}
