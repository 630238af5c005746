// torch's uint8 antialiased resize (torch.nn.functional.interpolate(antialias=True) on a uint8
// tensor, which torchvision.transforms.v2.functional.resize uses, and so does transformers v5's
// default "torchvision backend" image processors). It follows Pillow's scheme but quantizes the
// taps to int16 with a per-axis precision, so results differ from PIL by about one level.
// Reproduced from ATen's UpSampleKernel.cpp (_compute_indices_min_size_weights_aa,
// _compute_index_ranges_int16_weights, basic_loop_aa_horizontal/vertical<uint8_t>).
import type { ResampleFilter } from './resample.js';
import { cropRows, horizontalPass, verticalPass, windowTaps, type AxisWindow, type FixedTaps } from './fixed-point-passes.js';

type Filter = (x: number) => number;

// Keys cubic, a = -0.5, in ATen's evaluation order (cubic_convolution1/2), which rounds
// differently from Pillow's in the last bits.
const cubic: Filter = (x) => {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
};

const linear: Filter = (x) => {
  x = Math.abs(x);
  return x < 1 ? 1 - x : 0;
};

interface Taps { start: Int32Array; count: Int32Array; k: Int32Array; ksize: number; precision: number }

function int16Taps(inSize: number, outSize: number, filter: Filter, interpSize: number): Taps {
  const scale = inSize / outSize;
  const support = scale >= 1 ? interpSize * 0.5 * scale : interpSize * 0.5;
  const ksize = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1 ? 1 / scale : 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const w = new Float64Array(outSize * ksize);
  let wtMax = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0), ksize);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const v = filter((j + xmin - center + 0.5) * invscale);
      w[i * ksize + j] = v;
      total += v;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        w[i * ksize + j] /= total;
        wtMax = Math.max(wtMax, w[i * ksize + j]!);
      }
    }
    start[i] = xmin;
    count[i] = xsize;
  }
  // Largest precision (< 22 bits) at which the biggest tap still fits in an int16.
  let precision = 0;
  for (; precision < 22; precision++) {
    if (Math.trunc(0.5 + wtMax * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const k = new Int32Array(outSize * ksize);
  const one = 2 ** precision;
  for (let i = 0; i < k.length; i++) {
    const v = w[i]! * one;
    k[i] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return { start, count, k, ksize, precision };
}

/**
 * torch uint8 antialiased resize of interleaved bands: horizontal pass, then vertical, each
 * rounding to uint8. Supports 'bicubic' and 'bilinear' (the modes torch runs natively on uint8).
 */
export function resampleBandsTorch(
  src: Uint8Array, inW: number, inH: number, ch: number, outW: number, outH: number, filter: ResampleFilter,
  win?: { x: AxisWindow; y: AxisWindow },
): Uint8Array {
  if (outW <= 0 || outH <= 0) throw new Error(`invalid resize target ${outW}x${outH}`);
  if (filter !== 'bicubic' && filter !== 'bilinear') {
    throw new Error(`torch uint8 antialiased resize supports bicubic and bilinear, not "${filter}"`);
  }
  const fn = filter === 'bicubic' ? cubic : linear;
  const interp = filter === 'bicubic' ? 4 : 2;
  const xw = win?.x ?? { first: 0, n: outW };
  const yw = win?.y ?? { first: 0, n: outH };
  // torch runs the horizontal pass over every input row; computing only the rows the vertical
  // taps of the window read gives the same bytes.
  let rowFirst = 0, rows = inH;
  let vt: FixedTaps | undefined;
  let vprec = 0;
  if (outH !== inH) {
    const t = int16Taps(inH, outH, fn, interp);
    vprec = t.precision;
    vt = windowTaps(t, win?.y);
    rowFirst = vt.start[0]!;
    rows = vt.start[yw.n - 1]! + vt.count[yw.n - 1]! - rowFirst;
  } else {
    rowFirst = yw.first;
    rows = yw.n;
  }
  let cur: Uint8Array;
  let w = inW;
  if (outW !== inW) {
    const t = int16Taps(inW, outW, fn, interp);
    cur = horizontalPass(src, inW, ch, rowFirst, rows, xw.n, windowTaps(t, win?.x), 1 << (t.precision - 1), t.precision);
    w = xw.n;
  } else {
    cur = cropRows(src, inW, ch, rowFirst, rows, xw);
    w = xw.n;
  }
  if (vt) cur = verticalPass(cur, w, ch, rowFirst, yw.n, vt, 1 << (vprec - 1), vprec);
  return cur === src ? src.slice() : cur;
}

/**
 * torch NEAREST_EXACT (what transformers maps PIL NEAREST to): source position
 * max((i + 0.5) * scale - 0.5, 0), rounded by floor(x + 0.5), in float32, clamped to the
 * last pixel. (Not covered by the reference fixtures.)
 */
export function resizeNearestExactTorch(src: Uint8Array, inW: number, inH: number, ch: number, outW: number, outH: number): Uint8Array {
  const f = Math.fround;
  const index = (inSize: number, outSize: number): Int32Array => {
    const scale = f(inSize / outSize);
    const idx = new Int32Array(outSize);
    for (let i = 0; i < outSize; i++) {
      const real = Math.max(f(f(scale * (i + 0.5)) - 0.5), 0);
      idx[i] = Math.min(Math.floor(f(real + 0.5)), inSize - 1);
    }
    return idx;
  };
  const xs = index(inW, outW), ys = index(inH, outH);
  const out = new Uint8Array(outW * outH * ch);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = (y * outW + x) * ch, s = (ys[y]! * inW + xs[x]!) * ch;
      for (let b = 0; b < ch; b++) out[o + b] = src[s + b]!;
    }
  }
  return out;
}
