// A loaded CLIP model: sessions built lazily per tower, batching, and per-input error isolation.
import type * as ortTypes from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Checkpoint, OpenOptions } from '../models/checkpoint.js';
import type { ScoreRule } from '../models/family.js';
import { createSession, ort, type Device, type SessionOptions } from './session.js';
import {
  isCompleteEntry, onnxCacheEnabled, onnxCacheEntry, removeCacheEntry, writeCacheEntry,
  type CacheEntry, type OnnxCacheEvent, type Tower,
} from './onnx-cache.js';
import { makeImagePreprocessor, type ImageInput, type ImagePreprocessor, type PreprocessorOptions } from './preprocess.js';
import { PreprocessPool } from './preprocess-pool.js';
import type { ImageLimits } from '../image/decode.js';
import { firstNonFinite } from '../io/tensor.js';
import { makeTokenizer } from './tokenize.js';
import { needsClipVocab, withClipVocab } from './clip-vocab.js';
import { openWithHubFiles } from './hub-files.js';
import type { TextTokenizer, TokenBatch } from '../text/types.js';
import type { TowerSpec } from '../models/checkpoint.js';
import { l2normalize } from './vectors.js';
import { resolveModel, type ResolveOptions } from '../hub/resolve.js';
import { DEFAULT_MODEL } from '../hub/bundled.js';
import { toOnnxModel } from '../graph/onnx.js';
import type { Graph } from '../graph/graph.js';
import { quantizeGraph, storeWeightsAsHalf } from '../graph/quantize.js';

export interface LoadOptions extends OpenOptions {
  device?: Device;
  threads?: number;
  /** Fused ORT attention kernels (default true); false builds plain ONNX ops. */
  fused?: boolean;
  /** Weights: fp32 (default); int8 = weights quantized per channel at load, activations per row (graph/quantize.ts); fp16 = stored as half. */
  dtype?: 'fp32' | 'fp16' | 'int8';
  /** Hub download settings (endpoint, token, cache, offline); env variables are read otherwise. */
  hub?: ResolveOptions;
  /**
   * Keep the ONNX built from the weights on disk ($CLIP_CACHE/onnx, see runtime/onnx-cache.ts) and create
   * later sessions from it. Default: CLIP_ONNX_CACHE, else on (off under `node --test`).
   */
  cache?: boolean;
  /** Called on each cache lookup, store or invalidation (hit, miss, write, invalid, skip). */
  onCache?: (e: OnnxCacheEvent) => void;
  /** Image size limits (pixels, file bytes, decode memory); default: CLIP_MAX_IMAGE_PIXELS & co., see image/decode.ts. */
  imageLimits?: ImageLimits;
  /**
   * Opt-in fast decode of large JPEGs: libvips decodes at reduced scale (shrink-on-load) down to a short edge
   * of twice the tower's input, then the exact pipeline runs on that. Not bit-exact with the reference
   * preprocessing (see the bench for its cosine to the exact pipeline); default false.
   */
  fastDecode?: boolean;
  /**
   * Worker threads that decode + preprocess images in encodeImages. Default: the cores inference leaves free
   * while images are prepared (all of them, unless decoding overlaps inference), when that is at least 2;
   * 0 or 1 keeps everything on the main thread.
   */
  decodeWorkers?: number;
}

export interface EncodeOptions {
  /** L2-normalize (default true); false returns the projected features. */
  normalize?: boolean;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Decode the next image batch while the current one runs (default: only when ORT leaves a core free). */
  overlap?: boolean;
}

export interface ImageResult {
  input: string;
  embedding?: Float32Array;
  error?: string;
}

export class ClipModel {
  private imageSession?: Promise<ortTypes.InferenceSession>;
  private textSession?: Promise<ortTypes.InferenceSession>;
  private tokenizerCache?: TextTokenizer;
  /** Why CLIP's BPE vocabulary could not be had for a checkpoint that ships none (thrown when texts are encoded). */
  private vocabProblem?: Error;
  private preprocessorCache?: ImagePreprocessor;
  private pool?: PreprocessPool;
  /** Towers whose session came from the ONNX cache. */
  cacheHits = 0;

