// A tensor as it sits in a checkpoint file: raw little-endian bytes plus dtype and shape.
// Conversion to float32 happens once, when a graph takes the weight.

export type DType =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export interface RawTensor {
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

/** Where a model's named weights come from: safetensors, a torch pickle, or a test's Map. */
export interface TensorSource {
  keys(): string[];
  has(name: string): boolean;
  get(name: string): RawTensor;
  /**
   * dtype and shape without reading the bytes (files that index their tensors have it): lets a caller
   * compare a shape with what its config expects before anything is materialized.
   */
  info?(name: string): { dtype: DType; shape: number[] } | undefined;
  /** Human-readable origin, used in error messages. */
  readonly origin: string;
  /** Release the file behind it (file readers have one). */
  close?(): void;
}

/** Index of the first NaN or ±Infinity in `data`, or -1 when every value is finite. */
export function firstNonFinite(data: ArrayLike<number>): number {
  // x - x is 0 for every finite x and NaN for NaN and ±Infinity: one compare per element.
  for (let i = 0; i < data.length; i++) if (data[i]! - data[i]! !== 0) return i;
  return -1;
}

/** A tensor's shape, read from the file's index when it has one, so nothing is materialized. */
export function shapeOf(src: TensorSource, name: string): number[] | undefined {
  if (!src.has(name)) return undefined;
  return src.info ? src.info(name)?.shape : src.get(name).shape;
}

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8,
  int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** IEEE half -> float, exact. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float -> IEEE half, round to nearest even (as numpy/torch .half()). */
export function floatToHalf(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** A float array as IEEE half bit patterns (floatToHalf per element). */
export function floatsToHalf(src: ArrayLike<number>): Uint16Array {
  const half = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) half[i] = floatToHalf(src[i]!);
  return half;
}

/** Any floating or integer checkpoint tensor as float32 (copying; the source bytes stay untouched). */
export function toFloat32(t: RawTensor): Float32Array {
  const n = numel(t.shape);
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case 'float32':
      if (t.bytes.byteOffset % 4 === 0) return new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + n * 4));
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case 'float16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    case 'bfloat16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      return out;
    }
    case 'float64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    case 'int64':
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      return out;
    case 'int32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      return out;
    case 'int16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      return out;
    case 'int8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      return out;
    case 'uint8': case 'bool':
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      return out;
  }
}

/** Integer tensors (e.g. input_ids in goldens) as plain numbers. */
export function toNumbers(t: RawTensor): number[] {
  return Array.from(toFloat32(t));
}

/** A TensorSource over an in-memory map (tests, converted pickles). */
export class MapSource implements TensorSource {
  constructor(private readonly map: Map<string, RawTensor>, readonly origin: string) {}
  keys(): string[] { return [...this.map.keys()]; }
  has(name: string): boolean { return this.map.has(name); }
  get(name: string): RawTensor {
    const t = this.map.get(name);
    if (!t) throw new Error(`${this.origin}: no tensor named "${name}"`);
    return t;
  }
}
