// The HTTP API. Routes are thin: validation is declarative (schemas.ts), inputs come through intake.ts, model
// work goes through the Encoder's batchers, and every failure leaves through errors.ts as `{ error }`.
import Fastify, { type FastifyInstance } from 'fastify';
import type { VectorStore } from '../search/store.js';
import { Encoder, type EncoderModel, type EncoderOptions } from './encoder.js';
import { formatValidation, installErrorHandler } from './errors.js';
import { HostPolicy } from './hosts.js';
import { RAW_IMAGE_TYPES, type ImageLimits } from './intake.js';
import { loadWebFiles } from './static.js';
import { Thumbnails } from './thumbs.js';
import { registerModelRoutes } from './routes-model.js';
import { registerSearchRoutes } from './routes-search.js';
import { LIMITS } from './schemas.js';

export interface ServerOptions extends EncoderOptions, Partial<ImageLimits> {
  model: EncoderModel;
  /** Shown by /health. */
  modelName?: string;
  /** The `--db` index; /search and /thumb answer 404 without it. */
  store?: VectorStore;
  storePath?: string;
  /** Log every request (JSON lines); otherwise only server errors (5xx) are logged, so they are never silent. */
  logger?: boolean;
  /** The address the server will listen on (`--host`); requests naming it in Host are served. */
  host?: string;
  /** Host names served besides loopback and `host` (`.example.org` = it and its subdomains; `*` = any Host). */
  allowedHosts?: string[];
  /** The whole request (headers and body) must arrive within this; slower clients get 408 and are dropped. */
  requestTimeoutMs?: number;
  /** The headers must arrive within this (at most requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs?: number;
  /** A connection with no traffic either way for this long is closed (covers a request waiting on the model). */
  idleTimeoutMs?: number;
  /** Connections open at once; more are refused at accept. Bounds the bodies in memory at once. */
  maxConnections?: number;
}

export interface ClipServer {
  app: FastifyInstance;
  encoder: Encoder;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxImageBytes: 10 << 20, maxImagePixels: 40_000_000 };
/** JSON bodies: texts and labels are small; base64 images are 4/3 of their bytes plus the JSON around them. */
const TEXT_BODY_LIMIT = 1 << 20;

/** Connection limits. Node's own defaults hold a slow client for 5 minutes (fastify's: forever). */
export const DEFAULT_CONNECTION_LIMITS = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  maxConnections: 256,
};

export async function buildServer(o: ServerOptions): Promise<ClipServer> {
  const limits: ImageLimits = {
    maxImageBytes: o.maxImageBytes ?? DEFAULT_IMAGE_LIMITS.maxImageBytes,
    maxImagePixels: o.maxImagePixels ?? DEFAULT_IMAGE_LIMITS.maxImagePixels,
  };
  const imageBodyLimit = Math.ceil((limits.maxImageBytes * 4) / 3) + TEXT_BODY_LIMIT;
  const d = DEFAULT_CONNECTION_LIMITS;
  const requestTimeoutMs = o.requestTimeoutMs ?? d.requestTimeoutMs;
  const conn = {
    requestTimeoutMs,
    headersTimeoutMs: Math.min(o.headersTimeoutMs ?? d.headersTimeoutMs, requestTimeoutMs),
    keepAliveTimeoutMs: o.keepAliveTimeoutMs ?? d.keepAliveTimeoutMs,
    idleTimeoutMs: o.idleTimeoutMs ?? d.idleTimeoutMs,
    maxConnections: o.maxConnections ?? d.maxConnections,
  };
  for (const [name, v] of Object.entries(conn)) {
    // 0 would mean "no limit" to Node; these are limits, so they must be real ones.
    if (!Number.isInteger(v) || v < 1) throw new Error(`server option ${name} must be a positive integer, got ${v}`);
  }
  const hosts = new HostPolicy(o.host, o.allowedHosts);
  const app = Fastify({
    logger: o.logger ? true : { level: 'error' },
    bodyLimit: TEXT_BODY_LIMIT,
    // Strict bodies: unknown fields are an error (a typo'd field should not be silently dropped), and no
    // type coercion (`"texts": [5]` must be refused, not embedded as "5"; query strings are parsed by hand).
    ajv: { customOptions: { removeAdditional: false, allErrors: false, coerceTypes: false } },
    schemaErrorFormatter: (errors, dataVar) => formatValidation(errors, dataVar),
    requestTimeout: conn.requestTimeoutMs,
    keepAliveTimeout: conn.keepAliveTimeoutMs,
    connectionTimeout: conn.idleTimeoutMs,
    http: {
      requestTimeout: conn.requestTimeoutMs,
      headersTimeout: conn.headersTimeoutMs,
      // How often Node looks for requests past their timeouts (its default, 30 s, would let a slow client
      // outlive a short timeout many times over).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(conn.headersTimeoutMs / 4))),
    },
  });
  app.server.maxConnections = conn.maxConnections;
  installErrorHandler(app);
  // Before routing, so a refused Host learns nothing, not even which routes exist.
  app.addHook('onRequest', async (req, reply) => {
    const why = hosts.refusal(req.headers.host, req.headers.origin, req.socket.localAddress);
    if (why) return reply.code(403).send({ error: why });
  });
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
    limits: {
      ...limits,
      jsonBodyBytes: TEXT_BODY_LIMIT,
      imageBodyBytes: imageBodyLimit,
      ...LIMITS,
      maxQueue: encoder.texts.maxQueue,
      maxWaitMs: encoder.texts.maxWaitMs,
      maxBatch: encoder.images.maxBatch,
      maxTextBatch: encoder.texts.maxBatch,
      maxBatchPixels: encoder.maxBatchPixels,
      ...conn,
      allowedHosts: hosts.list,
    },
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