  private constructor(readonly checkpoint: Checkpoint, private readonly opts: LoadOptions) {}

  /**
   * A local directory or file, a hub id / alias (downloaded once into the HF cache, then offline), or a
   * model bundled with the package (default: emoji-clip).
   */
  static async load(path: string = DEFAULT_MODEL, opts: LoadOptions = {}): Promise<ClipModel> {
    const dir = await resolveModel(path, { ...opts.hub, format: opts.format, onnxVariant: opts.onnxVariant });
    // A checkpoint may need small files of another hub repo (open_clip's HF text tower: runtime/hub-files.ts).
    let ck = await openWithHubFiles(dir, opts, opts.hub);
    // OpenAI / open_clip checkpoints ship no vocabulary: CLIP's comes from the hub cache (runtime/clip-vocab.ts).
    // When it cannot be had (offline, hub down), images still embed; texts raise that error.
    let vocabProblem: Error | undefined;
    if (needsClipVocab(ck)) {
      try {
        ck = await withClipVocab(ck, opts.hub);
      } catch (e) {
        vocabProblem = e as Error;
      }
    }
    const model = new ClipModel(ck, opts);
    model.vocabProblem = vocabProblem;
    // A bad tokenizer or preprocessor file is refused now, before any tower is built or cached.
    if (model.checkpoint.tokenizerDir) void model.tokenizer;
    void model.preprocessor;
    return model;
  }

  /** exp(logit_scale): multiplies cosine similarities into logits. */
  get logitScale(): number {
    return Math.exp(this.checkpoint.logitScale);
  }

  /** Added to the scaled similarities before a sigmoid score (the checkpoint's logit_bias); 0 when it has none. */
  get logitBias(): number {
    return this.checkpoint.logitBias ?? 0;
  }

  /** How similarities become class scores (the family's rule): a softmax over the labels, or a sigmoid per label. */
  get score(): ScoreRule {
    return this.checkpoint.score;
  }

  get dim(): number {
    return this.checkpoint.projectionDim;
  }

  get tokenizer(): TextTokenizer {
    if (this.vocabProblem) throw this.vocabProblem;
    this.tokenizerCache ??= makeTokenizer(this.checkpoint);
    return this.tokenizerCache;
  }

  get preprocessor(): ImagePreprocessor {
    this.preprocessorCache ??= makeImagePreprocessor(this.checkpoint.preprocess, this.preprocessorOptions());
    return this.preprocessorCache;
  }

  private preprocessorOptions(): PreprocessorOptions {
    return {
      source: `${this.checkpoint.preprocess.hfConfig ? 'preprocessor_config.json' : 'image config'} of ${this.checkpoint.path}`,
      limits: this.opts.imageLimits,
      fastDecode: this.opts.fastDecode,
    };
  }

  /** The worker pool for a call of `count` images, or undefined to prepare them on this thread. */
  private decodePool(count: number, overlap: boolean): PreprocessPool | undefined {
    const cores = availableParallelism();
    const free = overlap ? cores - (this.opts.threads ?? cores) : cores;
    const want = this.opts.decodeWorkers;
    if (want !== undefined && !(Number.isInteger(want) && want >= 0)) throw new Error(`decodeWorkers must be a non-negative integer, got ${want}`);
    const size = Math.min(want ?? free, 16);
    // Starting workers costs a few hundred ms: not worth it for a call of a handful of images.
    if (size < 2 || count < 2 * size) return this.pool;
    if (!this.pool || this.pool.size !== size) {
      void this.pool?.close();
      this.pool = new PreprocessPool(this.checkpoint.preprocess, this.preprocessorOptions(), size, this.preprocessor);
    }
    return this.pool;
  }

  private session(kind: Tower): Promise<ortTypes.InferenceSession> {
    if (kind === 'image') return (this.imageSession ??= this.open('image', this.checkpoint.image));
    return (this.textSession ??= this.open('text', this.checkpoint.text));
  }

