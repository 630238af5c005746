// Decode + preprocess on worker threads. libvips already decodes off the main thread, but the exact
// (PIL-matching) resize is JavaScript: on a 12 MP photo it costs several times the decode and, on the main
// thread, runs one image at a time. A pool spreads it over the cores that inference leaves free.
//
// Each worker takes one image at a time and applies the same limits as the main thread, so an image is
// accepted or refused exactly as without the pool; decoded memory in flight is then at most the pool size
// times one image's budget (CLIP_DECODE_MEMORY_MB). libvips keeps one error buffer for the whole process,
// so a failed decode is re-run on the main thread while every worker is idle, for a message of its own.
import { SHARE_ENV, Worker } from 'node:worker_threads';
import type { PreprocessSpec } from '../models/checkpoint.js';
import type { ImageInput, ImagePreprocessor, PreprocessorOptions } from './preprocess.js';

interface Pending { resolve: (px: Float32Array) => void; reject: (e: Error) => void; input: ImageInput; name: string }
interface Slot { worker: Worker; busy: boolean; failed?: Error }
interface Queued { input: ImageInput; name: string; pending: Pending }

const WORKER_URL = new URL('./preprocess-worker.js', import.meta.url);

export class PreprocessPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Queued[] = [];
  private readonly pending = new Map<number, Pending & { slot: Slot }>();
  /** Failed decodes waiting for the re-run on the main thread. */
  private readonly retries: Queued[] = [];
  private retrying = false;
  private nextId = 0;
  private closed = false;

  /** `local`: the main thread's preprocessor, for the re-runs. */
  constructor(spec: PreprocessSpec, opts: PreprocessorOptions, readonly size: number, private readonly local: ImagePreprocessor) {
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`preprocess pool size must be a positive integer, got ${size}`);
    for (let i = 0; i < size; i++) {
      // SHARE_ENV: limits set in the environment after load (CLIP_MAX_IMAGE_PIXELS & co.) apply here too.
      // execArgv []: the parent's node flags (e.g. --input-type of a `node -e` host) can be invalid for a worker file.
      const worker = new Worker(WORKER_URL, { workerData: { spec, opts }, env: SHARE_ENV, execArgv: [] });
      const slot: Slot = { worker, busy: false };
      worker.unref(); // an idle pool never keeps the process alive
      worker.on('message', (m: { id: number; pixels?: Float32Array; error?: string; decoderFailure?: boolean }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        slot.busy = false;
        if (m.decoderFailure) this.retries.push({ input: p.input, name: p.name, pending: p });
        else if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.pixels!);
        this.pump();
      });
      const fail = (e: Error) => {
        if (slot.failed) return;
        slot.failed = e;
        slot.busy = false;
        // The image a dead worker held is not its fault: it goes back to the queue (or, with no worker left,
        // everything runs on the main thread: a broken pool only costs speed).
        for (const [id, p] of this.pending) if (p.slot === slot) { this.pending.delete(id); this.queue.unshift({ input: p.input, name: p.name, pending: p }); }
        if (this.broken()) for (const q of this.queue.splice(0)) this.local(q.input, q.name).then(q.pending.resolve, q.pending.reject);
        this.pump();
      };
      worker.on('error', (e) => fail(new Error(`image preprocessing worker failed: ${e.message}`)));
      worker.on('exit', (code) => { if (!this.closed) fail(new Error(`image preprocessing worker exited (code ${code})`)); });
      this.slots.push(slot);
    }
  }

  run(input: ImageInput, name: string): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new Error('the image preprocessing pool is closed'));
    if (this.broken()) return this.local(input, name);
    return new Promise((resolve, reject) => {
      this.queue.push({ input, name, pending: { resolve, reject, input, name } });
      this.pump();
    });
  }

  private broken(): boolean {
    return this.slots.every((s) => s.failed);
  }

  private pump(): void {
    if (this.retries.length || this.retrying) {
      // Nothing new starts until the re-runs are done; each runs once no worker is decoding.
      if (this.retrying || this.slots.some((s) => s.busy)) return;
      const job = this.retries.shift()!;
      this.retrying = true;
      this.local(job.input, job.name).then(job.pending.resolve, job.pending.reject).finally(() => {
        this.retrying = false;
        this.pump();
      });
      return;
    }
    for (const slot of this.slots) {
      if (slot.busy || slot.failed || !this.queue.length) continue;
      const job = this.queue.shift()!;
      const id = this.nextId++;
      slot.busy = true;
      this.pending.set(id, { ...job.pending, slot });
      slot.worker.ref(); // busy: keep the process alive until the answer comes
      slot.worker.postMessage({ id, input: job.input, name: job.name });
    }
    for (const slot of this.slots) if (!slot.busy) slot.worker.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of [...this.queue.splice(0), ...this.retries.splice(0)]) q.pending.reject(new Error('the image preprocessing pool is closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
