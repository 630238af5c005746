// Similarity math on embeddings: tiny matrices, so plain JS is the right tool here.

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export { l2normalize } from '../runtime/vectors.js';

/** logits[i][j] = scale * <image_i, text_j> for L2-normalized embeddings (CLIP's logits_per_image). */
export function similarityLogits(images: Float32Array[], texts: Float32Array[], scale: number): number[][] {
  return images.map((im) => texts.map((t) => scale * dot(im, t)));
}

export function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}