  private async open(tower: Tower, t: TowerSpec): Promise<ortTypes.InferenceSession> {
    const so: SessionOptions = { device: this.opts.device, threads: this.opts.threads };
    if (t.kind === 'onnx') {
      try {
        return await createSession(t.path, so);
      } catch (e) {
        throw new Error(`${t.path}: ONNX Runtime cannot load this ${tower} tower: ${ortReason(e, t.path)}`, { cause: e });
      }
    }
    const emit = (event: OnnxCacheEvent['event'], path: string, reason?: string) => this.opts.onCache?.({ tower, event, path, reason });
    // Everything that changes the built graph; the device and thread count only affect the session.
    const build = { fused: this.opts.fused ?? true, dtype: this.opts.dtype ?? 'fp32' };
    const entry = onnxCacheEnabled(this.opts.cache) ? await onnxCacheEntry(tower, t.source, build) : undefined;
    if (entry && existsSync(entry.path)) {
      if (isCompleteEntry(entry)) {
        try {
          const s = await createSession(entry.path, so);
          this.cacheHits++;
          emit('hit', entry.path);
          return s;
        } catch (e) {
          emit('invalid', entry.path, (e as Error).message.split('\n')[0]);
        }
      } else {
        emit('invalid', entry.path, 'incomplete file');
      }
      removeCacheEntry(entry);
    }
    if (entry) emit('miss', entry.path);
    const model = this.materialize(t, build.fused, entry, emit);
    try {
      return await createSession(model, so);
    } catch (e) {
      // Never leave behind an entry ORT refused; the same error would follow on every load.
      if (typeof model === 'string') removeCacheEntry(entry!);
      // The checkpoint is what the user named; the cache file is our business.
      const reason = ortReason(e, typeof model === 'string' ? model : undefined);
      throw new Error(`${this.checkpoint.path}: ONNX Runtime refused the ${tower} tower built from this checkpoint: ${reason}`, { cause: e });
    }
  }

  /**
   * Build the tower and store it in the cache entry (returns its path) or, failing that, serialize it in
   * memory. Kept out of the async `open` so that no reference to the graph, whose weight arrays are the
   * size of the model, survives into the awaits of session creation: GC may free them meanwhile.
   */
  private materialize(t: Extract<TowerSpec, { kind: 'built' }>, fused: boolean, entry: CacheEntry | undefined,
    emit: (event: OnnxCacheEvent['event'], path: string, reason?: string) => void): string | Uint8Array {
    const g = this.transform(t.build({ fused }));
    if (entry) {
      const failed = writeCacheEntry(entry, g);
      if (!failed) {
        emit('write', entry.path);
        return entry.path;
      }
      emit('skip', entry.path, failed);
    }
    return toOnnxModel(g);
  }

  private transform(g: Graph): Graph {
    if (this.opts.dtype === 'int8') quantizeGraph(g);
    else if (this.opts.dtype === 'fp16') storeWeightsAsHalf(g);
    return g;
  }

  private async run(session: ortTypes.InferenceSession, tower: Tower, feeds: Record<string, ortTypes.Tensor>): Promise<ortTypes.InferenceSession.ReturnType> {
    try {
      return await session.run(feeds);
    } catch (e) {
      throw new Error(`${this.checkpoint.path}: ONNX Runtime failed running the ${tower} tower: ${ortReason(e, undefined)}`, { cause: e });
    }
  }

  /** Pick the normalized output when the graph has one; otherwise normalize here (ONNX exports). */
  private pick(out: ortTypes.InferenceSession.ReturnType, tower: 'image' | 'text', n: number, normalize: boolean): Float32Array[] {
    const names = this.checkpoint.outputs;
    const norm = tower === 'image' ? names.imageNormalized : names.textNormalized;
    const raw = tower === 'image' ? names.image : names.text;
    if (normalize && norm) return rows(out[norm]!.data as Float32Array, n);
    const r = rows(out[raw]!.data as Float32Array, n);
    return normalize ? r.map(l2normalize) : r;
  }

  /**
   * Run the image tower on preprocessed pixels [n, 3, S, S]; returns one row per image. Throws when a row is
   * not finite (encodeImages reports that per image instead).
   */
  async encodePixels(pixels: Float32Array, n: number, normalize = true): Promise<Float32Array[]> {
    return finiteRows(await this.runImages(pixels, n, normalize), 'image');
  }

