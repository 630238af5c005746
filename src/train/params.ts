// Parameter bookkeeping between the graph's canonical initializers and the HF CLIPModel state dict.
// The towers store Linear weights transposed ([in, out] for MatMul) and pack HF's q/k/v projections into
// one attn.qkv tensor; everything elementwise (AdamW) runs in the canonical layout, and only the edges
// (comparing with references, saving, optimizer state files) convert.
import { hfClipKeys } from '../models/families/hf-clip.js';
import { concat0, transpose2d, type Weight } from '../models/weights.js';

/** Canonical name -> checkpoint key(s); undefined for graph constants that are not parameters. */
export type KeyMapper = (canonical: string) => string[] | undefined;

export const hfKeys: KeyMapper = hfClipKeys;

/**
 * Canonical weights that the towers transpose at build time (transformer.ts and clip-graph.ts pass
 * `{ linear: true }` for exactly these): the attention/MLP Linear weights and the two projections.
 */
export function isTransposedLinear(canonical: string): boolean {
  return /\.(attn\.(qkv|out)|mlp\.fc[12])\.weight$/.test(canonical) || /^(visual|text)\.proj$/.test(canonical);
}

export interface NamedTensor {
  name: string;
  data: Float32Array;
  shape: number[];
}

/** A canonical parameter in checkpoint layout: un-transposed and, for qkv, split into q, k, v. */
export function toCheckpointLayout(canonical: string, w: Weight, keys: KeyMapper = hfKeys): NamedTensor[] {
  const names = keys(canonical);
  if (!names) throw new Error(`no checkpoint key for parameter "${canonical}"`);
  const t = isTransposedLinear(canonical) ? transpose2d(w) : w;
  if (names.length === 1) return [{ name: names[0]!, data: t.data, shape: t.shape }];
  // Packed along the first (output) axis in checkpoint layout.
  const rows = t.shape[0]! / names.length;
  const per = t.data.length / names.length;
  return names.map((name, k) => ({ name, data: t.data.slice(k * per, (k + 1) * per), shape: [rows, ...t.shape.slice(1)] }));
}

/** The inverse: gather checkpoint tensors into one canonical parameter. */
export function fromCheckpointLayout(canonical: string, get: (key: string) => Weight, keys: KeyMapper = hfKeys): Weight {
  const names = keys(canonical);
  if (!names) throw new Error(`no checkpoint key for parameter "${canonical}"`);
  const parts = names.map(get);
  const w = parts.length === 1 ? parts[0]! : concat0(parts);
  return isTransposedLinear(canonical) ? transpose2d(w) : w;
}

/**
 * The no-weight-decay rule of the reference training step (train-step.json):
 * "ndim < 2 or bias or norm in name or logit_scale", applied to checkpoint names and shapes.
 */
export function usesWeightDecay(checkpointName: string, ndim: number): boolean {
  return !(ndim < 2 || checkpointName.includes('bias') || checkpointName.includes('norm') || checkpointName.includes('logit_scale'));
}

/** Decay for a canonical parameter: every checkpoint tensor behind it must agree. */
export function canonicalUsesWeightDecay(canonical: string, shape: number[], keys: KeyMapper = hfKeys): boolean {
  const parts = toCheckpointLayoutShapes(canonical, shape, keys);
  const votes = new Set(parts.map((p) => usesWeightDecay(p.name, p.shape.length)));
  if (votes.size !== 1) throw new Error(`parameter "${canonical}" packs tensors with different weight-decay rules`);
  return votes.has(true);
}

/** Checkpoint names and shapes behind a canonical parameter, without touching data. */
export function toCheckpointLayoutShapes(canonical: string, shape: number[], keys: KeyMapper = hfKeys): { name: string; shape: number[] }[] {
  const names = keys(canonical) ?? [canonical];
  const s = isTransposedLinear(canonical) ? [...shape].reverse() : [...shape];
  return names.map((name) => ({ name, shape: names.length === 1 ? s : [s[0]! / names.length, ...s.slice(1)] }));
}
