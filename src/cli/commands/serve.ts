// `clip serve`: the HTTP API and search page (src/server, src/web) for one model and, optionally, one index.
import type { Command } from 'commander';
import { loadModel, modelOptions, positiveInt } from '../model-options.js';
import { buildServer } from '../../server/app.js';
import { openIndex } from '../../server/search-glue.js';
import { existsSync } from 'node:fs';
import { defaultDbPath } from '../../search/open.js';

const port = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port expects 0-65535, got "${v}"`);
  return n;
};

export function registerServe(program: Command): Command {
  return modelOptions(program.command('serve'))
    .description('serve an HTTP API (embed, classify, search) and a search page')
    .option('--db <path>', `index built by \`clip index\`, for /search and the page (default ${defaultDbPath()} when it exists)`)
    .option('--port <port>', 'port (0 picks a free one)', port, 8080)
    .option('--host <host>', 'address to bind; anything but loopback exposes the model to the network', '127.0.0.1')
    .option('--max-wait-ms <ms>', 'how long a request waits for others to share its model call', positiveInt('--max-wait-ms'), 5)
    .option('--max-queue <n>', 'embedding jobs allowed to wait per tower before answering 429', positiveInt('--max-queue'), 256)
    .option('--max-image-mb <mb>', 'largest image upload, in MiB (413 above)', positiveInt('--max-image-mb'), 10)
    .option('--log', 'log every request (JSON lines on stdout)')
    .action(async (o) => {
      // Same default as clip index / clip search, so `clip index DIR && clip serve` serves that index.
      if (o.db === undefined && existsSync(defaultDbPath())) o.db = defaultDbPath();
      const store = o.db ? await openIndex(o.db) : undefined;
      const model = await loadModel(o);
      if (store && store.info.dim !== model.dim) {
        throw new Error(`--db ${o.db} holds ${store.info.dim}-d vectors; ${o.model} embeds to ${model.dim}-d`);
      }
      const { app } = await buildServer({
        model, modelName: o.model, store, storePath: o.db, logger: !!o.log,
        maxBatch: o.batchSize ?? 16, // images per model call; texts batch up to 64 maxWaitMs: o.maxWaitMs, maxQueue: o.maxQueue, maxImageBytes: o.maxImageMb << 20,
      });
      if (!['127.0.0.1', '::1', 'localhost'].includes(o.host)) {
        process.stderr.write(`clip serve: warning: binding ${o.host}; the API has no authentication, anyone who can reach it can use it\n`);
      }
      const address = await app.listen({ host: o.host, port: o.port });
      process.stderr.write(`clip serve: listening on ${address}${store ? ` (index ${o.db}, ${await store.count()} images)` : ' (no --db: /search disabled)'}\n`);
      // Finish in-flight requests, then free the ORT sessions and the index before exiting.
      const stop = async () => {
        process.stderr.write('clip serve: shutting down\n');
        await app.close();
        await model.release();
        await store?.close();
      };
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await stop();
    });
}
