// Decode an image file into the pixels and mode PIL's Image.open() would give.
// sharp (libvips) does the decoding; the mode is decided here because the reference
// pipelines branch on it (palette -> NEAREST, RGBA -> premultiplied resize, L -> one band).
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { type DecodedImage, type ImageMode, makeImage } from './types.js';

const SUPPORTED = new Set(['jpeg', 'png', 'webp']);

/** PNG colour type and bit depth from the IHDR chunk, which fix the PIL mode exactly. */
function pngHeader(bytes: Uint8Array): { colorType: number; bitDepth: number } | null {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 33 || sig.some((b, i) => bytes[i] !== b)) return null;
  // IHDR is always the first chunk: 8 signature + 4 length + 4 type + 8 (w, h), then depth, colour type.
  return { bitDepth: bytes[24]!, colorType: bytes[25]! };
}

/**
 * PIL mode for a PNG. tRNS on grey/RGB keeps PIL in 'L'/'RGB' (transparency lives in .info).
 * Not reproduced: 16-bit grey, which PIL opens as 'I;16' (later clipped to 255 by convert('RGB'));
 * here it becomes 'L' from the high byte.
 */
function pngMode(colorType: number, bitDepth: number): ImageMode {
  switch (colorType) {
    case 0: return bitDepth === 1 ? '1' : 'L';
    case 2: return 'RGB';
    case 3: return 'P';
    case 4: return 'LA';
    case 6: return 'RGBA';
    default: throw new Error(`invalid PNG colour type ${colorType}`);
  }
}

/**
 * Decode JPEG, PNG (grey, grey+alpha, RGB, RGBA, palette, 1-bit) or WebP.
 * Like PIL: no EXIF auto-rotation, embedded ICC profiles ignored, truncated data is an error.
 * Errors name the file (or `name`, for buffers).
 */
export async function decodeImage(input: string | Uint8Array, name?: string): Promise<DecodedImage> {
  const label = name ?? (typeof input === 'string' ? input : '<buffer>');
  try {
    const bytes = typeof input === 'string' ? await readFile(input) : input;
    return await decodeBytes(bytes);
  } catch (e) {
    const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
    throw new Error(`cannot decode image ${label}: ${msg}`);
  }
}

async function decodeBytes(bytes: Uint8Array): Promise<DecodedImage> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // ignoreIcc: PIL hands out the stored values; sharp would otherwise convert to sRGB via the profile.
  // failOn 'error': truncated or corrupt pixel data fails, as PIL's load() does.
  const opts = { ignoreIcc: true, failOn: 'error' as const, autoOrient: false };
  const meta = await sharp(buf, opts).metadata();
  if (!SUPPORTED.has(meta.format)) throw new Error(`unsupported image format "${meta.format}" (expected JPEG, PNG or WebP)`);

  let mode: ImageMode;
  if (meta.format === 'png') {
    const h = pngHeader(bytes);
    if (!h) throw new Error('not a PNG file');
    mode = pngMode(h.colorType, h.bitDepth);
  } else if (meta.format === 'jpeg') {
    // 4-component (CMYK/YCCK) JPEGs: PIL gives 'CMYK' with its own naive RGB conversion; sharp's
    // colour-managed conversion is used instead (not bit-exact with PIL).
    mode = meta.channels === 1 ? 'L' : 'RGB';
  } else {
    mode = meta.hasAlpha ? 'RGBA' : 'RGB';
  }

  // sharp hands out sRGB (grey replicated, palette expanded, tRNS as an alpha band); the bands
  // the PIL mode has are picked from that. (toColourspace('b-w') would silently drop alpha.)
  const { data, info } = await sharp(buf, opts).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const have = info.channels;
  const alpha = have === 2 || have === 4 ? have - 1 : -1;
  let bands: number[];
  switch (mode) {
    case '1': case 'L': bands = [0]; break;
    case 'LA': bands = [0, alpha]; break;
    case 'RGB': bands = [0, 1, 2]; break;
    case 'RGBA': bands = [0, 1, 2, alpha]; break;
    case 'P': bands = alpha >= 0 ? [0, 1, 2, alpha] : [0, 1, 2]; break;
  }
  if (bands.some((b) => b < 0 || b >= have) || (bands.length >= 3 && have < 3)) {
    throw new Error(`decoded ${have} channels, cannot form PIL mode ${mode}`);
  }
  const out = bands.length === have ? px : pickBands(px, have, bands);
  return makeImage(info.width, info.height, mode, out, bands.length as 1 | 2 | 3 | 4);
}

/** Keep some bands of interleaved pixels, e.g. only the grey band of a replicated sRGB image. */
function pickBands(src: Uint8Array, have: number, bands: number[]): Uint8Array {
  const n = src.length / have, k = bands.length;
  const out = new Uint8Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out[i * k + j] = src[i * have + bands[j]!]!;
  return out;
}
