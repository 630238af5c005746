// `clip dedup`: list groups of duplicate images in an index (same bytes, then near-duplicates by embedding
// similarity); with --delete, remove all but one file per group.
import { type Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkThreshold, DEFAULT_NEIGHBOURS, DEFAULT_THRESHOLD, findDuplicates, KEEP_RULE_TEXT, KEEP_RULES, MAX_NEIGHBOURS, removeDuplicates, type DupGroup, type KeepRule, type RemovalReport } from '../../search/dedup.js';
import { lockWriter } from '../../search/lock.js';
import { defaultDbPath, openStore } from '../../search/open.js';
import { isPostgresUrl, shownDb } from '../../search/redact-url.js';
import { positiveInt } from '../model-options.js';
import { Progress } from '../progress.js';
import { table } from '../table.js';

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
const memberJson = (m: DupGroup['members'][number], action: string) => ({
  path: m.meta.path, action, similarity: m.similarity, exact: m.exact, size: m.meta.size, width: m.meta.width, height: m.meta.height, mtime: m.meta.mtime, hash: m.meta.hash,
});

export function registerDedup(program: Command): Command {
  return program.command('dedup')
    .description('find duplicate images in an index: identical files, then near-duplicates (resized, re-encoded) by embedding similarity; deletes nothing unless --delete')
    .option('--db <path>', `the index: a directory (LanceDB), a .clipvec file or a postgres:// URL (default ${defaultDbPath()})`)
    .option('--threshold <cos>', `cosine similarity at or above which two images are near-duplicates, in (0, 1] (default ${DEFAULT_THRESHOLD}; 0.98+ keeps only resized/re-encoded copies)`, (v) => checkThreshold(Number(v)))
    .option('--exact', 'only files with identical bytes (no embedding pass)')
    .option('--neighbours <k>', `nearest neighbours looked at per image (1..${MAX_NEIGHBOURS})`, positiveInt('--neighbours'), DEFAULT_NEIGHBOURS)
    .option('--limit <n>', 'examine at most N images in the near-duplicate pass (their duplicates are found anywhere in the index)', positiveInt('--limit'))
    .addOption(new Option('--keep <rule>', `which file of a group is kept: ${KEEP_RULES.map((r) => `${r} = ${KEEP_RULE_TEXT[r]}`).join('; ')}`).choices(KEEP_RULES).default('largest'))
    .option('--delete', 'delete every file of each group except the kept one (only files whose bytes are still those indexed), and their index rows')
    .option('--json', 'print JSON: {groups: [{kind, members: [{path, action, similarity, exact, ...}]}], removed, skipped}')
    .action(async (o) => {
      const db = o.db && isPostgresUrl(o.db) ? o.db : resolve(o.db ?? defaultDbPath());
      if (!isPostgresUrl(db) && !existsSync(db)) throw new Error(`no index at ${db} (run clip index first)`);
      if (o.exact && o.threshold !== undefined) throw new Error('--exact finds identical files only; --threshold applies to near-duplicates: give one or the other');
      // Deleting rows of a local index takes its writer lock, like `clip index`; Postgres orders writers itself.
      const release = o.delete && !isPostgresUrl(db) ? await lockWriter(db) : async () => {};
      const store = await openStore(db);
      try {
        const progress = new Progress('dedup');
        const report = await findDuplicates(store, {
          threshold: o.threshold, exactOnly: o.exact, neighbours: o.neighbours, limit: o.limit, keep: o.keep as KeepRule,
          onProgress: (d, t) => progress.update(d, t),
        });
        let removal: RemovalReport | undefined;
        if (o.delete) removal = await removeDuplicates(store, report.groups);
        const removed = new Set(removal?.removed.map((r) => r.path));
        const skipped = new Map(removal?.skipped.map((s) => [s.path, s.reason]));
        const action = (m: DupGroup['members'][number]) => (m.keep ? 'keep' : !o.delete ? 'would remove' : removed.has(m.meta.path) ? 'removed' : 'left');
        const dups = report.groups.reduce((n, g) => n + g.members.length - 1, 0);
        if (o.json) {
          process.stdout.write(JSON.stringify({
            db: shownDb(db), threshold: report.threshold, keep: report.keep, rows: report.rows, examined: report.examined,
            groups: report.groups.map((g) => ({ kind: g.kind, members: g.members.map((m) => memberJson(m, action(m))) })),
            ...(removal ? { removed: removal.removed, skipped: removal.skipped } : {}),
          }) + '\n');
        } else {
          if (report.groups.length) {
            const rows = report.groups.flatMap((g, i) => g.members.map((m) => [
              m.keep ? i + 1 : '', m.keep ? g.kind : '', action(m), m.keep ? '' : m.exact ? 'same bytes' : m.similarity.toFixed(4), `${m.meta.width}x${m.meta.height}`, m.meta.size, m.meta.path,
            ]));
            process.stdout.write(table(['group', 'kind', 'action', 'similarity', 'pixels', 'bytes', 'path'], rows) + '\n');
          }
          const exact = report.groups.filter((g) => g.kind === 'exact').length;
          const scope = report.threshold === null ? 'identical files only' : `near-duplicates at cosine >= ${report.threshold}, ${report.examined} of ${report.rows} images examined`;
          process.stdout.write(`${shownDb(db)}: ${plural(report.groups.length, 'group')} (${exact} of identical files), ${plural(dups, 'duplicate')} (${scope}); keeping ${KEEP_RULE_TEXT[report.keep as KeepRule]}\n`);
          if (!removal && dups) process.stdout.write('nothing deleted: rerun with --delete to delete the files marked "would remove" (and their index rows)\n');
          if (removal) process.stdout.write(`deleted ${removal.removed.length} files and their index rows; ${removal.skipped.length} left\n`);
        }
        for (const [path, reason] of skipped) process.stderr.write(`clip: left ${path}: ${reason}\n`);
        if (removal?.skipped.length) process.exitCode = 3;
      } finally {
        await store.close();
        await release();
      }
    });
}
