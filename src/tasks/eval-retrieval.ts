// Image-text retrieval recall: image→text and text→image R@k over a set of images with several captions
// each, ranked by cosine similarity. A query is a hit at k when ANY of its positives is in its top k.
import type { RetrievalDataset } from './datasets.js';
import type { EvalModel, StageProgress } from './eval-zeroshot.js';
import { bestRank, clampK, recallsAt } from './metrics.js';
import { forEachDotRow } from './score-matrix.js';

export interface RetrievalOptions {
  /** Cut-offs (default 1, 5, 10); each is clamped to its pool size. */
  ks?: number[];
  batchSize?: number;
  onProgress?: StageProgress;
}

export interface RetrievalReport {
  ks: number[];
  /**
   * images/texts: in the dataset; failedImages: could not be read; droppedTexts: captions of failed images,
   * left out of both directions; imageQueries/textQueries: the queries actually scored (an image with no
   * caption is only a text→image distractor).
   */
  counts: { images: number; texts: number; failedImages: number; droppedTexts: number; imageQueries: number; textQueries: number };
  /** Recall fractions in [0, 1] keyed `R@k`; null when there was no query. */
  imageToText: Record<string, number | null>;
  textToImage: Record<string, number | null>;
  /** Mean of all recalls of both directions (EasyNLP's "mean recall" for ks 1, 5, 10). */
  mean: number | null;
  failed: { input: string; error: string }[];
  /** 1-based rank of the best positive of each query. */
  ranks: {
    imageToText: { image: string; rank: number }[];
    textToImage: { text: string; image: string; rank: number }[];
  };
}

export async function evalRetrieval(model: EvalModel, dataset: RetrievalDataset, opts: RetrievalOptions = {}): Promise<RetrievalReport> {
  const ks = opts.ks ?? [1, 5, 10];
  ks.forEach((k) => clampK(k, 1)); // validate before the slow part
  if (!dataset.images.length || !dataset.texts.length) throw new Error('retrieval needs at least one image and one caption');

  const res = await model.encodeImages(dataset.images.map((im) => im.input), {
    normalize: true, batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('images', d, t),
  });
  // encodeImages names byte inputs `<buffer i>`; reports use the dataset's names (file:line).
  const failed = res.flatMap((r, i) => (r.embedding ? [] : [{
    input: dataset.images[i]!.name, error: (r.error ?? 'no embedding').replace(r.input, dataset.images[i]!.name),
  }]));
  // Images that failed leave the pool, and so do their captions: they would be queries with no findable positive.
  const imageRow = new Map<number, number>();
  const imgEmb: Float32Array[] = [];
  res.forEach((r, i) => { if (r.embedding) imageRow.set(i, imgEmb.push(r.embedding) - 1); });
  const texts = dataset.texts.filter((t) => imageRow.has(t.image));
  const textEmb = texts.length ? await model.encodeTexts(texts.map((t) => t.text), {
    normalize: true, batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('texts', d, t),
  }) : [];

  const positives: number[][] = imgEmb.map(() => []);
  texts.forEach((t, j) => positives[imageRow.get(t.image)!]!.push(j));
  const rowNames: string[] = [];
  imageRow.forEach((_, i) => rowNames.push(dataset.images[i]!.name));

  // Each direction is scored from its own side, one row per query, reduced to a rank on the fly.
  const i2t: RetrievalReport['ranks']['imageToText'] = [];
  await forEachDotRow(imgEmb, textEmb, (row, i) => {
    if (positives[i]!.length) i2t.push({ image: rowNames[i]!, rank: bestRank(row, positives[i]!) + 1 });
  });
  const t2i: RetrievalReport['ranks']['textToImage'] = [];
  await forEachDotRow(textEmb, imgEmb, (row, j) => {
    const image = imageRow.get(texts[j]!.image)!;
    t2i.push({ text: texts[j]!.text, image: rowNames[image]!, rank: bestRank(row, [image]) + 1 });
  });

  const imageToText = recallsAt(i2t.map((q) => q.rank - 1), ks);
  const textToImage = recallsAt(t2i.map((q) => q.rank - 1), ks);
  const all = [...Object.values(imageToText), ...Object.values(textToImage)];
  return {
    ks,
    counts: {
      images: dataset.images.length, texts: dataset.texts.length, failedImages: failed.length,
      droppedTexts: dataset.texts.length - texts.length, imageQueries: i2t.length, textQueries: t2i.length,
    },
    imageToText,
    textToImage,
    mean: all.every((x) => x !== null) ? (all as number[]).reduce((a, b) => a + b, 0) / all.length : null,
    failed,
    ranks: { imageToText: i2t, textToImage: t2i },
  };
}
