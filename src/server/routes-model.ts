// POST /embed/text, /embed/image, /classify.
import type { FastifyInstance } from 'fastify';
import { BUILTIN_TEMPLATES } from '../tasks/templates.js';
import { classEmbeddings, predict, type ZeroShotClassifier } from '../tasks/zeroshot.js';
import type { RouteContext } from './app.js';
import { HttpError, imageFrom } from './intake.js';
import { classifyBody, classifyQuery, embedImageBody, embedTextBody, LIMITS } from './schemas.js';

/** JSON for application/json; raw image types are validated in intake.ts instead. */
const jsonOnly = (schema: object) => ({ content: { 'application/json': { schema } } });

export function registerModelRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { encoder, limits } = ctx;
  // A request larger than the queue could never be accepted; say so instead of answering 429 forever.
  const perRequest = (n: number, what: string) => {
    const max = encoder.texts.maxQueue;
    if (n > max) throw new HttpError(400, `${what}: ${n} texts to embed, more than this server's queue holds (${max})`);
  };

  app.post('/embed/text', { schema: { body: embedTextBody } }, async (req) => {
    const { texts } = req.body as { texts: string[] };
    perRequest(texts.length, 'body/texts');
    const embs = await encoder.embedTexts(texts);
    return { dim: encoder.model.dim, embeddings: embs.map((e) => Array.from(e)) };
  });

  app.post('/embed/image', { bodyLimit: ctx.imageBodyLimit, schema: { body: jsonOnly(embedImageBody) } }, async (req) => {
    const bytes = await imageFrom(req.body, 'image', limits);
    const emb = await encoder.embedImage(bytes);
    return { dim: emb.length, embedding: Array.from(emb) };
  });

  app.post('/classify', {
    bodyLimit: ctx.imageBodyLimit,
    schema: { body: jsonOnly(classifyBody), querystring: classifyQuery },
  }, async (req) => {
    const raw = Buffer.isBuffer(req.body);
    const q = req.query as { labels?: string; templates?: string };
    const b = (raw ? {} : req.body) as { labels?: string[]; templates?: string[] | string };
    const labels = raw ? (q.labels ?? '').split(',').map((s) => s.trim()).filter(Boolean) : b.labels!;
    if (!labels.length) throw new HttpError(400, 'querystring/labels is required with a raw image body (?labels=a,b,c)');
    if (new Set(labels).size !== labels.length) throw new HttpError(400, `${raw ? 'querystring' : 'body'}/labels has duplicates`);
    if (labels.length > LIMITS.maxLabels) throw new HttpError(400, `labels: at most ${LIMITS.maxLabels}`);
    const t = raw ? q.templates : b.templates;
    const templates = t === undefined ? ['{}'] : typeof t === 'string' ? BUILTIN_TEMPLATES[t]! : t;
    perRequest(labels.length * templates.length, 'labels x templates');

    const bytes = await imageFrom(req.body, 'image', limits);
    // The prompts and the image join their towers' batchers at once.
    const [weights, emb] = await Promise.all([
      classEmbeddings({ encodeTexts: (texts) => encoder.embedTexts(texts) }, labels, templates),
      encoder.embedImage(bytes),
    ]);
    const clf: ZeroShotClassifier = { classes: labels, templates, weights, logitScale: encoder.model.logitScale };
    const { probs, ranking } = predict(clf, emb);
    return {
      label: labels[ranking[0]!],
      scores: Object.fromEntries(labels.map((l, i) => [l, probs[i]])),
      top: ranking.map((i) => ({ label: labels[i], score: probs[i] })),
    };
  });
}
