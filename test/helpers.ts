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
 * hf-clip-tiny's golden `pixel_values` (and so its image goldens) were made from channels-first uint8
 * pixels read back as channels-last: a bug in the fixture generator (zh-clip-tiny's and the OpenAI goldens'
 * pixels match our preprocessing exactly). This reproduces that mix-up on top of OUR preprocessing, so the
 * image goldens still check our decode + resize + crop + tower end to end.
 */
export async function hfTinyGoldenPixels(files: string[], preprocessorConfig: string): Promise<Float32Array> {
  const { decodeImage, pipelineFromPreprocessorConfig, preprocessImage } = await import('../src/image/index.js');
  const p = pipelineFromPreprocessorConfig(readJson(preprocessorConfig));
  const out: number[] = [];
  for (const f of files) {
    const r = preprocessImage(await decodeImage(f), p);
    const N = r.width * r.height;
    const chw = new Uint8Array(3 * N);
    for (let c = 0; c < 3; c++) for (let k = 0; k < N; k++) chw[c * N + k] = r.uint8[k * 3 + c]!;
    for (let c = 0; c < 3; c++) for (let k = 0; k < N; k++) out.push((chw[k * 3 + c]! / 255 - p.mean[c]!) / p.std[c]!);
  }
  return Float32Array.from(out);
}
