// Validation retrieval on a saved checkpoint: the model is loaded from the checkpoint directory just
// written, exactly as `clip eval retrieval` would load it, so the epoch's numbers are the ones anyone
// gets from the saved files. Only decoding is saved across epochs: the validation images are
// preprocessed once (the checkpoint's preprocessor does not change), and their batches are fed to the
// loaded model the way ClipModel.encodeImages batches them, so the embeddings are bit for bit the same.
import type { RetrievalDataset } from '../tasks/datasets.js';
import { evalRetrieval, type RetrievalReport } from '../tasks/eval-retrieval.js';
import type { EvalModel } from '../tasks/eval-zeroshot.js';
import { ClipModel, type EncodeOptions, type ImageResult } from '../runtime/clip-model.js';
import { pipelineFor, type ImageInput } from '../runtime/preprocess.js';
import { PixelStore } from './pixels.js';

export class Validator {
  private store?: PixelStore;
  private specKey?: string;

  constructor(readonly dataset: RetrievalDataset, private readonly budgetBytes: number, private readonly threads?: number) {}

  async run(checkpointDir: string, onProgress?: (stage: string, done: number, total: number) => void): Promise<RetrievalReport> {
    // Each epoch's checkpoint is loaded once: caching its ONNX would only cost a write and leave junk behind.
    const model = await ClipModel.load(checkpointDir, { threads: this.threads, cache: false });
    try {
      const spec = model.checkpoint.preprocess;
      const key = JSON.stringify(spec);
      if (!this.store || key !== this.specKey) {
        this.store = new PixelStore(this.dataset.images, pipelineFor(spec), spec.size, this.budgetBytes);
        this.specKey = key;
        await this.store.fill((d, t) => onProgress?.('decoding validation images', d, t));
      }
      const store = this.store;
      const images = this.dataset.images.map((im) => im.input);
      const adapter: EvalModel = {
        logitScale: model.logitScale,
        encodeTexts: (texts, o) => model.encodeTexts(texts, o),
        encodeImages: (inputs, o) => encodeFromStore(model, store, images, inputs, o),
      };
      return await evalRetrieval(adapter, this.dataset, { onProgress: (stage, d, t) => onProgress?.(`validation ${stage}`, d, t) });
    } finally {
      await model.release();
    }
  }
}

/** ClipModel.encodeImages' batching (same batch boundaries, failed images left out) over stored pixels. */
async function encodeFromStore(model: ClipModel, store: PixelStore, images: ImageInput[], inputs: ImageInput[], o: EncodeOptions = {}): Promise<ImageResult[]> {
  if (inputs.length !== images.length || inputs.some((x, i) => x !== images[i])) throw new Error('validation: images asked for are not the validation set');
  const batchSize = o.batchSize ?? 32;
  const results: ImageResult[] = inputs.map((inp, i) => ({ input: typeof inp === 'string' ? inp : `<buffer ${i}>` }));
  for (let start = 0; start < inputs.length; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, inputs.length - start) }, (_, k) => start + k);
    const { pixels, kept } = await store.gather(idx);
    idx.forEach((i) => {
      const e = store.error(i);
      if (e) results[i]!.error = e;
    });
    if (kept.length) {
      const embs = await model.encodePixels(pixels, kept.length, o.normalize ?? true);
      kept.forEach((k, j) => (results[idx[k]!]!.embedding = embs[j]));
    }
    o.onProgress?.(start + idx.length, inputs.length);
  }
  return results;
}
