// `clip index` (embed image folders into a vector store, incrementally) and `clip search` (query it by text,
// image, or a signed sum of both).
import { type Command, Option } from 'commander';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ClipModel } from '../../runtime/clip-model.js';
import type { RepairReport } from '../../search/exact-store.js';
import { indexFolders } from '../../search/indexer.js';
import { enqueueFiles, JOB_ATTEMPTS, redactRedisUrl, waitForJobs } from '../../search/queue.js';
import { findImages } from '../../search/walk.js';
import { lockWriter } from '../../search/lock.js';
import { defaultDbPath, openStore, repairStore, storeKindAt, type StoreKind } from '../../search/open.js';
import { loadLance } from '../../search/lance-store.js';
import { isPostgresUrl, shownDb } from '../../search/redact-url.js';
import { detectPreview, previewSequence } from '../../search/preview.js';
import { embedQuery, parseQuery, type QueryTerm } from '../../search/query.js';
import { describeDamage, parseCondition, type Condition, type StoreInfo, type VectorStore } from '../../search/store.js';
import { loadModel, modelId, modelOptions, positiveInt } from '../model-options.js';
import { Progress } from '../progress.js';
import { table } from '../table.js';

const collect = (v: string, prev: string[]) => [...prev, v];
/** A path is made absolute (it is stored and shown); a postgres:// URL is used as given. */
const dbLocation = (db: string | undefined) => (db && isPostgresUrl(db) ? db : resolve(db ?? defaultDbPath()));
/** What to print for the index: a URL without its password. */
const collectCondition = (v: string, prev: Condition[]) => [...prev, parseCondition(v)];

function checkModel(store: VectorStore, model: ClipModel, modelArg: string): void {
  const info: StoreInfo = store.info;
  if (info.dim !== model.dim) throw new Error(`the index holds ${info.dim}-dim embeddings (model ${info.model ?? '?'}); ${modelArg} makes ${model.dim}-dim ones`);
  if (info.model && info.model !== modelId(modelArg)) process.stderr.write(`clip: warning: the index was built with ${info.model}, not ${modelId(modelArg)}; scores mix two models\n`);
}

/** Say what a reader skipped in a damaged index, and how to clean it up. */
function warnDamage(store: VectorStore, db: string, writing: boolean): void {
  if (!store.damage) return;
  process.stderr.write(`clip: warning: ${describeDamage(db, store.damage)}. ` +
    (writing ? 'The damaged bytes stay in place and new rows go after them. ' : '') +
    `Run \`clip index --repair --db ${db}\` to move them to a quarantine file and rewrite the index\n`);
}

function repairSummary(r: RepairReport): string {
  if (r.clean) return `${r.path}: no damage found; left as it was (${r.rows} rows)`;
  const q = r.quarantine!;
  const shown = q.regions.slice(0, 3).map((g) => `${g.end - g.start} bytes at offset ${g.start}: ${g.reason}`);
  if (q.regions.length > 3) shown.push(`${q.regions.length - 3} more`);
  return `${r.path}: repaired: kept ${r.rows} rows from ${r.frames} valid frames; moved ${q.bytes} unreadable bytes ` +
    `(${shown.join('; ')}) to ${q.path}`;
}

