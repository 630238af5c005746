// Similarity math on embeddings: tiny matrices, so plain JS is the right tool here.

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s) || 1;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

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
