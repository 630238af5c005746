// Distributed indexing over BullMQ (Redis): `clip index --queue` lists the files and enqueues batches of
// paths; any number of `clip worker` processes embed them and upsert into the shared store.
//
// Delivery is at least once: a worker that dies mid-job holds the job's lock until it expires, then another
// worker runs the job again. Effects are exactly once anyway, because a job's write is one upsert keyed by
// path (a second run rewrites the same rows). A job's id is the hash of its batch (paths, sizes, mtimes), so
// enqueuing the same unchanged batch twice adds one job, not two.
import { createHash } from 'node:crypto';
import type * as BullMQ from 'bullmq';
import type { FoundFile } from './walk.js';
import { redactUrl } from './redact-url.js';

export const QUEUE_NAME = 'clip-index';
/** A job's lock: longer than the slowest batch, else a live worker's job is handed to a second one. */
export const DEFAULT_LOCK_MS = 5 * 60_000;
/** Tries per job (a store or model error, not a bad image: those are reported in the result). */
export const JOB_ATTEMPTS = 5;
/** First retry's delay; each next one doubles (2, 4, 8, 16 s for the default attempts). */
export const BACKOFF_MS = 2000;
/** Most files one job may name: job data comes from Redis, which anyone with access to it can write. */
export const MAX_JOB_FILES = 4096;

export interface IndexJobData {
  /** Absolute paths, with the size and mtime seen when listing (they make the job id). */
  files: { path: string; size: number; mtime: number }[];
}

export interface IndexJobResult {
  files: number;
  embedded: number;
  reused: number;
  failed: { path: string; error: string }[];
}

let bullmq: typeof BullMQ;
let IORedis: new (url: string, opts: object) => { quit(): Promise<unknown>; disconnect(): void };
async function loadBull(): Promise<void> {
  if (bullmq && IORedis) return;
  try {
    bullmq = await import('bullmq');
    IORedis = ((await import('ioredis')) as unknown as { default: typeof IORedis }).default;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new Error('--queue needs the optional packages bullmq and ioredis: `npm i bullmq ioredis`');
  }
}

export const redactRedisUrl = redactUrl;

