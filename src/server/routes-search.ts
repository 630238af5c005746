// POST /search (text query or image) and GET /thumb (thumbnails of indexed images only).
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from './app.js';
import { HttpError, imageFrom } from './intake.js';
import { LIMITS, queryInt, searchBody, searchQuery, THUMB_SIZE, thumbQuery } from './schemas.js';
import { textQueryVector } from './search-glue.js';

const NO_INDEX = 'no search index: start the server with --db PATH (an index built by `clip index`)';

export function registerSearchRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { encoder, limits } = ctx;

  app.post('/search', {
    bodyLimit: ctx.imageBodyLimit,
    schema: { body: { content: { 'application/json': { schema: searchBody } } }, querystring: searchQuery },
  }, async (req) => {
    const store = ctx.store;
    if (!store) throw new HttpError(404, NO_INDEX);
    const raw = Buffer.isBuffer(req.body);
    const b = (raw ? {} : req.body) as { query?: string; image?: string; k?: number };
    const k = raw ? queryInt((req.query as { k?: string }).k, 'k', 1, LIMITS.maxK, 12) : b.k ?? 12;
    if (!raw && (b.query === undefined) === (b.image === undefined)) {
      throw new HttpError(400, 'body must have exactly one of query (text) or image (base64)');
    }
    let vector: Float32Array;
    let query: { text: string } | { image: number };
    if (!raw && b.query !== undefined) {
      if (!b.query.trim()) throw new HttpError(400, 'body/query is blank');
      vector = await textQueryVector(b.query, (t) => {
        encoder.checkTexts(t.length, 'body/query');
        return encoder.embedTexts(t);
      }, LIMITS.maxQueryTerms);
      query = { text: b.query };
    } else {
      const upload = await imageFrom(req.body, 'image', limits);
      vector = await encoder.embedImage(upload);
      query = { image: upload.bytes.length };
    }
    const hits = await store.search(vector, k);
    return {
      query,
      k,
      results: hits.map((h) => ({
        id: h.id,
        path: h.meta.path,
        score: h.score,
        width: h.meta.width,
        height: h.meta.height,
        thumb: `/thumb?id=${encodeURIComponent(h.id)}`,
      })),
    };
  });

  app.get('/thumb', { schema: { querystring: thumbQuery } }, async (req, reply) => {
    if (!ctx.thumbs) throw new HttpError(404, NO_INDEX);
    const q = req.query as { id: string; size?: string };
    const size = queryInt(q.size, 'size', THUMB_SIZE.min, THUMB_SIZE.max, THUMB_SIZE.default);
    const jpeg = await ctx.thumbs.get(q.id, size);
    return reply.type('image/jpeg').header('cache-control', 'private, max-age=300').send(jpeg);
  });
}
