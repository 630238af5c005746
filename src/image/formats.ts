// The image formats the decoder reads (image/decode.ts), and the file extensions every folder walk, input
// list and query parser derives from them: one list, so nothing is collected that decoding then refuses.
import { extname } from 'node:path';

export const IMAGE_FORMATS = { jpeg: ['.jpg', '.jpeg'], png: ['.png'], webp: ['.webp'] } as const;
export type ImageFormat = keyof typeof IMAGE_FORMATS;

export const IMAGE_EXTENSIONS: readonly string[] = Object.values(IMAGE_FORMATS).flat();

export const isImagePath = (p: string): boolean => IMAGE_EXTENSIONS.includes(extname(p).toLowerCase());

/**
 * Leading bytes of the common image formats, including ones decode refuses (GIF, BMP, TIFF): enough to tell an
 * image (to be refused by name if unsupported) from text. WebP is RIFF....WEBP.
 */
const SIGNATURES: Array<[number, number[]]> = [
  [0, [0x89, 0x50, 0x4e, 0x47]], // PNG
  [0, [0xff, 0xd8, 0xff]], // JPEG
  [8, [0x57, 0x45, 0x42, 0x50]], // WebP
  [0, [0x47, 0x49, 0x46, 0x38]], // GIF8
  [0, [0x42, 0x4d]], // BMP
  [0, [0x49, 0x49, 0x2a, 0x00]], [0, [0x4d, 0x4d, 0x00, 0x2a]], // TIFF
];

export function sniffImage(bytes: Uint8Array): boolean {
  return SIGNATURES.some(([off, sig]) => sig.every((b, i) => bytes[off + i] === b));
}

/** Standard or URL-safe base64 (EasyNLP writes either). */
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** True when a cell is base64 of bytes with an image signature (only its first bytes are decoded). */
export function looksLikeBase64Image(raw: string): boolean {
  const cell = raw.trim();
  if (cell.length < 16 || !BASE64.test(cell)) return false;
  return sniffImage(Buffer.from(cell.slice(0, 24), 'base64'));
}

/** Decode a base64 image cell; `where` (file:line) names it when it is not base64 at all. */
export function decodeBase64Cell(cell: string, where: string): Uint8Array {
  const s = cell.trim();
  if (!s || !BASE64.test(s)) throw new Error(`${where}: image column is not base64`);
  return Buffer.from(s, 'base64');
}
