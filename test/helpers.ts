// Small comparison helpers for tests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import type { ClipModel } from '../src/runtime/clip-model.js';

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): number {
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max abs diff ${d} > ${tol}`);
  return d;
}

export function flat(rows: ArrayLike<number>[]): Float32Array {
  const n = rows.reduce((s, r) => s + r.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const r of rows) {
    out.set(Array.from(r), o);
    o += r.length;
  }
  return out;
}

export function golden(path: string): { get(name: string): Float32Array; shape(name: string): number[]; keys(): string[] } {
  const f = new SafetensorsFile(path);
  return { get: (n) => toFloat32(f.get(n)), shape: (n) => f.info(n)!.shape, keys: () => f.keys() };
}

export const readJson = (p: string): any => JSON.parse(readFileSync(p, 'utf8'));

/**
 * A gradient against its reference, element by element, with the tolerance of the training-step goldens
 * (1e-4 absolute or 1e-3 relative: float32 sums in another order); returns the worst absolute difference.
 */
export function assertGradClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): number {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    worst = Math.max(worst, d);
    assert.ok(d <= 1e-4 || d <= 1e-3 * Math.abs(expected[i]!), `${what}[${i}] ${actual[i]} vs ${expected[i]}`);
  }
  return worst;
}

/** What assertParamsAfterStep saw: elements off by more than 1e-5 (within gradient noise), the worst where |grad| >= 1e-5. */
export interface AfterStepStats { explained: number; worstWellConditioned: number }

/**
 * Parameters after one AdamW step against the reference: within 1e-5, plus what the gradient difference
 * explains through Adam's first step (|Δp| ≤ lr·eps·|g1 − g2| / (min|g| + eps)², the slope of
 * lr·g/(|g| + eps) between our gradient g1 and the reference g2; see train-step.test.ts). Adds to `stats`.
 */
export function assertParamsAfterStep(
  actual: ArrayLike<number>, expected: ArrayLike<number>, g1: ArrayLike<number>, g2: ArrayLike<number>,
  lr: number, eps: number, what: string, stats: AfterStepStats = { explained: 0, worstWellConditioned: 0 },
): AfterStepStats {
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    const m = Math.sign(g1[i]!) === Math.sign(g2[i]!) ? Math.min(Math.abs(g1[i]!), Math.abs(g2[i]!)) : 0;
    const noise = (lr * eps * Math.abs(g1[i]! - g2[i]!)) / (m + eps) ** 2;
    if (d > 1e-5) stats.explained++;
    if (Math.abs(g2[i]!) >= 1e-5) stats.worstWellConditioned = Math.max(stats.worstWellConditioned, d);
    assert.ok(d <= 1e-5 + noise, `${what}[${i}] ${actual[i]} vs ${expected[i]} (grads ${g1[i]} vs ${g2[i]})`);
  }
  return stats;
}

/**
 * The image half of a parity golden: our preprocessing of the files gives its `pixel_values` (< 1e-5), and
 * the unnormalized image features its `image_features` (within `tol`).
 */
export async function assertImagesMatchGolden(m: ClipModel, photos: string[], g: ReturnType<typeof golden>, tol: number): Promise<void> {
  const pixels = flat(await Promise.all(photos.map((f) => m.preprocessor(f, f))));
  const d = maxAbsDiff(pixels, g.get('pixel_values'));
  assert.ok(d < 1e-5, `pixel_values: max abs diff ${d}`);
  const feats = await m.encodeImages(photos, { normalize: false });
  for (const r of feats) assert.ok(r.embedding, r.error);
  assertClose(flat(feats.map((r) => r.embedding!)), g.get('image_features'), tol, 'image_features');
}
