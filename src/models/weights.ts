// Towers read weights by *canonical* names (one naming for every checkpoint family). A family is a
// resolver from canonical names to its own keys; the tower code never sees checkpoint key names.
import { toFloat32, type TensorSource } from '../io/tensor.js';

export interface Weight {
  data: Float32Array;
  shape: number[];
}

export type Resolver = (canonical: string) => Weight | undefined;

export class TowerWeights {
  constructor(private readonly resolve: Resolver, readonly origin: string) {}

  get(name: string): Weight {
    const w = this.resolve(name);
    if (!w) throw new Error(`${this.origin}: missing weight for "${name}"`);
    return w;
  }

  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }
}

/** Read a checkpoint tensor as float32, or undefined when absent. */
export function read(src: TensorSource, key: string): Weight | undefined {
  if (!src.has(key)) return undefined;
  const t = src.get(key);
  return { data: toFloat32(t), shape: t.shape };
}

/** PyTorch Linear weights are [out, in]; MatMul wants [in, out]. */
export function transpose2d(w: Weight): Weight {
  const [rows, cols] = w.shape as [number, number];
  const out = new Float32Array(rows * cols);
  const src = w.data;
  // Blocked transpose: keeps both reads and writes cache-friendly on large matrices.
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(i0 + B, rows);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(j0 + B, cols);
      for (let i = i0; i < i1; i++) {
        const base = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = src[base + j]!;
      }
    }
  }
  return { data: out, shape: [cols, rows] };
}

export function concat0(ws: Weight[]): Weight {
  const total = ws.reduce((s, w) => s + w.data.length, 0);
  const out = new Float32Array(total);
  let off = 0;
  for (const w of ws) {
    out.set(w.data, off);
    off += w.data.length;
  }
  return { data: out, shape: [ws.reduce((s, w) => s + w.shape[0]!, 0), ...ws[0]!.shape.slice(1)] };
}
