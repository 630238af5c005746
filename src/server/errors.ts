// One error shape for every route: `{ error: message }` with the right status. Validation messages name the field.
import type { FastifyError, FastifyInstance } from 'fastify';
import { NeverFitsError, QueueFullError } from './batcher.js';
import { BadInputError } from './encoder.js';
import { HttpError } from './intake.js';

interface AjvLikeError {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Fastify's default says "body must NOT have additional properties" without saying which; this names it. */
export function formatValidation(errors: AjvLikeError[], dataVar: string): Error {
  const e = errors[0]!;
  const where = `${dataVar}${e.instancePath}`;
  let msg = `${where} ${e.message ?? 'is invalid'}`;
  const p = e.params ?? {};
  if (typeof p.additionalProperty === 'string') msg = `${where}/${p.additionalProperty} is not a known field`;
  else if (Array.isArray(p.allowedValues)) msg += ` (${p.allowedValues.join(', ')})`;
  return new Error(msg);
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    if (err instanceof QueueFullError) {
      return reply.code(429).header('retry-after', String(err.retryAfterSeconds)).send({ error: err.message });
    }
    if (err instanceof NeverFitsError) return reply.code(400).send({ error: err.message });
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.message });
    if (err instanceof BadInputError) return reply.code(400).send({ error: err.message });
    const status = (err as FastifyError).statusCode;
    // Fastify's own client errors: validation (400), body too large (413), bad media type (415), bad JSON (400).
    if (status && status >= 400 && status < 500) return reply.code(status).send({ error: err.message });
    req.log.error(err);
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));
}
