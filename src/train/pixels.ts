// Preprocessed training images. When the set fits the memory budget every image is decoded and
// preprocessed once, up front, and kept as its resized, cropped RGB bytes (a quarter of the float
// size); batches turn bytes back into the exact floats through a per-channel table learned from the
// preprocessor's own output. Otherwise images are decoded per batch. Unreadable images are
// remembered with their error; batches leave them out.
import { decodeImage } from '../image/decode.js';
import { preprocessImage, type PreprocessPipeline } from '../image/pipelines.js';
import type { ImageInput } from '../runtime/preprocess.js';

export interface ImageRef {
  input: ImageInput;
  name: string;
}

/** Images decoded concurrently (sharp decodes on libuv's threads). */
const CONCURRENCY = 8;

export class PixelStore {
  /** Floats per image: 3 * S * S. */
  readonly per: number;
  readonly cached: boolean;
  private readonly bytes: (Uint8Array | undefined)[] = [];
  /** Fallback storage when the bytes-to-float map is not a per-channel table (see learn()). */
  private readonly floats: (Float32Array | undefined)[] = [];
  private readonly errors = new Map<number, string>();
  private readonly lut = new Float32Array(3 * 256);
  private readonly seen = new Uint8Array(3 * 256);
  private tableOk = true;
  private filled = false;

  constructor(readonly images: ImageRef[], private readonly pipeline: PreprocessPipeline, readonly size: number, budgetBytes: number) {
    this.per = 3 * size * size;
    this.cached = images.length * this.per <= budgetBytes;
  }

  /** Error of an image found unreadable so far (all of them once fill() ran). */
  error(i: number): string | undefined {
    return this.errors.get(i);
  }

  get failures(): { index: number; name: string; error: string }[] {
    return [...this.errors].map(([index, error]) => ({ index, name: this.images[index]!.name, error }));
  }

  /** Decode and preprocess everything into memory (cached stores only). */
  async fill(onProgress?: (done: number, total: number) => void): Promise<void> {
    if (!this.cached || this.filled) return;
    const n = this.images.length;
    for (let start = 0; start < n; start += CONCURRENCY) {
      const idx = Array.from({ length: Math.min(CONCURRENCY, n - start) }, (_, k) => start + k);
      const out = await Promise.all(idx.map((i) => this.preprocess(i)));
      idx.forEach((i, k) => {
        const r = out[k];
        if (!r) return;
        if (this.tableOk && this.learn(r.uint8, r.pixels)) this.bytes[i] = r.uint8;
        else this.floats[i] = r.pixels;
      });
      onProgress?.(start + idx.length, n);
    }
    if (!this.tableOk) {
      // Bytes stored before the table broke can no longer be trusted: keep floats for everything.
      for (let i = 0; i < n; i++) {
        if (!this.bytes[i]) continue;
        this.floats[i] = (await this.preprocess(i))!.pixels;
        this.bytes[i] = undefined;
      }
    }
    this.filled = true;
  }

  private async preprocess(i: number): Promise<{ uint8: Uint8Array; pixels: Float32Array } | undefined> {
    const im = this.images[i]!;
    try {
      const r = preprocessImage(await decodeImage(im.input, im.name), this.pipeline);
      if (r.width !== this.size || r.height !== this.size) {
        throw new Error(`${im.name}: preprocessing gave ${r.width}x${r.height}, the image tower takes ${this.size}x${this.size}`);
      }
      return { uint8: r.uint8.length === r.uint8.buffer.byteLength ? r.uint8 : r.uint8.slice(), pixels: r.pixels };
    } catch (e) {
      this.errors.set(i, (e as Error).message);
      return undefined;
    }
  }

  /**
   * Record which float each byte value of each channel became. Normalization is a function of (channel,
   * byte) in every pipeline we have; if some image ever says otherwise, the store falls back to floats.
   */
  private learn(rgb: Uint8Array, pixels: Float32Array): boolean {
    const n = rgb.length / 3;
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < n; i++) {
        const k = c * 256 + rgb[i * 3 + c]!;
        const f = pixels[c * n + i]!;
        if (!this.seen[k]) {
          this.seen[k] = 1;
          this.lut[k] = f;
        } else if (!Object.is(this.lut[k], f)) {
          this.tableOk = false;
          return false;
        }
      }
    }
    return true;
  }

  /** Write image i's floats at `offset`; false when the image is unreadable. */
  private async into(i: number, out: Float32Array, offset: number): Promise<boolean> {
    if (this.cached && this.filled) {
      const f = this.floats[i];
      if (f) out.set(f, offset);
      const b = this.bytes[i];
      if (b) {
        const n = this.per / 3;
        for (let c = 0; c < 3; c++) {
          const base = offset + c * n;
          const lut = c * 256;
          for (let p = 0; p < n; p++) out[base + p] = this.lut[lut + b[p * 3 + c]!]!;
        }
      }
      return !!(f || b);
    }
    const r = this.errors.has(i) ? undefined : await this.preprocess(i);
    if (r) out.set(r.pixels, offset);
    return !!r;
  }

  /** Pixels [k, 3, S, S] of the readable images among `indices`, and which those were. */
  async gather(indices: ArrayLike<number>): Promise<{ pixels: Float32Array; kept: number[] }> {
    const buf = new Float32Array(indices.length * this.per);
    const ok: boolean[] = [];
    for (let start = 0; start < indices.length; start += CONCURRENCY) {
      const part = Array.from({ length: Math.min(CONCURRENCY, indices.length - start) }, (_, k) => start + k);
      const r = await Promise.all(part.map((k) => this.into(indices[k]!, buf, k * this.per)));
      ok.push(...r);
    }
    const kept: number[] = [];
    let w = 0;
    for (let k = 0; k < indices.length; k++) {
      if (!ok[k]) continue;
      if (w !== k) buf.copyWithin(w * this.per, k * this.per, (k + 1) * this.per);
      kept.push(k);
      w++;
    }
    return { pixels: w === indices.length ? buf : buf.slice(0, w * this.per), kept };
  }
}
