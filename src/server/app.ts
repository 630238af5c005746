// The HTTP API. Routes are thin: validation is declarative (schemas.ts), inputs come through intake.ts, model
// work goes through the Encoder's batchers, and every failure leaves through errors.ts as `{ error }`.
import Fastify, { type FastifyInstance } from 'fastify';
import type { VectorStore } from '../search/store.js';
import { Encoder, type EncoderModel, type EncoderOptions } from './encoder.js';
import { formatValidation, installErrorHandler } from './errors.js';
import { RAW_IMAGE_TYPES, type ImageLimits } from './intake.js';
import { loadWebFiles } from './static.js';
import { Thumbnails } from './thumbs.js';
import { registerModelRoutes } from './routes-model.js';
import { registerSearchRoutes } from './routes-search.js';

export interface ServerOptions extends EncoderOptions, Partial<ImageLimits> {
  model: EncoderModel;
  /** Shown by /health. */
  modelName?: string;
  /** The `--db` index; /search and /thumb answer 404 without it. */
  store?: VectorStore;
  storePath?: string;
  /** Log every request (JSON lines); otherwise only server errors (5xx) are logged, so they are never silent. */
  logger?: boolean;
}

export interface ClipServer {
  app: FastifyInstance;
  encoder: Encoder;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxImageBytes: 10 << 20, maxImagePixels: 40_000_000 };
/** JSON bodies: texts and labels are small; base64 images are 4/3 of their bytes plus the JSON around them. */
const TEXT_BODY_LIMIT = 1 << 20;

export async function buildServer(o: ServerOptions): Promise<ClipServer> {
  const limits: ImageLimits = {
    maxImageBytes: o.maxImageBytes ?? DEFAULT_IMAGE_LIMITS.maxImageBytes,
    maxImagePixels: o.maxImagePixels ?? DEFAULT_IMAGE_LIMITS.maxImagePixels,
  };
  const imageBodyLimit = Math.ceil((limits.maxImageBytes * 4) / 3) + TEXT_BODY_LIMIT;
  const app = Fastify({
    logger: o.logger ? true : { level: 'error' },
    bodyLimit: TEXT_BODY_LIMIT,
    // Strict bodies: unknown fields are an error (a typo'd field should not be silently dropped).
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => formatValidation(errors, dataVar),
  });
  installErrorHandler(app);
  // Raw image bodies arrive as a Buffer; their size is checked against maxImageBytes in intake.ts.
  // text/plain would reach handlers as a string; nothing here takes text bodies, so let it be a 415.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(RAW_IMAGE_TYPES, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const encoder = new Encoder(o.model, o);
  const ctx = { encoder, limits, imageBodyLimit, store: o.store, thumbs: o.store ? new Thumbnails(o.store) : undefined };

  app.get('/health', async () => ({
    status: 'ok',
    model: { name: o.modelName ?? null, dim: o.model.dim, logitScale: o.model.logitScale },
    index: o.store ? { path: o.storePath ?? null, kind: o.store.kind, count: await o.store.count() } : null,
    queue: {
      text: encoder.texts.stats,
      image: encoder.images.stats,
      depth: encoder.texts.stats.queued + encoder.images.stats.queued,
      limit: encoder.texts.maxQueue,
    },
    limits: { ...limits },
    // Lets a soak test or a monitor watch memory without access to the host.
    memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
    uptimeSeconds: Math.round(process.uptime()),
  }));

  registerModelRoutes(app, ctx);
  registerSearchRoutes(app, ctx);

  for (const f of loadWebFiles()) {
    app.get(f.route, (_req, reply) => reply.type(f.type).header('cache-control', 'no-cache').send(f.body));
  }
  return { app, encoder };
}

export type RouteContext = {
  encoder: Encoder;
  limits: ImageLimits;
  imageBodyLimit: number;
  store?: VectorStore;
  thumbs?: Thumbnails;
};
