// Getting image bytes out of a request: the raw body (Content-Type image/* or application/octet-stream) or a
// base64 string in a JSON field. Sizes are checked here so every route rejects oversize input the same way.
import sharp, { type Metadata } from 'sharp';

/** An HTTP error with its status; the server's error handler sends `{ error: message }` with it. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

/** The media types accepted as a raw image body. */
export const RAW_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'];

export interface ImageLimits {
  maxImageBytes: number;
  /** Width x height cap, checked from the header before decoding: a tiny PNG can expand to gigabytes. */
  maxImagePixels: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decode a JSON image field: plain base64 or a data: URL (what a browser's FileReader gives). */
export function decodeBase64Field(value: string, field: string, limits: ImageLimits): Buffer {
  const comma = value.startsWith('data:') ? value.indexOf(',') : -1;
  const b64 = (comma >= 0 ? value.slice(comma + 1) : value).replace(/\s+/g, '');
  if (!b64.length) throw new HttpError(400, `${field} is empty`);
  if (!BASE64.test(b64) || b64.length % 4 === 1) throw new HttpError(400, `${field} must be base64-encoded image bytes`);
  const bytes = Buffer.from(b64, 'base64');
  checkSize(bytes, limits);
  return bytes;
}

export function rawBody(body: unknown, limits: ImageLimits): Buffer {
  if (!Buffer.isBuffer(body) || !body.length) throw new HttpError(400, 'body: expected image bytes');
  checkSize(body, limits);
  return body;
}

function checkSize(bytes: Buffer, limits: ImageLimits): void {
  if (bytes.length > limits.maxImageBytes) {
    throw new HttpError(413, `image is ${bytes.length} bytes; the limit is ${limits.maxImageBytes}`);
  }
}

/** An uploaded image: its bytes and its pixel count (from the header), which sizes its decoding. */
export interface Upload {
  bytes: Buffer;
  pixels: number;
}

/** Header-only check of the pixel count, so a decompression bomb never reaches the decoder. Returns the count. */
export async function checkPixels(bytes: Buffer, field: string, limits: ImageLimits): Promise<number> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw new HttpError(400, `${field}: not a readable image (${(e as Error).message})`);
  }
  const px = (meta.width ?? 0) * (meta.height ?? 0);
  if (px > limits.maxImagePixels) {
    throw new HttpError(413, `${field}: image is ${meta.width}x${meta.height} pixels; the limit is ${limits.maxImagePixels} pixels`);
  }
  return px;
}

/** The request's image: raw body, or base64 in `body[field]` for JSON. */
export async function imageFrom(body: unknown, field: string, limits: ImageLimits): Promise<Upload> {
  const bytes = Buffer.isBuffer(body)
    ? rawBody(body, limits)
    : decodeBase64Field(String((body as Record<string, unknown>)[field] ?? ''), `body/${field}`, limits);
  const pixels = await checkPixels(bytes, Buffer.isBuffer(body) ? 'body' : `body/${field}`, limits);
  return { bytes, pixels };
}
