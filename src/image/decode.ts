// Decode an image file into the pixels and mode PIL's Image.open() would give.
// sharp (libvips) does the decoding; the mode is decided here because the reference
// pipelines branch on it (palette -> NEAREST, RGBA -> premultiplied resize, L -> one band).
//
// Nothing in an image is trusted: the file size, then the pixel count from the header, are checked
// before anything is decoded, and the memory of decodes running at once is budgeted (see limits below).
import { open } from 'node:fs/promises';
import sharp from 'sharp';
import { type DecodedImage, type ImageMode, makeImage } from './types.js';
import { IMAGE_FORMATS } from './formats.js';

const SUPPORTED = new Set<string>(Object.keys(IMAGE_FORMATS));

// ---- limits ----

/**
 * Bounds on one image. Defaults: CLIP resizes to a few hundred pixels, so these only need to admit the
 * largest real photos: 2^27 px (134 Mpx) covers 100-Mpx medium-format cameras with room to spare, is half
 * of libvips' own 268-Mpx default, and decodes to at most 384 MiB as RGB (512 MiB as RGBA).
 */
export interface ImageLimits {
  /** Most pixels (width x height, read from the header before decoding). Env CLIP_MAX_IMAGE_PIXELS. */
  maxPixels?: number;
  /** Largest encoded file or buffer, in bytes. Env CLIP_MAX_IMAGE_FILE_MB (MiB). */
  maxFileBytes?: number;
  /**
   * Decoded bytes that may be in flight at once over all concurrent decodes (a batch decodes many images
   * together); one image needing more than this alone is refused. Env CLIP_DECODE_MEMORY_MB (MiB).
   */
  decodeBudgetBytes?: number;
}

export const DEFAULT_MAX_IMAGE_PIXELS = 2 ** 27;
export const DEFAULT_MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;
export const DEFAULT_DECODE_BUDGET_BYTES = 1024 * 2 ** 20;

function envNumber(name: string, scale: number, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return Math.floor(n * scale);
}

function checkLimit(v: number | undefined, what: string): number | undefined {
  if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new Error(`image limit ${what} must be a positive number, got ${v}`);
  return v;
}

