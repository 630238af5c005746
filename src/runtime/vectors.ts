// Vector helpers the runtime needs (ONNX exports return unnormalized features).
export function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s) || 1;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

/** The renormalized mean of vectors (a prompt ensemble, or a class made of member classes). */
export function meanDirection(vs: readonly Float32Array[]): Float32Array {
  const m = new Float32Array(vs[0]!.length);
  for (const v of vs) for (let d = 0; d < m.length; d++) m[d]! += v[d]!;
  return l2normalize(m);
}