  private async runImages(pixels: Float32Array, n: number, normalize: boolean): Promise<Float32Array[]> {
    const s = this.checkpoint.preprocess.size;
    const session = await this.session('image');
    const out = await this.run(session, 'image', { pixel_values: new ort.Tensor('float32', pixels, [n, 3, s, s]) });
    return this.pick(out, 'image', n, normalize);
  }

  /** Run the text tower on a tokenized batch. Throws when a row is not finite. */
  async encodeBatch(b: TokenBatch, normalize = true): Promise<Float32Array[]> {
    return finiteRows(await this.runTexts(b, normalize), 'text');
  }

  private async runTexts(b: TokenBatch, normalize: boolean): Promise<Float32Array[]> {
    const session = await this.session('text');
    // The family says what its text tower takes (models/family.ts: TextInputs).
    const feeds: Record<string, ortTypes.Tensor> = {};
    for (const [name, f] of Object.entries(this.checkpoint.textInputs.feeds(b))) feeds[name] = new ort.Tensor('int64', f.data, f.dims);
    return this.pick(await this.run(session, 'text', feeds), 'text', b.batch, normalize);
  }

  async encodeTexts(texts: string[], opts: EncodeOptions = {}): Promise<Float32Array[]> {
    const batchSize = opts.batchSize ?? 64;
    // Sort by token count so each batch pads to a similar length; results go back in input order.
    const encoded = texts.map((t, i) => ({ i, ids: this.tokenizer.encode(t) }));
    const order = [...encoded].sort((a, b) => a.ids.length - b.ids.length);
    // Where padding cannot change a row's output (causal pooling at EOT, or a masked BERT), a batch is
    // also cut where lengths jump, so short captions are not padded to the longest one of the batch.
    const inputs = this.checkpoint.textInputs;
    const independent = inputs.padding === 'longest' && inputs.rowsIndependent;
    const sizes = independent ? lengthBuckets(order.map((o) => o.ids.length), batchSize) : fixedBatches(order.length, batchSize);
    const result: Float32Array[] = new Array(texts.length);
    let start = 0;
    for (const size of sizes) {
      const chunk = order.slice(start, start + size);
      const batch = this.tokenizer.pad(chunk.map((c) => c.ids), { pad: inputs.padding });
      const embs = await this.runTexts(batch, opts.normalize ?? true);
      chunk.forEach((c, k) => {
        if (!isFinite32(embs[k]!)) throw new Error(`text ${JSON.stringify(clipText(texts[c.i]!))}: ${NON_FINITE}`);
        result[c.i] = embs[k]!;
      });
      start += size;
      opts.onProgress?.(start, texts.length);
    }
    return result;
  }

  /**
   * Embed images (paths or encoded bytes). A bad input is reported in its result and never stops the
   * batch. Decoding of the next batch overlaps inference of the current one.
   */
  async encodeImages(inputs: ImageInput[], opts: EncodeOptions = {}): Promise<ImageResult[]> {
    const batchSize = opts.batchSize ?? 32;
    const s = this.checkpoint.preprocess.size;
    const per = 3 * s * s;
    const results: ImageResult[] = inputs.map((inp, i) => ({ input: typeof inp === 'string' ? inp : `<buffer ${i}>` }));
    // A bad preprocessing config is the model's error, not each image's: it throws here, once.
    const local = this.preprocessor;
    const prepare = async (start: number) => {
      const idx = [...Array(Math.min(batchSize, inputs.length - start)).keys()].map((k) => start + k);
      const pixels = await Promise.all(idx.map(async (i) => {
        try {
          return await preprocessor(inputs[i]!, results[i]!.input);
        } catch (e) {
          results[i]!.error = (e as Error).message;
          return undefined;
        }
      }));
      return { idx, pixels };
    };
    // Preparing the next batch while ORT runs only pays when a core is free for it: with ORT on every core,
    // the JS work preempts one of its threads and the whole parallel GEMM waits for it (measured on 2 cores:
    // 11.8 images/s overlapped vs 13.1 one after the other, ViT-B/32).
    const cores = availableParallelism();
    const overlap = opts.overlap ?? cores > (this.opts.threads ?? cores);
    const pool = this.decodePool(inputs.length, overlap);
    const preprocessor: ImagePreprocessor = pool ? (input, name) => pool.run(input, name) : local;
    let next = inputs.length ? prepare(0) : undefined;
    let done = 0;
    for (let start = 0; start < inputs.length; start += batchSize) {
      const { idx, pixels } = await next!;
      next = overlap && start + batchSize < inputs.length ? prepare(start + batchSize) : undefined;
      const ok = idx.filter((_, k) => pixels[k]);
      if (ok.length) {
        const buf = new Float32Array(ok.length * per);
        let k = 0;
        idx.forEach((_, j) => { if (pixels[j]) buf.set(pixels[j]!, per * k++); });
        const embs = await this.runImages(buf, ok.length, opts.normalize ?? true);
        ok.forEach((i, j) => {
          if (isFinite32(embs[j]!)) results[i]!.embedding = embs[j];
          else results[i]!.error = `${results[i]!.input}: ${NON_FINITE}`;
        });
      }
      if (!next && start + batchSize < inputs.length) next = prepare(start + batchSize);
      done += idx.length;
      opts.onProgress?.(done, inputs.length);
    }
    return results;
  }

