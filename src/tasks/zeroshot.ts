// Zero-shot classification with prompt ensembles (CLIP paper, section 3.1.4): each class is the mean of
// its L2-normalized prompt embeddings, renormalized.
import type { ClipModel } from '../runtime/clip-model.js';
import { meanDirection } from '../runtime/vectors.js';
import { SOFTMAX, scoresFromLogits, type ScoreRule } from '../models/family.js';
import { dot } from './similarity.js';
import { checkPromptSet, fillTemplate } from './templates.js';
import { headLogits, softmax64, type LinearHead } from './linear-probe.js';

export interface ZeroShotClassifier {
  classes: string[];
  templates: string[];
  /** One L2-normalized embedding per class. */
  weights: Float32Array[];
  logitScale: number;
  /** The model's score rule (models/family.ts scoresFromLogits; default softmax) and its bias for a sigmoid. */
  score?: ScoreRule;
  logitBias?: number;
}

/** One embedding per class: the renormalized mean of the normalized embeddings of every filled template. */
export async function classEmbeddings(
  model: Pick<ClipModel, 'encodeTexts'>, classes: string[], templates: string[],
  opts: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<Float32Array[]> {
  if (!classes.length) throw new Error('no class labels given');
  if (!templates.length) throw new Error('no prompt templates given');
  checkPromptSet(classes, templates);
  const prompts = classes.flatMap((c) => templates.map((t) => fillTemplate(t, c)));
  const embs = await model.encodeTexts(prompts, { normalize: true, batchSize: opts.batchSize, onProgress: opts.onProgress });
  return classes.map((_, c) => meanDirection(embs.slice(c * templates.length, (c + 1) * templates.length)));
}

export async function buildClassifier(model: ClipModel, classes: string[], templates: string[] = ['{}'], batchSize?: number): Promise<ZeroShotClassifier> {
  return {
    classes, templates, weights: await classEmbeddings(model, classes, templates, { batchSize }), logitScale: model.logitScale,
    score: model.score, logitBias: model.logitBias,
  };
}

export interface Prediction {
  /** Probability per class, in class order: a softmax over the classes, or each class's own sigmoid (the model's score rule). */
  probs: number[];
  /** Class indices sorted by probability, best first (ties: lower index first). */
  ranking: number[];
}

/** Class probabilities of one image embedding under a zero-shot classifier or a fitted linear head. */
export function predict(clf: ZeroShotClassifier | LinearHead, imageEmbedding: Float32Array): Prediction {
  let probs: number[];
  if ('kind' in clf && clf.kind === 'linear') probs = Array.from(softmax64(headLogits(clf, imageEmbedding)));
  else {
    const z = clf as ZeroShotClassifier;
    probs = scoresFromLogits(z.score ?? SOFTMAX, z.weights.map((w) => z.logitScale * dot(imageEmbedding, w)), z.logitBias);
  }
  const ranking = probs.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
  return { probs, ranking };
}