/** `clip index --queue`: list the files, skip those indexed unchanged, enqueue the rest for `clip worker`s. */
async function enqueueIndex(dirs: string[], db: string, o: Record<string, any>): Promise<void> {
  if (!isPostgresUrl(db)) throw new Error('--queue needs a shared index: give --db postgres://... (the one the workers write to)');
  if (o.repair || o.store) throw new Error('--queue takes neither --repair nor --store');
  if (!dirs.length) throw new Error('index --queue: name the folders to index');
  for (const d of dirs) if (!existsSync(d)) throw new Error(`${d}: no such file or folder to index`);
  const files = await findImages(dirs);
  // What the workers already wrote (same path, size, mtime) is not queued again; no index yet: queue all.
  const indexed = new Map<string, { size: number; mtime: number }>();
  const store = await openStore(db).catch((e: Error) => {
    if (/^no index at/.test(e.message)) return undefined;
    throw e;
  });
  if (store) {
    try {
      for await (const e of store.entries()) indexed.set(e.id, e.meta);
    } finally {
      await store.close();
    }
  }
  const work = files.filter((f) => {
    const old = indexed.get(f.path);
    return !(old && old.size === f.size && old.mtime === f.mtime && !o.rehash);
  });
  const ids = await enqueueFiles(o.queue, work, o.batchSize ?? 16, { attempts: o.attempts });
  const summary = { db: shownDb(db), queue: redactRedisUrl(o.queue), files: files.length, unchanged: files.length - work.length, queued: work.length, jobs: ids.length };
  if (!o.wait) {
    if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else process.stdout.write(`${summary.db}: queued ${work.length} images in ${ids.length} jobs on ${summary.queue} (${summary.unchanged} unchanged); run \`clip worker\` to embed them\n`);
    return;
  }
  const progress = new Progress('indexing (workers)');
  const done = await waitForJobs(o.queue, ids, (p) => progress.update(p.results.reduce((n, r) => n + r.files, 0), work.length));
  const failed = done.results.flatMap((r) => r.failed);
  const stats = { ...summary, embedded: done.results.reduce((n, r) => n + r.embedded, 0), reused: done.results.reduce((n, r) => n + r.reused, 0), failed, failedJobs: done.failed };
  for (const f of failed) process.stderr.write(`clip: skipped ${f.path}: ${f.error}\n`);
  for (const j of done.failed) process.stderr.write(`clip: job ${j.id} failed: ${j.reason} (\`clip queue status\` lists it; \`clip queue retry\` re-queues it)\n`);
  if (o.json) process.stdout.write(JSON.stringify(stats) + '\n');
  else process.stdout.write(`${summary.db}: ${stats.embedded} embedded, ${stats.reused} reused, ${summary.unchanged} unchanged, ${failed.length} failed, ${done.failed.length} jobs failed\n`);
  if (failed.length || done.failed.length) process.exitCode = 3;
}

