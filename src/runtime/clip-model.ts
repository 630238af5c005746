// A loaded CLIP model: sessions built lazily per tower, batching, and per-input error isolation.
import type * as ortTypes from 'onnxruntime-node';
import { openCheckpoint, type Checkpoint, type OpenOptions } from '../models/checkpoint.js';
import { buildImageGraph, buildTextGraph } from '../models/clip-graph.js';
import { createSession, ort, type Device } from './session.js';
import { makeImagePreprocessor, type ImageInput, type ImagePreprocessor } from './preprocess.js';
import { makeTokenizer } from './tokenize.js';
import type { TextTokenizer } from '../text/types.js';

export interface LoadOptions extends OpenOptions {
  device?: Device;
  threads?: number;
  /** Fused ORT attention kernels (default true); false builds plain ONNX ops. */
  fused?: boolean;
}

export interface EncodeOptions {
  /** L2-normalize (default true); false returns the projected features. */
  normalize?: boolean;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
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
  private preprocessorCache?: ImagePreprocessor;

  private constructor(readonly checkpoint: Checkpoint, private readonly opts: LoadOptions) {}

  static async load(path: string, opts: LoadOptions = {}): Promise<ClipModel> {
    return new ClipModel(openCheckpoint(path, opts), opts);
  }

  /** exp(logit_scale): multiplies cosine similarities into logits. */
  get logitScale(): number {
    return Math.exp(this.checkpoint.logitScale);
  }

  get dim(): number {
    return this.checkpoint.config.projectionDim;
  }

  get tokenizer(): TextTokenizer {
    this.tokenizerCache ??= makeTokenizer(this.checkpoint);
    return this.tokenizerCache;
  }

  get preprocessor(): ImagePreprocessor {
    this.preprocessorCache ??= makeImagePreprocessor(this.checkpoint.preprocess);
    return this.preprocessorCache;
  }

  private session(kind: 'image' | 'text'): Promise<ortTypes.InferenceSession> {
    const so = { device: this.opts.device, threads: this.opts.threads };
    const fused = this.opts.fused ?? true;
    if (kind === 'image') {
      this.imageSession ??= createSession(buildImageGraph(this.checkpoint.config, this.checkpoint.weights, { fused }), so);
      return this.imageSession;
    }
    this.textSession ??= createSession(buildTextGraph(this.checkpoint.config, this.checkpoint.weights, { fused }), so);
    return this.textSession;
  }

  /** Run the image tower on preprocessed pixels [n, 3, S, S]; returns one row per image. */
  async encodePixels(pixels: Float32Array, n: number, normalize = true): Promise<Float32Array[]> {
    const s = this.checkpoint.preprocess.size;
    const session = await this.session('image');
    const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [n, 3, s, s]) });
    return rows(out[normalize ? 'image_embeds' : 'image_features']!.data as Float32Array, n);
  }

  /** Run the text tower on token ids [n, T] (int64) pooled at the given per-row positions. */
  async encodeTokens(ids: BigInt64Array, n: number, length: number, eotIndex: number[], normalize = true): Promise<Float32Array[]> {
    const session = await this.session('text');
    const pool = BigInt64Array.from(eotIndex.map((t, b) => BigInt(b * length + t)));
    const out = await session.run({
      input_ids: new ort.Tensor('int64', ids, [n, length]),
      pool_index: new ort.Tensor('int64', pool, [n]),
    });
    return rows(out[normalize ? 'text_embeds' : 'text_features']!.data as Float32Array, n);
  }

  async encodeTexts(texts: string[], opts: EncodeOptions = {}): Promise<Float32Array[]> {
    const batchSize = opts.batchSize ?? 64;
    // Sort by token count so each batch pads to a similar length; results go back in input order.
    const encoded = texts.map((t, i) => ({ i, ids: this.tokenizer.encode(t) }));
    const order = [...encoded].sort((a, b) => a.ids.length - b.ids.length);
    const result: Float32Array[] = new Array(texts.length);
    for (let start = 0; start < order.length; start += batchSize) {
      const chunk = order.slice(start, start + batchSize);
      const batch = this.tokenizer.encodeBatch(chunk.map((c) => texts[c.i]!), { pad: 'longest' });
      const embs = await this.encodeTokens(batch.inputIds, batch.batch, batch.length, batch.eotIndex, opts.normalize ?? true);
      chunk.forEach((c, k) => (result[c.i] = embs[k]!));
      opts.onProgress?.(Math.min(start + batchSize, texts.length), texts.length);
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
    const prepare = async (start: number) => {
      const idx = [...Array(Math.min(batchSize, inputs.length - start)).keys()].map((k) => start + k);
      const pixels = await Promise.all(idx.map(async (i) => {
        try {
          return await this.preprocessor(inputs[i]!, results[i]!.input);
        } catch (e) {
          results[i]!.error = (e as Error).message;
          return undefined;
        }
      }));
      return { idx, pixels };
    };
    let next = inputs.length ? prepare(0) : undefined;
    let done = 0;
    for (let start = 0; start < inputs.length; start += batchSize) {
      const { idx, pixels } = await next!;
      next = start + batchSize < inputs.length ? prepare(start + batchSize) : undefined;
      const ok = idx.filter((_, k) => pixels[k]);
      if (ok.length) {
        const buf = new Float32Array(ok.length * per);
        let k = 0;
        idx.forEach((_, j) => { if (pixels[j]) buf.set(pixels[j]!, per * k++); });
        const embs = await this.encodePixels(buf, ok.length, opts.normalize ?? true);
        ok.forEach((i, j) => (results[i]!.embedding = embs[j]));
      }
      done += idx.length;
      opts.onProgress?.(done, inputs.length);
    }
    return results;
  }

  async release(): Promise<void> {
    for (const s of [this.imageSession, this.textSession]) if (s) await (await s).release();
  }
}

function rows(data: Float32Array, n: number): Float32Array[] {
  const d = data.length / n;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}
