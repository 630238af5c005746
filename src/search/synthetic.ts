// Seeded synthetic embeddings for the ANN recall test and the search bench.
//
// Not i.i.d. Gaussian: in 512 dims such vectors are all nearly orthogonal, the "nearest" neighbours are barely
// nearer than the rest, and every ANN index degenerates (measured: IVF_PQ, HNSW_SQ, IVF_RQ all < 0.65
// recall@10 at 50k). Real CLIP embeddings cluster by content, so rows here are unit vectors drawn around
// random cluster centres (cosine to the own centre ~0.7, between members ~0.5, across clusters ~0).

/** mulberry32: small, fast, good enough for test data, and reproducible across runs and machines. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller, both outputs used). */
export function gaussian(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = rand() || Number.MIN_VALUE;
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * rand();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

export interface ClusterOptions {
  clusters?: number;
  /** Noise scale relative to the centre's scale: 1 gives cosine ~0.7 to the centre. */
  spread?: number;
  seed?: number;
}

export class ClusteredVectors {
  private readonly centres: Float32Array;
  readonly clusters: number;
  private readonly spread: number;

  constructor(readonly dim: number, opts: ClusterOptions = {}) {
    this.clusters = opts.clusters ?? 1000;
    this.spread = opts.spread ?? 1;
    const g = gaussian(rng(opts.seed ?? 1));
    this.centres = Float32Array.from({ length: this.clusters * dim }, g);
  }

  /** `n` unit rows, row-major; the same `seed` always gives the same rows. */
  sample(n: number, seed: number): Float32Array {
    const rand = rng(seed);
    const g = gaussian(rand);
    const d = this.dim;
    const out = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(rand() * this.clusters) * d;
      let norm = 0;
      for (let j = 0; j < d; j++) {
        const x = this.centres[c + j]! + this.spread * g();
        out[i * d + j] = x;
        norm += x * x;
      }
      const inv = 1 / Math.sqrt(norm);
      for (let j = 0; j < d; j++) out[i * d + j] *= inv;
    }
    return out;
  }
}

/**
 * Write `n` small distinct PNGs (solid colours, stripes, checkerboards, noise; seeded) into `dir`, named
 * `${prefix}0000.png`...; returns their paths. Test collections, not photos: what matters is that every
 * image differs, so an image query has exactly one right answer.
 */
export async function writePatternPngs(dir: string, n: number, opts: { seed?: number; size?: number; prefix?: string } = {}): Promise<string[]> {
  const { default: sharp } = await import('sharp');
  const { mkdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  await mkdir(dir, { recursive: true });
  const rand = rng(opts.seed ?? 7);
  const size = opts.size ?? 16;
  const byte = () => Math.floor(rand() * 256);
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = [byte(), byte(), byte()];
    const b = [byte(), byte(), byte()];
    const period = 1 + Math.floor(rand() * 4);
    const px = Buffer.alloc(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const o = (y * size + x) * 3;
        let c: number[];
        switch (i % 4) {
          case 0: c = a; break;
          case 1: c = Math.floor(x / period) % 2 ? a : b; break;
          case 2: c = (Math.floor(x / period) + Math.floor(y / period)) % 2 ? a : b; break;
          default: c = [byte(), byte(), byte()];
        }
        px[o] = c[0]!;
        px[o + 1] = c[1]!;
        px[o + 2] = c[2]!;
      }
    }
    const p = join(dir, `${opts.prefix ?? 'g'}${String(i).padStart(4, '0')}.png`);
    await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(p);
    paths.push(p);
  }
  return paths;
}
