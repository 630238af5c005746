// Dynamic batching: jobs submitted by concurrent requests wait a few milliseconds (or until a batch is full)
// and then run as ONE model call. One call for N inputs costs far less than N calls (per-call overhead,
// better-shaped matrix products), so under load this multiplies throughput instead of queueing single calls.

/** Thrown by submit() when accepting the jobs would exceed the queue bound; the server maps it to 429. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('server busy: the request queue is full, retry later');
  }
}

/**
 * Thrown by submitAll() when a request holds more items than the whole queue: it could never be accepted, so
 * retrying (a 429) would never help. The server maps it to 400; routes name the field before it gets here.
 */
export class NeverFitsError extends Error {
  constructor(readonly items: number, readonly maxQueue: number) {
    super(`${items} inputs in one request; this server queues at most ${maxQueue} (--max-queue)`);
  }
}

export interface BatcherOptions<I, O> {
  /** One model call for all the items; must return one output per item, in order (an Error marks a failed item). */
  run: (items: I[]) => Promise<(O | Error)[]>;
  maxBatch: number;
  /** How long the first job of a batch waits for company. */
  maxWaitMs: number;
  /** Most items allowed to wait (not yet taken by a running batch). */
  maxQueue: number;
  /**
   * The cost of an item, and the most a batch may add up to (an item heavier than that still runs, alone).
   * Images use their pixel count: the whole batch is decoded at once, so this bounds its memory.
   */
  weight?: (item: I) => number;
  maxBatchWeight?: number;
}

interface Job<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: Error) => void;
}

export interface BatcherStats {
  queued: number;
  running: number;
  batches: number;
  items: number;
}

export class Batcher<I, O> {
  private queue: Job<I, O>[] = [];
  private timer?: NodeJS.Timeout;
  private draining = false;
  private running = 0;
  private batches = 0;
  private items = 0;
  /** Exponential moving average of a batch's duration, for Retry-After. */
  private avgBatchMs = 50;
  constructor(private readonly o: BatcherOptions<I, O>) {}

  get maxQueue(): number {
    return this.o.maxQueue;
  }

  get maxBatch(): number {
    return this.o.maxBatch;
  }

  get maxWaitMs(): number {
    return this.o.maxWaitMs;
  }

  get stats(): BatcherStats {
    return { queued: this.queue.length, running: this.running, batches: this.batches, items: this.items };
  }

  /** Seconds a client should wait before retrying: the time to drain the current queue, at least 1. */
  retryAfterSeconds(): number {
    const batchesAhead = Math.ceil((this.queue.length + this.running) / this.o.maxBatch) + 1;
    return Math.max(1, Math.ceil((batchesAhead * this.avgBatchMs) / 1000));
  }

  /** Queue all items or none (a request is never half-accepted); resolves with the outputs in order. */
  submitAll(items: I[]): Promise<O[]> {
    // A rejected promise, never a synchronous throw: callers start several submits inside Promise.all.
    if (items.length > this.o.maxQueue) return Promise.reject(new NeverFitsError(items.length, this.o.maxQueue));
    if (this.queue.length + items.length > this.o.maxQueue) return Promise.reject(new QueueFullError(this.retryAfterSeconds()));
    const ps = items.map((item) => new Promise<O>((resolve, reject) => this.queue.push({ item, resolve, reject })));
    this.schedule();
    return Promise.all(ps);
  }

  submit(item: I): Promise<O> {
    return this.submitAll([item]).then((o) => o[0]!);
  }

  private schedule(): void {
    if (this.draining) return; // the drain loop picks new jobs up when the current batch ends
    if (this.queue.length >= this.o.maxBatch) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.drain();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.drain();
      }, this.o.maxWaitMs);
    }
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      // One batch at a time per tower; jobs that arrived meanwhile have already waited, so run them right away.
      while (this.queue.length) await this.runOne();
    } finally {
      this.draining = false;
    }
  }

  /** How many queued jobs the next batch takes: up to maxBatch, and up to maxBatchWeight (at least one). */
  private batchLength(): number {
    const { weight, maxBatchWeight } = this.o;
    const most = Math.min(this.o.maxBatch, this.queue.length);
    if (!weight || maxBatchWeight === undefined) return most;
    let n = 0;
    for (let w = 0; n < most; n++) {
      w += weight(this.queue[n]!.item);
      if (n > 0 && w > maxBatchWeight) break;
    }
    return n;
  }

  private async runOne(): Promise<void> {
    const jobs = this.queue.splice(0, this.batchLength());
    if (!jobs.length) return;
    this.running = jobs.length;
    const t0 = performance.now();
    try {
      const out = await this.o.run(jobs.map((j) => j.item));
      if (out.length !== jobs.length) throw new Error(`batch returned ${out.length} outputs for ${jobs.length} inputs`);
      jobs.forEach((j, i) => {
        const r = out[i]!;
        if (r instanceof Error) j.reject(r);
        else j.resolve(r);
      });
    } catch (e) {
      for (const j of jobs) j.reject(e as Error);
    } finally {
      this.running = 0;
      this.batches++;
      this.items += jobs.length;
      this.avgBatchMs = 0.8 * this.avgBatchMs + 0.2 * (performance.now() - t0);
    }
  }
}
