// Keep the k best (score, index) pairs seen so far. k is small (tens), so a sorted insert beats a heap.

export class TopK {
  readonly scores: number[] = [];
  readonly items: number[] = [];
  constructor(readonly k: number) {}

  /** Lowest score still kept, or -Infinity while not full: callers skip work for anything below it. */
  get floor(): number {
    return this.scores.length < this.k ? -Infinity : this.scores[this.scores.length - 1]!;
  }

  push(score: number, item: number): void {
    if (this.k <= 0 || score <= this.floor) return;
    let i = this.scores.length;
    while (i > 0 && this.scores[i - 1]! < score) i--;
    this.scores.splice(i, 0, score);
    this.items.splice(i, 0, item);
    if (this.scores.length > this.k) {
      this.scores.pop();
      this.items.pop();
    }
  }
}

/** Dot product of `q` with row `row` of a row-major matrix; unrolled by 4 because this is the hot loop of exact search. */
export function dotRow(q: Float32Array, mat: Float32Array, row: number): number {
  const d = q.length;
  const o = row * d;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 3 < d; i += 4) {
    s0 += q[i]! * mat[o + i]!;
    s1 += q[i + 1]! * mat[o + i + 1]!;
    s2 += q[i + 2]! * mat[o + i + 2]!;
    s3 += q[i + 3]! * mat[o + i + 3]!;
  }
  for (; i < d; i++) s0 += q[i]! * mat[o + i]!;
  return s0 + s1 + s2 + s3;
}
