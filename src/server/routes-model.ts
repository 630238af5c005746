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

  app.post('/embed/text', { schema: { body: embedTextBody } }, async (req) => {
    const { texts } = req.body as { texts: string[] };
    encoder.checkTexts(texts.length, 'body/texts');
    const embs = await encoder.embedTexts(texts);
    return { dim: encoder.model.dim, embeddings: embs.map((e) => Array.from(e)) };
  });

  app.post('/embed/image', { bodyLimit: ctx.imageBodyLimit, schema: { body: jsonOnly(embedImageBody) } }, async (req) => {
    const emb = await encoder.embedImage(await imageFrom(req.body, 'image', limits));
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
    const where = raw ? 'querystring/labels' : 'body/labels';
    if (labels.length > LIMITS.maxLabels) throw new HttpError(400, `${where} has ${labels.length} labels; the limit is ${LIMITS.maxLabels}`);
    // The body's labels are length-checked by their schema; the query string's are one comma-separated string.
    const long = labels.findIndex((l) => [...l].length > LIMITS.maxTextChars);
    if (long >= 0) throw new HttpError(400, `${where}/${long} must NOT have more than ${LIMITS.maxTextChars} characters`);
    if (new Set(labels).size !== labels.length) throw new HttpError(400, `${where} has duplicates`);
    const t = raw ? q.templates : b.templates;
    const templates = t === undefined ? ['{}'] : typeof t === 'string' ? BUILTIN_TEMPLATES[t]! : t;
    encoder.checkTexts(labels.length * templates.length, `${where} x templates`);

    const upload = await imageFrom(req.body, 'image', limits);
    // The prompts and the image join their towers' batchers at once.
    const [weights, emb] = await Promise.all([
      classEmbeddings({ encodeTexts: (texts) => encoder.embedTexts(texts) }, labels, templates),
      encoder.embedImage(upload),
    ]);
    const m = encoder.model;
    // The model's score rule: a softmax over the labels, or one sigmoid per label (with its logit_bias).
    const clf: ZeroShotClassifier = { classes: labels, templates, weights, logitScale: m.logitScale, score: m.score, logitBias: m.logitBias };
    const { probs, ranking } = predict(clf, emb);
    return {
      scoring: m.score?.kind ?? 'softmax',
      label: labels[ranking[0]!],
      scores: Object.fromEntries(labels.map((l, i) => [l, probs[i]])),
      top: ranking.map((i) => ({ label: labels[i], score: probs[i] })),
    };
  });
}
