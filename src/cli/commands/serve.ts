// `clip serve`: the HTTP API and search page (src/server, src/web) for one model and, optionally, one index.
import type { Command } from 'commander';
import { loadModel, modelOptions } from '../model-options.js';
import { buildServer } from '../../server/app.js';
import { openIndex } from '../../server/search-glue.js';
import { existsSync } from 'node:fs';
import { defaultDbPath } from '../../search/open.js';
import { shownDb } from '../../search/redact-url.js';

/** An integer flag within [min, max]; the bounds keep every value meaningful (no 0 = "unlimited", no overflow). */
const intIn = (flag: string, min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${flag} expects an integer from ${min} to ${max}, got "${v}"`);
  return n;
};

const list = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

export function registerServe(program: Command): Command {
  return modelOptions(program.command('serve'))
    .description('serve an HTTP API (embed, classify, search) and a search page')
    .option('--db <path>', `index built by \`clip index\`, for /search and the page (default ${defaultDbPath()} when it exists)`)
    .option('--port <port>', 'port (0 picks a free one)', intIn('--port', 0, 65535), 8080)
    .option('--host <host>', 'address to bind; anything but loopback exposes the model to the network', '127.0.0.1')
    .option('--allowed-hosts <names>', 'Host names to answer besides localhost, 127.0.0.1, [::1] and --host (comma-separated; .example.org = with subdomains; * = any)', list)
    .option('--max-wait-ms <ms>', 'how long a request waits for others to share its model call', intIn('--max-wait-ms', 0, 10_000), 5)
    .option('--max-queue <n>', 'embedding jobs allowed to wait per tower before answering 429', intIn('--max-queue', 1, 1_000_000), 256)
    .option('--max-image-mb <mb>', 'largest image upload, in MiB (413 above)', intIn('--max-image-mb', 1, 1024), 10)
    .option('--request-timeout-ms <ms>', 'a request (headers and body) must arrive within this, else 408 (headers: within 10 s at most)', intIn('--request-timeout-ms', 100, 3_600_000), 30_000)
    .option('--max-connections <n>', 'connections open at once; more are refused', intIn('--max-connections', 1, 65_536), 256)
    .option('--log', 'log every request (JSON lines on stdout)')
    .action(async (o) => {
      // Same default as clip index / clip search, so `clip index DIR && clip serve` serves that index.
      if (o.db === undefined && existsSync(defaultDbPath())) o.db = defaultDbPath();
      const store = o.db ? await openIndex(o.db) : undefined;
      // A postgres:// URL may carry a password: /info and the logs get it without.
      const shown = o.db && shownDb(o.db);
      const model = await loadModel(o);
      if (store && store.info.dim !== model.dim) {
        throw new Error(`--db ${shown} holds ${store.info.dim}-d vectors; ${o.model} embeds to ${model.dim}-d`);
      }
      const { app } = await buildServer({
        model, modelName: o.model, store, storePath: shown, logger: !!o.log,
        maxBatch: o.batchSize ?? 16, // images per model call; texts batch up to 64
        maxWaitMs: o.maxWaitMs,
        maxQueue: o.maxQueue,
        maxImageBytes: o.maxImageMb * 2 ** 20,
        host: o.host,
        allowedHosts: o.allowedHosts,
        requestTimeoutMs: o.requestTimeoutMs,
        maxConnections: o.maxConnections,
      });
      if (!['127.0.0.1', '::1', 'localhost'].includes(o.host)) {
        process.stderr.write(`clip serve: warning: binding ${o.host}; the API has no authentication, anyone who can reach it can use it\n`);
      }
      const address = await app.listen({ host: o.host, port: o.port });
      process.stderr.write(`clip serve: listening on ${address}${store ? ` (index ${shown}, ${await store.count()} images)` : ' (no --db: /search disabled)'}\n`);
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