  async release(): Promise<void> {
    // A tower that failed to open has nothing to release (its error was reported where it was used).
    for (const s of [this.imageSession, this.textSession]) if (s) await (await s.catch(() => undefined))?.release();
    await this.pool?.close();
    this.pool = undefined;
  }
}

/** Stored or printed embeddings must be numbers: NaN/Infinity would become `null` in JSON and poison an index. */
const NON_FINITE = 'the model gave a non-finite embedding (NaN or Infinity); its weights or config are broken';

const isFinite32 = (v: Float32Array): boolean => firstNonFinite(v) < 0;

function finiteRows(rows: Float32Array[], kind: 'image' | 'text'): Float32Array[] {
  const bad = rows.findIndex((r) => !isFinite32(r));
  if (bad >= 0) throw new Error(`${kind} ${bad} of the batch: ${NON_FINITE}`);
  return rows;
}

const clipText = (t: string): string => (t.length > 60 ? `${t.slice(0, 57)}...` : t);

/** ORT's message in one line, without the path of a file it was handed (a cache entry, or the model itself). */
function ortReason(e: unknown, path: string | undefined): string {
  let msg = ((e as Error)?.message ?? String(e)).split('\n')[0]!.trim();
  if (path) msg = msg.split(path).join('<model>');
  return msg.length > 300 ? `${msg.slice(0, 297)}...` : msg;
}

function rows(data: Float32Array, n: number): Float32Array[] {
  const d = data.length / n;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}

/** Batch sizes that cover n rows, batchSize at a time. */
export function fixedBatches(n: number, batchSize: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < n; start += batchSize) out.push(Math.min(batchSize, n - start));
  return out;
}

/** Fixed cost of one text-tower run, in padded token rows (session call, small-matrix overheads). */
export const RUN_COST_TOKENS = 8;

/**
 * Batch sizes over rows sorted by ascending length that minimize the padded tokens fed to the tower plus
 * RUN_COST_TOKENS per run, at most `batchSize` rows each: an exact dynamic program over the cut points
 * (O(n * batchSize)), so one long caption never drags a batch of short ones to its length.
 */
export function lengthBuckets(sortedLengths: readonly number[], batchSize: number): number[] {
  const n = sortedLengths.length;
  const best = new Float64Array(n + 1).fill(Infinity);
  const cut = new Int32Array(n + 1);
  best[0] = 0;
  for (let i = 1; i <= n; i++) {
    const len = sortedLengths[i - 1]!;
    for (let j = Math.max(0, i - batchSize); j < i; j++) {
      const c = best[j]! + RUN_COST_TOKENS + (i - j) * len;
      if (c < best[i]!) {
        best[i] = c;
        cut[i] = j;
      }
    }
  }
  const sizes: number[] = [];
  for (let i = n; i > 0; i = cut[i]!) sizes.push(i - cut[i]!);
  return sizes.reverse();
}
