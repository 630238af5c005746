// JSON schemas for the request bodies. Fastify validates them before a handler runs and answers 400 with a
// message naming the field ("body/texts/0 must be string"). Raw image bodies have no schema (see intake.ts).
// Types are never coerced (app.ts turns Ajv's coercion off): `"texts": [5]` is an error, not the text "5".
// Query strings are text by nature, so their numbers are strings here and parsed by queryInt.
import { BUILTIN_TEMPLATES } from '../tasks/templates.js';
import { HttpError } from './intake.js';

/** Per-request bounds on work; checked before anything is queued. */
export const LIMITS = {
  maxTexts: 256,
  maxTextChars: 2000,
  maxLabels: 256,
  maxTemplates: 64,
  /** Terms of a /search query's algebra ("a" + "b" - "c" is 3). */
  maxQueryTerms: 32,
  maxK: 200,
};

const text = { type: 'string', minLength: 1, maxLength: LIMITS.maxTextChars } as const;
const base64 = { type: 'string', minLength: 1 } as const;

export const embedTextBody = {
  type: 'object',
  required: ['texts'],
  additionalProperties: false,
  properties: {
    texts: { type: 'array', minItems: 1, maxItems: LIMITS.maxTexts, items: text },
  },
} as const;

export const embedImageBody = {
  type: 'object',
  required: ['image'],
  additionalProperties: false,
  properties: { image: base64 },
} as const;

const labels = { type: 'array', minItems: 1, maxItems: LIMITS.maxLabels, items: text } as const;
/** A list of templates with {} or the name of a built-in set. */
const templates = {
  anyOf: [
    { type: 'array', minItems: 1, maxItems: LIMITS.maxTemplates, items: { type: 'string', pattern: '\\{\\}', maxLength: LIMITS.maxTextChars } },
    { type: 'string', enum: Object.keys(BUILTIN_TEMPLATES) },
  ],
} as const;

export const classifyBody = {
  type: 'object',
  required: ['image', 'labels'],
  additionalProperties: false,
  properties: { image: base64, labels, templates },
} as const;

/** With a raw image body the labels travel in the query string: ?labels=a,b,c&templates=photo */
export const classifyQuery = {
  type: 'object',
  properties: {
    labels: { type: 'string', minLength: 1, maxLength: LIMITS.maxLabels * (LIMITS.maxTextChars + 1) },
    templates: { type: 'string', enum: Object.keys(BUILTIN_TEMPLATES) },
  },
} as const;

const k = { type: 'integer', minimum: 1, maximum: LIMITS.maxK, default: 12 } as const;

export const searchBody = {
  type: 'object',
  additionalProperties: false,
  properties: { query: text, image: base64, k },
} as const;

const digits = { type: 'string', pattern: '^[0-9]{1,9}$' } as const;

export const searchQuery = { type: 'object', properties: { k: digits } } as const;

export const THUMB_SIZE = { min: 16, max: 512, default: 256 };

export const thumbQuery = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 4096 },
    size: digits,
  },
} as const;

/** An integer from the query string (already matched by `digits`), range-checked with the field named. */
export function queryInt(value: string | undefined, field: string, min: number, max: number, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `querystring/${field} must be an integer from ${min} to ${max}`);
  return n;
}