function connect(url: string) {
  if (!/^rediss?:\/\//i.test(url)) throw new Error(`--queue ${redactRedisUrl(url)}: expected a redis:// (or rediss://) URL`);
  // BullMQ workers block on Redis; ioredis must retry those commands forever instead of failing them.
  return new IORedis(url, { maxRetriesPerRequest: null });
}

/** A batch's job id: the same files in the same state give the same id (BullMQ then keeps one job). */
export function batchId(files: IndexJobData['files']): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\0${f.size}\0${f.mtime}\n`);
  return h.digest('hex').slice(0, 40);
}

/** Enqueue `files` in batches; returns the job ids (in batch order). */
export async function enqueueFiles(url: string, files: FoundFile[], batchSize: number, opts: { attempts?: number } = {}): Promise<string[]> {
  if (batchSize > MAX_JOB_FILES) throw new Error(`--batch-size ${batchSize}: at most ${MAX_JOB_FILES} files per job`);
  await loadBull();
  const connection = connect(url);
  const queue = new bullmq.Queue<IndexJobData>(QUEUE_NAME, { connection: connection as never });
  try {
    const jobs = [];
    for (let i = 0; i < files.length; i += batchSize) {
      const data: IndexJobData = { files: files.slice(i, i + batchSize).map((f) => ({ path: f.path, size: f.size, mtime: f.mtime })) };
      const jobId = batchId(data.files);
      jobs.push({
        name: 'embed', data,
        opts: {
          jobId, attempts: opts.attempts ?? JOB_ATTEMPTS, backoff: { type: 'exponential', delay: BACKOFF_MS },
          // Kept a day so a --wait (or a rerun) can read the result; failed jobs stay for `clip queue` to list.
          removeOnComplete: { age: 24 * 3600 }, removeOnFail: false,
        },
      });
    }
    await queue.addBulk(jobs);
    return jobs.map((j) => j.opts.jobId);
  } finally {
    await queue.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

export interface WaitProgress {
  done: number;
  total: number;
  /** Results of the jobs finished so far. */
  results: IndexJobResult[];
  /** Jobs that failed for good (all attempts), with the last reason. */
  failed: { id: string; reason: string }[];
}

/** A finished job's result as the enqueuer counts it; a result that is missing or malformed (Redis is shared
 * input) counts the job's files as done with nothing embedded, rather than crashing the wait. */
function resultOf(job: BullMQ.Job<IndexJobData, IndexJobResult> | undefined): IndexJobResult {
  const r = job?.returnvalue as Partial<IndexJobResult> | null | undefined;
  const files = Array.isArray(job?.data?.files) ? job.data.files.length : 0;
  const n = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const failed = Array.isArray(r?.failed) ? r.failed.filter((f) => typeof f?.path === 'string' && typeof f?.error === 'string') : [];
  return { files: r && typeof r.files === 'number' ? n(r.files) : files, embedded: n(r?.embedded), reused: n(r?.reused), failed };
}

/** Poll until every job in `ids` has completed or failed for good; `onProgress` after each poll. */
export async function waitForJobs(url: string, ids: string[], onProgress?: (p: WaitProgress) => void, pollMs = 500): Promise<WaitProgress> {
  await loadBull();
  const connection = connect(url);
  const queue = new bullmq.Queue<IndexJobData, IndexJobResult>(QUEUE_NAME, { connection: connection as never });
  const p: WaitProgress = { done: 0, total: ids.length, results: [], failed: [] };
  try {
    let pending = [...ids];
    for (;;) {
      const still: string[] = [];
      for (const id of pending) {
        // State first, then the job: read the other way round, a job completing in between shows as completed
        // without its result.
        const state = await queue.getJobState(id);
        const job = state === 'completed' || state === 'failed' ? await queue.getJob(id) : undefined;
        if (state === 'completed') p.results.push(resultOf(job));
        else if (state === 'failed') p.failed.push({ id, reason: job?.failedReason ?? 'failed (no reason recorded)' });
        // A job removed (completed long ago and aged out) counts as done: its rows are in the store.
        else if (state !== 'unknown') still.push(id);
      }
      pending = still;
      p.done = ids.length - pending.length;
      onProgress?.(p);
      if (!pending.length) return p;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    await queue.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

/** What a worker accepts as a job: anything else fails at once (no retries), with the reason in the failed list. */
export function checkJobData(data: unknown): IndexJobData {
  const files = (data as { files?: unknown } | null)?.files;
  if (!Array.isArray(files) || !files.length) throw new Error('job data: expected {files: [{path, size, mtime}, ...]} with at least one file');
  if (files.length > MAX_JOB_FILES) throw new Error(`job data: ${files.length} files, at most ${MAX_JOB_FILES} per job`);
  files.forEach((f: { path?: unknown; size?: unknown; mtime?: unknown } | null, i) => {
    if (typeof f?.path !== 'string' || !f.path.startsWith('/') || f.path.includes('\0')) throw new Error(`job data: files[${i}].path must be an absolute path`);
    if (typeof f.size !== 'number' || typeof f.mtime !== 'number') throw new Error(`job data: files[${i}] (${f.path}) needs numeric size and mtime`);
  });
  return data as IndexJobData;
}

export interface WorkerHandle {
  /** Finish the job in hand, then stop. */
  close(): Promise<void>;
}

/** Run jobs with `process` until closed. */
export async function startWorker(
  url: string,
  process: (data: IndexJobData) => Promise<IndexJobResult>,
  opts: { concurrency?: number; lockMs?: number; onDone?: (id: string, r: IndexJobResult) => void; onFailed?: (id: string, err: Error) => void } = {},
): Promise<WorkerHandle> {
  await loadBull();
  const connection = connect(url);
  const lockDuration = opts.lockMs ?? DEFAULT_LOCK_MS;
  const worker = new bullmq.Worker<IndexJobData, IndexJobResult>(QUEUE_NAME, async (job) => {
    let data: IndexJobData;
    try {
      data = checkJobData(job.data);
    } catch (e) {
      // Malformed data stays malformed: retrying cannot help.
      throw new bullmq.UnrecoverableError((e as Error).message);
    }
    return process(data);
  }, {
    connection: connection as never,
    concurrency: opts.concurrency ?? 1,
    lockDuration,
    // A dead worker's job is found (and handed to another) within one interval after its lock expired.
    stalledInterval: lockDuration,
    // Killed workers can stall a job more than once (say, a bad file that crashes the process); after that
    // many stalls it is failed with BullMQ's reason, visible in the failed list.
    maxStalledCount: 3,
  });
  worker.on('completed', (job, r) => opts.onDone?.(job.id!, r));
  worker.on('failed', (job, err) => opts.onFailed?.(job?.id ?? '?', err));
  worker.on('error', () => {}); // connection blips: ioredis reconnects; the lock protects the job meanwhile
  await worker.waitUntilReady();
  return {
    close: async () => {
      await worker.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}

export type JobCounts = Record<'waiting' | 'active' | 'delayed' | 'completed' | 'failed', number>;

export interface FailedJob {
  id: string;
  /** The last attempt's error (or BullMQ's, e.g. a job that stalled too often: its workers kept dying). */
  reason: string;
  attempts: number;
  /** When it failed for good, ms since the epoch. */
  failedAt: number | null;
  files: number;
  /** The batch's first file, to tell jobs apart. */
  first: string | null;
}

export interface QueueStatus {
  counts: JobCounts;
  /** Newest first, at most the limit asked for (counts.failed says how many there are). */
  failed: FailedJob[];
}

async function withQueue<T>(url: string, fn: (q: BullMQ.Queue<IndexJobData, IndexJobResult>) => Promise<T>): Promise<T> {
  await loadBull();
  const connection = connect(url);
  const queue = new bullmq.Queue<IndexJobData, IndexJobResult>(QUEUE_NAME, { connection: connection as never });
  try {
    return await fn(queue);
  } finally {
    await queue.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

const failedJob = (j: BullMQ.Job<IndexJobData, IndexJobResult>): FailedJob => {
  // Job data is shown, not trusted: a malformed job is listed too, with what can be read of it.
  const files = Array.isArray(j.data?.files) ? j.data.files : [];
  const first = files[0]?.path;
  return { id: j.id!, reason: j.failedReason ?? '', attempts: j.attemptsMade, failedAt: j.finishedOn ?? null, files: files.length, first: typeof first === 'string' ? first : null };
};

/** Job counts by state, and the failed jobs with their reasons (at most `limit`, newest first). */
export function queueStatus(url: string, limit = 100): Promise<QueueStatus> {
  return withQueue(url, async (q) => {
    const c = await q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
    // Delayed: waiting out a retry's backoff. A paused queue keeps its jobs in waiting.
    const counts: JobCounts = { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 };
    const failed = limit > 0 ? (await q.getFailed(0, limit - 1)).filter(Boolean).map((j) => failedJob(j as BullMQ.Job<IndexJobData, IndexJobResult>)) : [];
    return { counts, failed };
  });
}

/**
 * Put failed jobs back in the queue with their attempts reset: all of them, or those in `ids`. Returns the
 * ids re-queued and, for ids given, those that are not failed jobs (unknown, or in another state) with why.
 */
export function retryFailed(url: string, ids?: string[]): Promise<{ retried: string[]; notRetried: { id: string; reason: string }[] }> {
  return withQueue(url, async (q) => {
    const retried: string[] = [];
    const notRetried: { id: string; reason: string }[] = [];
    const targets: string[] = [];
    if (ids) targets.push(...ids);
    else {
      for (const j of await q.getFailed(0, -1)) if (j) targets.push(j.id!);
    }
    for (const id of targets) {
      const job = await q.getJob(id);
      const state = job ? await job.getState() : 'unknown';
      if (!job || state !== 'failed') {
        notRetried.push({ id, reason: job ? `it is ${state}, not failed` : 'no such job' });
        continue;
      }
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      retried.push(id);
    }
    return { retried, notRetried };
  });
}
