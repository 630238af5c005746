// One call from images and labels to predictions, for library users who want CLIP's zero-shot answer without
// assembling a classifier (transformers.js' pipeline and open_clip's create_model_and_transforms play this role).
import type { ClipModel, EncodeOptions } from '../runtime/clip-model.js';
import type { ImageInput } from '../runtime/preprocess.js';
import { loadTemplates } from './templates.js';
import { buildClassifier, predict } from './zeroshot.js';

export interface ClassifyOptions extends Pick<EncodeOptions, 'batchSize' | 'onProgress'> {
  /** Prompt templates with `{}` for the label, or a built-in set's name (`ensemble`, `zh`, ...). Default: the label itself. */
  templates?: string[] | string;
}

export type Classification =
  | { input: string; label: string; scores: Record<string, number>; ranking: string[] }
  | { input: string; error: string };

/** Scores over `labels` for each image (prompt-ensembled when several templates are given): a softmax, or one sigmoid per label for SigLIP. */
export async function classify(model: ClipModel, images: ImageInput[], labels: string[], opts: ClassifyOptions = {}): Promise<Classification[]> {
  const templates = typeof opts.templates === 'string' ? loadTemplates(opts.templates).templates : opts.templates ?? ['{}'];
  const clf = await buildClassifier(model, labels, templates, opts.batchSize);
  const results = await model.encodeImages(images, { batchSize: opts.batchSize, onProgress: opts.onProgress });
  return results.map((r) => {
    if (!r.embedding) return { input: r.input, error: r.error ?? 'not embedded' };
    const { probs, ranking } = predict(clf, r.embedding);
    return { input: r.input, label: labels[ranking[0]!]!, scores: Object.fromEntries(labels.map((l, i) => [l, probs[i]!])), ranking: ranking.map((i) => labels[i]!) };
  });
}