/** The limits in force: explicit options first, then the environment, then the defaults. */
export function imageLimits(over: ImageLimits = {}): Required<ImageLimits> {
  return {
    maxPixels: checkLimit(over.maxPixels, 'maxPixels') ?? envNumber('CLIP_MAX_IMAGE_PIXELS', 1, DEFAULT_MAX_IMAGE_PIXELS),
    maxFileBytes: checkLimit(over.maxFileBytes, 'maxFileBytes') ?? envNumber('CLIP_MAX_IMAGE_FILE_MB', 2 ** 20, DEFAULT_MAX_IMAGE_FILE_BYTES),
    decodeBudgetBytes: checkLimit(over.decodeBudgetBytes, 'decodeBudgetBytes') ?? envNumber('CLIP_DECODE_MEMORY_MB', 2 ** 20, DEFAULT_DECODE_BUDGET_BYTES),
  };
}

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 2 : 0)} MiB`;

/**
 * Refuse a size that would need more than `maxPixels`: a decode limit (CLIP_MAX_IMAGE_PIXELS) also bounds
 * every image the pipelines make from it, e.g. a 1x1000000 strip whose shortest edge goes to 224 px.
 */
export function checkPixels(width: number, height: number, what: string, limits: ImageLimits = {}): void {
  const max = imageLimits(limits).maxPixels;
  if (width * height > max) {
    throw new Error(`${what} is ${width}x${height} = ${width * height} pixels, above the limit of ${max} (set CLIP_MAX_IMAGE_PIXELS or --max-image-pixels to change it)`);
  }
}

/** How to decode (beyond the limits). */
export interface DecodeOptions {
  /**
   * JPEG only, opt-in: when the short edge is above this, let libvips decode at reduced scale (libjpeg's DCT
   * shrink-on-load, then its lanczos3 reduce) to this short edge. Much cheaper than decoding a 12 MP photo in
   * full and resizing it here; not what PIL gives, so off unless asked for.
   */
  reduceTo?: number;
  /**
   * Where decoders run on several threads (the worker pool), a decode running "alone" here is not alone in
   * the process: then a libvips failure is not re-run but thrown at once, marked `decoderFailure`, for the
   * pool to re-run on the main thread with every worker idle.
   */
  noRetry?: boolean;
}

/** True for an error from decodeImage that came from libvips (see DecodeOptions.noRetry). */
export const isDecoderFailure = (e: unknown): boolean => (e as { decoderFailure?: boolean } | null)?.decoderFailure === true;

// ---- decode scheduling ----

/**
 * Admits decodes while their decoded bytes fit the budget (one at a time past it), FIFO. It also serializes
 * the re-run of a failed decode: libvips keeps one error buffer for the whole process, so when several
 * decodes fail at once their messages mix ("Unknown error" for one, two messages for another). A failed
 * decode is therefore run again alone, with nothing else decoding, to get its own message.
 */
class DecodeGate {
  private used = 0;
  private active = 0;
  private exclusive = false;
  private readonly waiting: Array<{ bytes: number; budget: number; alone: boolean; go: () => void }> = [];

  async run<T>(bytes: number, budget: number, alone: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      this.waiting.push({ bytes, budget, alone, go });
      this.pump();
    });
    try {
      return await fn();
    } finally {
      this.active--;
      this.used -= bytes;
      if (alone) this.exclusive = false;
      this.pump();
    }
  }

  private pump(): void {
    for (;;) {
      const w = this.waiting[0];
      if (!w || this.exclusive) return;
      const fits = w.alone ? this.active === 0 : this.active === 0 || this.used + w.bytes <= w.budget;
      if (!fits) return;
      this.waiting.shift();
      this.active++;
      this.used += w.bytes;
      if (w.alone) this.exclusive = true;
      w.go();
    }
  }
}

const gate = new DecodeGate();

/** An error raised by sharp/libvips (as opposed to our own checks, which are final). */
class DecoderError extends Error {}

async function vips<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    // libvips may report the same line twice (or another decode's line too: see DecodeGate).
    const lines = [...new Set(String((e as Error).message ?? e).split('\n').map((l) => l.trim()).filter(Boolean))];
    throw new DecoderError(lines.join('; ') || 'Unknown error');
  }
}

// ---- reading ----

/** Read a file, refusing more than `max` bytes before reading them (and never reading endlessly from a device or pipe). */
async function readBounded(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new Error('is a directory');
    if (st.isFile() && st.size > max) throw new Error(`file is ${mib(st.size)}, above the limit of ${mib(max)} (set CLIP_MAX_IMAGE_FILE_MB to change it)`);
    const chunks: Buffer[] = [];
    let total = 0;
    // A regular file is read in one go; /proc files (size 0), pipes and devices in 1 MiB steps.
    let want = st.isFile() && st.size > 0 ? st.size + 1 : 1 << 20;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(want, max + 1 - total));
      want = 1 << 20;
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > max) throw new Error(`more than ${mib(max)} of data, above the limit (set CLIP_MAX_IMAGE_FILE_MB to change it)`);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
}

// ---- decoding ----

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

const BYTES_PER_SAMPLE: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, double: 8, complex: 8, dpcomplex: 16 };

/**
 * Decode JPEG, PNG (grey, grey+alpha, RGB, RGBA, palette, 1-bit) or WebP.
 * Like PIL: no EXIF auto-rotation, embedded ICC profiles ignored, truncated data is an error.
 * Errors name the file (or `name`, for buffers) and say what is wrong; the sizes are checked against
 * `limits` (see ImageLimits) before any pixel is decoded.
 */
export async function decodeImage(input: string | Uint8Array, name?: string, limits: ImageLimits = {}, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const label = name ?? (typeof input === 'string' ? input : '<buffer>');
  try {
    const lim = imageLimits(limits);
    let bytes: Uint8Array;
    if (typeof input === 'string') bytes = await readBounded(input, lim.maxFileBytes);
    else if (input.byteLength > lim.maxFileBytes) {
      throw new Error(`${mib(input.byteLength)} of data, above the limit of ${mib(lim.maxFileBytes)} (set CLIP_MAX_IMAGE_FILE_MB to change it)`);
    } else bytes = input;
    try {
      return await decodeBytes(bytes, lim, false, opts);
    } catch (e) {
      if (!(e instanceof DecoderError)) throw e;
      if (opts.noRetry) throw Object.assign(e, { decoderFailure: true });
      // Run it again alone for a message of its own (see DecodeGate); the rare failure pays a second decode.
      return await decodeBytes(bytes, lim, true, opts);
    }
  } catch (e) {
    const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
    throw Object.assign(new Error(`cannot decode image ${label}: ${msg}`), isDecoderFailure(e) ? { decoderFailure: true } : {});
  }
}

async function decodeBytes(bytes: Uint8Array, lim: Required<ImageLimits>, alone: boolean, dopts: DecodeOptions): Promise<DecodedImage> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // ignoreIcc: PIL hands out the stored values; sharp would otherwise convert to sRGB via the profile.
  // failOn 'error': truncated or corrupt pixel data fails, as PIL's load() does.
  // limitInputPixels: libvips' own check, behind ours (which reads the same header first).
  const opts = { ignoreIcc: true, failOn: 'error' as const, autoOrient: false, limitInputPixels: Math.min(lim.maxPixels, Number.MAX_SAFE_INTEGER) };
  // The header read runs through the gate too: it shares libvips' error buffer with the decodes.
  // Its pixel check is ours, below, with a message that says which limit to change.
  const meta = await gate.run(0, lim.decodeBudgetBytes, alone, () => vips(() => sharp(buf, { ...opts, limitInputPixels: false }).metadata()));
  if (!SUPPORTED.has(meta.format)) throw new Error(`unsupported image format "${meta.format}" (expected JPEG, PNG or WebP)`);
  const { width, height } = meta;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width! <= 0 || height! <= 0) throw new Error(`invalid image size ${width}x${height} in the header`);
  checkPixels(width!, height!, 'the image', lim);
  // Fast decode: the size libvips is asked for (short edge reduceTo, aspect kept), JPEG only.
  const short = Math.min(width!, height!);
  const reduceTo = dopts.reduceTo;
  if (reduceTo !== undefined && !(Number.isInteger(reduceTo) && reduceTo > 0)) throw new Error(`decode option reduceTo must be a positive integer, got ${reduceTo}`);
  const reduced = meta.format === 'jpeg' && reduceTo !== undefined && short > reduceTo
    ? { width: Math.max(1, Math.round((width! * reduceTo) / short)), height: Math.max(1, Math.round((height! * reduceTo) / short)) }
    : undefined;
  // What libvips holds decoded (at the stored depth), plus our 8-bit copy. A reduced decode streams through
  // shrink-on-load and holds about the reduced image (counted twice for the reduce's buffers).
  const channels = meta.channels ?? 4;
  const held = reduced ? 2 * reduced.width * reduced.height : width! * height!;
  const need = held * (channels * (BYTES_PER_SAMPLE[meta.depth ?? 'uchar'] ?? 1) + channels);
  if (need > lim.decodeBudgetBytes) {
    throw new Error(`decoding ${width}x${height}x${channels} (${meta.depth}) needs about ${mib(need)}, above the decode memory budget of ${mib(lim.decodeBudgetBytes)} (set CLIP_DECODE_MEMORY_MB to change it)`);
  }

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
  return gate.run(need, lim.decodeBudgetBytes, alone, async () => {
    let pipeline = sharp(buf, opts);
    if (reduced) pipeline = pipeline.resize(reduced.width, reduced.height, { fit: 'fill', fastShrinkOnLoad: true });
    const { data, info } = await vips(() => pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true }));
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
  });
}

/** Keep some bands of interleaved pixels, e.g. only the grey band of a replicated sRGB image. */
function pickBands(src: Uint8Array, have: number, bands: number[]): Uint8Array {
  const n = src.length / have, k = bands.length;
  const out = new Uint8Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out[i * k + j] = src[i * have + bands[j]!]!;
  return out;
}
