// Seedable randomness for training (data order, scratch init). Every use draws from its own stream,
// derived from (seed, stream id), so a position in training (epoch, batch) fixes all randomness
// without saving generator state: the order of epoch e is a pure function of (seed, e).

/** splitmix32: spreads (seed, stream) into well-mixed 32-bit words for xoshiro's state. */
function splitmix32(x: number): () => number {
  let s = x >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128**: small, fast, and good enough for shuffles and Gaussian init. */
export class Rng {
  private readonly s = new Uint32Array(4);
  private spare: number | undefined;

  /** `seed`: a 32-bit unsigned integer. */
  constructor(seed: number, stream = 0) {
    const mix = splitmix32(Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream >>> 0, 0x7feb352d));
    for (let i = 0; i < 4; i++) this.s[i] = mix();
    if (this.s.every((x) => x === 0)) this.s[0] = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  next(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2] ^= s[0]!;
    s[3] ^= s[1]!;
    s[1] ^= s[2]!;
    s[0] ^= s[3]!;
    s[2] ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.next() >>> 5) * 67108864 + (this.next() >>> 6)) / 9007199254740992;
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return z;
    }
    const u = 1 - this.float(); // (0, 1]: log stays finite
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** 0..n-1 in a random order (Fisher-Yates). */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Stream ids, so that data order and init never share draws. */
export const STREAM = {
  init: 1,
  epoch: (e: number) => 1000 + e,
  /** Which caption each image gets in epoch e (--captions sample). */
  captions: (e: number) => 0x20000000 + e,
  /** Augmentation draws of batch b of epoch e. */
  augment: (e: number, b: number) => (0x40000000 + e * 65536 + b) >>> 0,
} as const;
