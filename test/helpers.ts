// Small comparison helpers for tests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';

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
