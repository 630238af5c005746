// Pillow's 8-bit resampling, reproduced operation for operation so results are bit-identical:
// separable convolution (horizontal pass, then vertical), coefficients normalized in double
// precision, then quantized to 22-bit fixed point; each pass clips to 0..255.
// Plus Pillow's NEAREST resize, which is an affine nearest-neighbour scale, not a convolution.

import { cropRows, horizontalPass, verticalPass, windowTaps, type AxisWindow } from './fixed-point-passes.js';
export type ResampleFilter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

/** PIL's integer codes (Image.Resampling), as found in `resample` of preprocessor_config.json. */
export const PIL_RESAMPLE: Readonly<Record<number, ResampleFilter>> = {
  0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming',
};

interface Kernel { fn: (x: number) => number; support: number }

const sinc = (x: number): number => {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
};

// Pillow writes the hamming constants as C floats; keep their float32 values.
const H054 = Math.fround(0.54);
const H046 = Math.fround(0.46);

const KERNELS: Record<Exclude<ResampleFilter, 'nearest'>, Kernel> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      const px = x * Math.PI;
      return (Math.sin(px) / px) * (H054 + H046 * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    // Keys cubic with a = -0.5, in the same operation order as Pillow.
    fn: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface Coeffs {
  /** Per output index: first input index and number of taps. */
  start: Int32Array;
  count: Int32Array;
  /** Fixed-point taps, `ksize` slots per output index. */
  k: Int32Array;
  ksize: number;
}

/** Filter taps for one axis (Pillow's precompute_coeffs + normalize_coeffs_8bpc, box = whole image). */
function coefficients(inSize: number, outSize: number, kernel: Kernel): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1); // upscaling keeps the kernel at its natural width
  const support = kernel.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts truncate toward zero; the clamp makes the difference for negatives harmless.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = kernel.fn((x + xmin - center + 0.5) * ss);
      sum += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = sum !== 0 ? w[x]! / sum : w[x]!;
      // Round half away from zero into fixed point, as Pillow does.
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, k, ksize };
}

/**
 * Pillow ImagingResample on interleaved 8-bit bands (each band independently).
 * No mode logic here: see resize.ts for what Image.resize() does around it.
 */
export function resampleBands(
  src: Uint8Array, inW: number, inH: number, ch: number, outW: number, outH: number, filter: ResampleFilter,
  win?: { x: AxisWindow; y: AxisWindow },
): Uint8Array {
  if (filter === 'nearest') {
    const full = resizeNearest(src, inW, inH, ch, outW, outH);
    return win ? cropRows(full, outW, ch, win.y.first, win.y.n, win.x) : full;
  }
  if (outW <= 0 || outH <= 0) throw new Error(`invalid resize target ${outW}x${outH}`);
  const kernel = KERNELS[filter];
  if (!kernel) throw new Error(`unknown resample filter "${filter}"`);
  const needH = outW !== inW;
  const needV = outH !== inH;
  const xw = win?.x ?? { first: 0, n: outW };
  const yw = win?.y ?? { first: 0, n: outH };
  // Only the rows the vertical pass reads are resampled horizontally (values unchanged), and with a
  // window only the output pixels the caller keeps are computed at all.
  let rowFirst = yw.first, rows = yw.n;
  let vc: Coeffs | undefined;
  if (needV) {
    vc = windowTaps(coefficients(inH, outH, kernel), win?.y);
    rowFirst = vc.start[0]!;
    rows = vc.start[yw.n - 1]! + vc.count[yw.n - 1]! - rowFirst;
  }
  let cur = needH
    ? horizontalPass(src, inW, ch, rowFirst, rows, xw.n, windowTaps(coefficients(inW, outW, kernel), win?.x), HALF, PRECISION_BITS)
    : cropRows(src, inW, ch, rowFirst, rows, xw);
  if (vc) cur = verticalPass(cur, xw.n, ch, rowFirst, yw.n, vc, HALF, PRECISION_BITS);
  return cur;
}

/**
 * Pillow's NEAREST resize (ImagingScaleAffine): source position starts at scale/2 and is
 * advanced by repeated addition, truncated to an index; anything outside is filled with 0.
 */
export function resizeNearest(src: Uint8Array, inW: number, inH: number, ch: number, outW: number, outH: number): Uint8Array {
  if (outW <= 0 || outH <= 0) throw new Error(`invalid resize target ${outW}x${outH}`);
  const index = (inSize: number, outSize: number): Int32Array => {
    const a = inSize / outSize;
    const idx = new Int32Array(outSize);
    let pos = a * 0.5;
    for (let i = 0; i < outSize; i++) {
      const v = pos < 0 ? -1 : Math.trunc(pos);
      idx[i] = v >= 0 && v < inSize ? v : -1;
      pos += a; // accumulated, not (i + 0.5) * a: rounding drift must match Pillow
    }
    return idx;
  };
  const xs = index(inW, outW), ys = index(inH, outH);
  const out = new Uint8Array(outW * outH * ch);
  for (let y = 0; y < outH; y++) {
    const yi = ys[y]!;
    if (yi < 0) continue;
    for (let x = 0; x < outW; x++) {
      const xi = xs[x]!;
      if (xi < 0) continue;
      const o = (y * outW + x) * ch, s = (yi * inW + xi) * ch;
      for (let b = 0; b < ch; b++) out[o + b] = src[s + b]!;
    }
  }
  return out;
}
