// Training parameters are the checkpoint's own tensors (names and layout as stored, see clip-loss.ts), so
// only the weight-decay rule is left to say here.

export interface NamedTensor {
  name: string;
  data: Float32Array;
  shape: number[];
}

/**
 * The no-weight-decay rule of the reference training step (train-step.json):
 * "ndim < 2 or bias or norm in name or logit_scale", applied to checkpoint names and shapes.
 */
export function usesWeightDecay(checkpointName: string, ndim: number): boolean {
  return !(ndim < 2 || checkpointName.includes('bias') || checkpointName.includes('norm') || checkpointName.includes('logit_scale'));
}
