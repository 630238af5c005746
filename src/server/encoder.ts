// The model behind the server: text and image embedding through one dynamic batcher per tower.
//
// The towers get separate batchers that may run at the same time: image batches spend most of their time in
// JS decoding and resizing, so a text batch's ORT run overlaps them instead of queueing behind them. In a
// 20 s soak (200 clients, 2 cores) that alone served 1.6x the successful model requests of one shared lane,
// and 1.8x with 64-text batches.
import type { ClipModel } from '../runtime/clip-model.js';
import { Batcher, type BatcherStats } from './batcher.js';
import { HttpError, type Upload } from './intake.js';

/** What the server needs from a model; tests pass a wrapper that counts calls. */
export type EncoderModel = Pick<ClipModel, 'encodeTexts' | 'encodeImages' | 'logitScale' | 'dim'> & Partial<Pick<ClipModel, 'score' | 'logitBias'>>;

export interface EncoderOptions {
  /** Images per model call (default 16). */
  maxBatch?: number;
  /** Texts per model call (default 64): a text costs ~1/20 of an image, so batches can be larger. */
  maxTextBatch?: number;
  maxWaitMs?: number;
  /** Most jobs (texts or images) waiting per tower before requests get 429. */
  maxQueue?: number;
  /**
   * Pixels (width x height, before resizing) per image model call, default 64 M. A batch's images are decoded
   * at once, about 3 bytes a pixel: 16 uploads of 40 Mpx (a few hundred KB each as PNG) would take ~1.9 GB.
   */
  maxBatchPixels?: number;
}

export const DEFAULT_MAX_BATCH_PIXELS = 64_000_000;

/** An input the model rejected (undecodable image): the request's fault, so a 400. */
export class BadInputError extends Error {}

export class Encoder {
  readonly texts: Batcher<string, Float32Array>;
  readonly images: Batcher<Upload, Float32Array>;
  readonly maxBatchPixels: number;

  constructor(readonly model: EncoderModel, o: EncoderOptions = {}) {
    const common = { maxWaitMs: o.maxWaitMs ?? 5, maxQueue: o.maxQueue ?? 256 };
    const textBatch = o.maxTextBatch ?? 64;
    const imageBatch = o.maxBatch ?? 16;
    this.texts = new Batcher({
      ...common,
      maxBatch: textBatch,
      run: (texts) => model.encodeTexts(texts, { batchSize: textBatch }),
    });
    this.maxBatchPixels = o.maxBatchPixels ?? DEFAULT_MAX_BATCH_PIXELS;
    this.images = new Batcher({
      ...common,
      maxBatch: imageBatch,
      weight: (u) => u.pixels,
      maxBatchWeight: this.maxBatchPixels,
      run: async (uploads) => {
        const res = await model.encodeImages(uploads.map((u) => u.bytes), { batchSize: imageBatch });
        // One bad upload fails only its own request; encodeImages already isolates it.
        return res.map((r, i) => r.embedding ?? new BadInputError((r.error ?? 'cannot decode image').replace(`<buffer ${i}>`, 'upload')));
      },
    });
  }

  /**
   * Refuse, before anything is queued, a request whose texts could never fit the text queue: a 400 naming
   * the field, where queueing would answer 429 forever.
   */
  checkTexts(n: number, field: string): void {
    const max = this.texts.maxQueue;
    if (n > max) throw new HttpError(400, `${field}: ${n} texts to embed, more than this server's queue holds (${max}, --max-queue)`);
  }

  embedTexts(texts: string[]): Promise<Float32Array[]> {
    return this.texts.submitAll(texts);
  }

  embedImage(upload: Upload): Promise<Float32Array> {
    return this.images.submit(upload);
  }

  get stats(): { text: BatcherStats; image: BatcherStats } {
    return { text: this.texts.stats, image: this.images.stats };
  }
}
