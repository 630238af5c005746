// `clip worker`: take `clip index --queue` batches from Redis, embed them, upsert into the shared index.
// Run as many as there are cores or GPUs, on any machine that sees the files at the same paths.
import type { Command } from 'commander';
import { indexFiles } from '../../search/indexer.js';
import { openStore } from '../../search/open.js';
import { isPostgresUrl, redactUrl } from '../../search/pg-store.js';
import { DEFAULT_LOCK_MS, redactRedisUrl, startWorker } from '../../search/queue.js';
import { loadModel, modelId, modelOptions, positiveInt } from '../model-options.js';

export function registerWorker(program: Command): Command {
  return modelOptions(program.command('worker'))
    .description('embed the batches `clip index --queue` enqueued, into a shared postgres:// index (runs until stopped)')
    .requiredOption('--queue <url>', 'the Redis of the queue (redis://host:port)')
    .requiredOption('--db <url>', 'the shared index: postgres://user:password@host/db')
    .option('--concurrency <n>', 'jobs at once in this process', positiveInt('--concurrency'), 1)
    .option('--lock-ms <ms>', 'how long a job stays with a worker that stopped answering before another takes it (longer than the slowest batch)', positiveInt('--lock-ms'), DEFAULT_LOCK_MS)
    .action(async (o) => {
      if (!isPostgresUrl(o.db)) throw new Error('--db: workers write to a shared index; give a postgres:// URL');
      const model = await loadModel(o);
      const store = await openStore(o.db, { create: { dim: model.dim, model: modelId(o.model) } });
      if (store.info.dim !== model.dim) throw new Error(`--db ${redactUrl(o.db)} holds ${store.info.dim}-d vectors; ${o.model} embeds to ${model.dim}-d`);
      if (store.info.model && store.info.model !== modelId(o.model)) process.stderr.write(`clip worker: warning: the index was built with ${store.info.model}, not ${modelId(o.model)}; scores mix two models\n`);
      const worker = await startWorker(o.queue, (data) => indexFiles(model, store, data.files.map((f) => f.path)), {
        concurrency: o.concurrency,
        lockMs: o.lockMs,
        onDone: (id, r) => process.stderr.write(`clip worker: job ${id}: ${r.embedded} embedded, ${r.reused} reused, ${r.failed.length} failed\n`),
        onFailed: (id, e) => process.stderr.write(`clip worker: job ${id} failed: ${e.message}\n`),
      });
      process.stderr.write(`clip worker: ready (queue ${redactRedisUrl(o.queue)}, index ${redactUrl(o.db)})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.stderr.write('clip worker: finishing the job in hand, then stopping\n');
      await worker.close();
      await store.close();
      await model.release();
    });
}
