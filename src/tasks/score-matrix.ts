// All-pairs dot products (images × classes, images × captions) through ONNX Runtime's Gemm: a JS loop
// manages ~0.3 GMAC/s here, so 1,000 images × 5,000 captions × 512 dims took ~8 s; Gemm takes a fraction.
import { Graph, attr } from '../graph/graph.js';
import { createSession, ort } from '../runtime/session.js';

let gemm: ReturnType<typeof createSession> | undefined;

function session(): ReturnType<typeof createSession> {
  if (!gemm) {
    const g = new Graph('scores');
    const a = g.input('a', 'float32', ['n', 'd']);
    const b = g.input('b', 'float32', ['m', 'd']);
    g.output(g.op('Gemm', [a, b], { transB: attr.i(1) }), 'scores', 'float32', ['n', 'm']);
    gemm = createSession(g);
  }
  return gemm;
}

function stack(rows: readonly Float32Array[], d: number, what: string): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    if (r.length !== d) throw new Error(`${what} ${i} has ${r.length} dimensions, expected ${d}`);
    out.set(r, i * d);
  });
  return out;
}

/**
 * Calls `onRow(scores_i, i)` with scores_i[j] = <a_i, b_j> for every row of `a`, in order. Rows of `a` go
 * through in chunks, so memory stays bounded (chunkRows × b.length floats) however large the matrix:
 * callers reduce each row (ranks, top-k) instead of keeping it.
 */
export async function forEachDotRow(
  a: readonly Float32Array[], b: readonly Float32Array[], onRow: (row: Float32Array, i: number) => void, opts: { chunkRows?: number } = {},
): Promise<void> {
  if (!a.length) return;
  if (!b.length) { a.forEach((_, i) => onRow(new Float32Array(0), i)); return; }
  const d = b[0]!.length;
  const bt = new ort.Tensor('float32', stack(b, d, 'right-hand row'), [b.length, d]);
  const chunk = opts.chunkRows ?? Math.max(1, Math.floor(16_000_000 / b.length));
  const s = await session();
  for (let start = 0; start < a.length; start += chunk) {
    const part = a.slice(start, start + chunk);
    const at = new ort.Tensor('float32', stack(part, d, 'left-hand row'), [part.length, d]);
    const res = (await s.run({ a: at, b: bt })).scores!.data as Float32Array;
    for (let i = 0; i < part.length; i++) onRow(res.subarray(i * b.length, (i + 1) * b.length), start + i);
  }
}

/** The whole score matrix, one Float32Array per row of `a` (for small matrices). */
export async function dotMatrix(a: readonly Float32Array[], b: readonly Float32Array[], opts: { chunkRows?: number } = {}): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  await forEachDotRow(a, b, (row) => out.push(row), opts);
  return out;
}
