// Zero-shot classification with prompt ensembles (CLIP paper, section 3.1.4): each class is the mean of
// its L2-normalized prompt embeddings, renormalized.
import type { ClipModel } from '../runtime/clip-model.js';
import { l2normalize } from '../runtime/vectors.js';
import { dot, softmax } from './similarity.js';
import { fillTemplate } from './templates.js';

export interface ZeroShotClassifier {
  classes: string[];
  templates: string[];
  /** One L2-normalized embedding per class. */
  weights: Float32Array[];
  logitScale: number;
}

export async function buildClassifier(model: ClipModel, classes: string[], templates: string[] = ['{}'], batchSize?: number): Promise<ZeroShotClassifier> {
  if (!classes.length) throw new Error('no class labels given');
  if (!templates.length) throw new Error('no prompt templates given');
  const prompts = classes.flatMap((c) => templates.map((t) => fillTemplate(t, c)));
  const emb = await model.encodeTexts(prompts, { batchSize });
  const weights = classes.map((_, ci) => {
    const mean = new Float32Array(model.dim);
    for (let t = 0; t < templates.length; t++) {
      const e = emb[ci * templates.length + t]!;
      for (let k = 0; k < mean.length; k++) mean[k]! += e[k]! / templates.length;
    }
    return l2normalize(mean);
  });
  return { classes, templates, weights, logitScale: model.logitScale };
}

export interface Prediction {
  /** Softmax probability per class, in class order. */
  probs: number[];
  /** Class indices sorted by probability, best first (ties: lower index first). */
  ranking: number[];
}

export function predict(clf: ZeroShotClassifier, imageEmbedding: Float32Array): Prediction {
  const probs = softmax(clf.weights.map((w) => clf.logitScale * dot(imageEmbedding, w)));
  const ranking = probs.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
  return { probs, ranking };
}
