// HWC uint8 RGB -> CHW float32, with the float32 rounding of the reference frameworks
// (each step is rounded to float32, as numpy/torch float32 arrays are).
const f32 = Math.fround;

/**
 * How the reference turns bytes into normalized floats:
 * - 'totensor': torchvision ToTensor (x / 255) then Normalize; OpenAI CLIP.
 * - 'numpy': transformers PIL backend: x * factor in float64 -> float32, then (x - mean) / std.
 * - 'fused': transformers torchvision backend: (x - mean / factor) / (std / factor) in one step.
 */
export type NormalizeArithmetic = 'totensor' | 'numpy' | 'fused';

export interface NormalizeOptions {
  mean: readonly number[];
  std: readonly number[];
  /** Rescale factor (1/255 for CLIP); null = no rescale. 'totensor' always divides by 255. */
  rescale: number | null;
  normalize: boolean;
  arithmetic: NormalizeArithmetic;
}

/** The float each byte value maps to, for one channel. */
function channelTable(o: NormalizeOptions, c: number): Float32Array {
  let m = f32(o.mean[c] ?? 0), s = f32(o.std[c] ?? 1);
  if (o.arithmetic === 'fused' && o.rescale !== null && o.normalize) {
    const inv = f32(1 / o.rescale);
    m = f32(m * inv);
    s = f32(s * inv);
  }
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) {
    let x: number = v;
    if (o.rescale !== null) {
      if (o.arithmetic === 'totensor') x = f32(v / 255);
      else if (o.arithmetic === 'numpy') x = f32(v * o.rescale);
      else if (!o.normalize) x = f32(v * f32(o.rescale)); // fused: folded into mean/std otherwise
    }
    if (o.normalize) x = f32(f32(x - m) / s);
    lut[v] = x;
  }
  return lut;
}

/** Write one RGB image (HWC bytes) into `out` at `offset` as 3 planes of H*W floats. */
export function normalizeInto(rgb: Uint8Array, width: number, height: number, o: NormalizeOptions, out: Float32Array, offset = 0): void {
  const n = width * height;
  if (rgb.length !== n * 3) throw new Error(`expected ${n * 3} RGB bytes, got ${rgb.length}`);
  if (o.normalize && (o.mean.length !== 3 || o.std.length !== 3)) throw new Error('mean and std need 3 values (RGB)');
  for (let c = 0; c < 3; c++) {
    const lut = channelTable(o, c); // only 256 possible inputs per channel
    const plane = offset + c * n;
    for (let i = 0; i < n; i++) out[plane + i] = lut[rgb[i * 3 + c]!]!;
  }
}
