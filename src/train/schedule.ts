// Learning-rate schedules, as open_clip's: linear warmup to the base LR, then cosine decay to minLr.

export interface CosineSchedule {
  baseLr: number;
  /** Warmup steps (LR ramps as base * (step + 1) / warmup). */
  warmup: number;
  /** Total steps; the cosine reaches minLr at the last one. */
  total: number;
  minLr?: number;
}

/** LR for 0-based optimizer step `step`. */
export function cosineLr(s: CosineSchedule, step: number): number {
  if (step < s.warmup) return (s.baseLr * (step + 1)) / s.warmup;
  const span = s.total - s.warmup;
  if (span <= 0) return s.baseLr;
  const e = Math.min(step - s.warmup, span);
  const min = s.minLr ?? 0;
  return min + 0.5 * (1 + Math.cos((Math.PI * e) / span)) * (s.baseLr - min);
}

export const constantLr = (lr: number) => (_step: number): number => lr;