export function registerIndexSearch(program: Command): Command {
  modelOptions(program.command('index'))
    .description('embed the images under folders into a searchable index; reruns only embed new or changed files')
    .argument('[dirs...]', 'folders (or single image files) to index')
    .option('--db <path>', `index location: a directory (LanceDB), a .clipvec file (exact search) or a postgres:// URL (Postgres + pgvector, shared) (default ${defaultDbPath()})`)
    .addOption(new Option('--store <kind>', 'kind of a new index (default: exact for *.clipvec, else lance)').choices(['lance', 'exact']))
    .option('--rehash', 'hash every file, even ones whose size and mtime are unchanged')
    .option('--repair', 'first rewrite a damaged exact index with every readable row, moving the unreadable bytes to DB.damaged-<time> (no folders needed)')
    .option('--json', 'print the run statistics as JSON')
    .option('--queue <url>', 'do not embed here: enqueue batches of files on this Redis (redis://host:port) for `clip worker`s writing to a postgres:// --db')
    .option('--attempts <n>', `with --queue: tries per job before it lands in the failed list (default ${JOB_ATTEMPTS}; retries back off 2, 4, 8... s)`, positiveInt('--attempts'))
    .option('--wait', 'with --queue: wait until the workers have done every batch, with one progress bar, and exit like a local run')
    .action(async (dirs: string[], o) => {
      const db = dbLocation(o.db);
      if (o.queue) return enqueueIndex(dirs, db, o);
      if (o.wait || o.attempts) throw new Error(`${o.wait ? '--wait' : '--attempts'} applies to --queue`);
      const shared = isPostgresUrl(db);
      if (shared && o.repair) throw new Error('--repair applies to exact (.clipvec) stores, not to a postgres:// index');
      if (shared && o.store) throw new Error('--store applies to a local index; a postgres:// URL is a Postgres index');
      if (!dirs.length && !o.repair) throw new Error('index: name the folders to index (or give --repair to only repair the index)');
      if (o.repair && !existsSync(db)) throw new Error(`--repair: no index at ${db}`);
      for (const d of dirs) if (!existsSync(d)) throw new Error(`${d}: no such file or folder to index`);
      // A missing optional LanceDB is reported before the model loads, not after.
      if (dirs.length && storeKindAt(db, o.store) === 'lance') await loadLance();
      const model = dirs.length ? await loadModel(o) : undefined;
      // A local index has one writer (a lock file beside it); Postgres orders concurrent writers itself.
      if (!shared) mkdirSync(dirname(db), { recursive: true }); // the lock file and a new store live there
      const release = shared ? async () => {} : await lockWriter(db);
      // Ctrl-C: every commit is atomic, so stopping is safe; just don't leave the lock file behind.
      const onSignal = (sig: NodeJS.Signals) => {
        if (!shared) rmSync(`${db}.lock`, { force: true });
        process.exit(sig === 'SIGINT' ? 130 : 143);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let store: VectorStore | undefined;
      let repair: RepairReport | undefined;
      try {
        if (o.repair) {
          repair = await repairStore(db);
          if (o.json && !model) process.stdout.write(JSON.stringify({ db, repair }) + '\n');
          else if (!o.json) process.stdout.write(repairSummary(repair) + '\n');
        }
        if (!model) return;
        store = await openStore(db, { kind: o.store as StoreKind | undefined, create: { dim: model.dim, model: modelId(o.model) } });
        warnDamage(store, db, true);
        checkModel(store, model, o.model);
        const progress = new Progress('indexing');
        const stats = await indexFolders(model, store, dirs, { batchSize: o.batchSize, rehash: o.rehash, onProgress: (d, t) => progress.update(d, t) });
        for (const f of stats.failed) process.stderr.write(`clip: skipped ${f.path}: ${f.error}\n`);
        const count = await store.count();
        if (o.json) process.stdout.write(JSON.stringify({ db: shownDb(db), ...stats, count, ...(store.damage ? { damage: store.damage } : {}), ...(repair ? { repair } : {}) }) + '\n');
        else {
          process.stdout.write(`${shownDb(db)}: ${count} images indexed (${stats.files} found: ${stats.embedded} embedded, ${stats.reused} reused, ` +
            `${stats.unchanged} unchanged, ${stats.deleted} removed, ${stats.failed.length} failed)\n`);
        }
        if (stats.failed.length) process.exitCode = 3;
      } finally {
        await store?.close();
        await model?.release();
        await release();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  modelOptions(program.command('search'))
    .description('search an index: text, --image, or a sum like "beach" + "sunset" - "people"')
    .argument('[query...]', 'query terms joined by + and -; a term that is an existing image file is an image')
    .option('-i, --image <path>', 'query image (repeatable; added to the query)', collect, [])
    .option('-k, --k <n>', 'number of results', positiveInt('--k'), 10)
    .option('--db <path>', `index location: directory, .clipvec file or postgres:// URL (default ${defaultDbPath()})`)
    .option('--filter <cond>', 'metadata condition, e.g. width>=512, path^=/photos/ (repeatable; all must hold)', collectCondition, [])
    .option('--json', 'print JSON: [{path, score, size, mtime, width, height, hash}]')
    .option('--preview', 'show thumbnails inline (iTerm2, WezTerm, kitty, Ghostty)')
    .action(async (query: string[], o) => {
      const terms: QueryTerm[] = [...parseQuery(query), ...o.image.map((p: string) => ({ sign: 1, kind: 'image', value: p }) as QueryTerm)];
      if (!terms.length) throw new Error('nothing to search for: give a query or --image');
      const db = dbLocation(o.db);
      if (!isPostgresUrl(db) && !existsSync(db)) throw new Error(`no index at ${db} (run clip index first)`);
      const store = await openStore(db);
      warnDamage(store, db, false);
      const model = await loadModel(o);
      try {
        checkModel(store, model, o.model);
        const q = await embedQuery(model, terms);
        const hits = await store.search(q, o.k, o.filter.length ? o.filter : undefined);
        const out = hits.map((h) => ({ path: h.meta.path, score: h.score, size: h.meta.size, mtime: h.meta.mtime, width: h.meta.width, height: h.meta.height, hash: h.meta.hash }));
        if (o.json) {
          process.stdout.write(JSON.stringify(out) + '\n');
          return;
        }
        const protocol = o.preview ? detectPreview() : undefined;
        if (o.preview && !protocol) process.stderr.write('clip: --preview: this terminal has no known inline image protocol (iTerm2, WezTerm, kitty, Ghostty)\n');
        if (protocol && process.stdout.isTTY) {
          for (const [i, r] of out.entries()) {
            process.stdout.write(`${i + 1}. ${r.score.toFixed(4)}  ${r.path}\n`);
            process.stdout.write(await previewSequence(r.path, protocol).catch((e) => `   (no preview: ${(e as Error).message})\n`));
          }
        } else {
          process.stdout.write(table(['#', 'score', 'path', 'size'], out.map((r, i) => [i + 1, r.score.toFixed(4), r.path, `${r.width}x${r.height}`])) + '\n');
        }
      } finally {
        await store.close();
        await model.release();
      }
    });
  return program;
}
