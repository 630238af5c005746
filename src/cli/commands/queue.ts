// `clip queue status|retry`: what the `clip index --queue` fleet is doing, and failed jobs back into the queue.
import type { Command } from 'commander';
import { queueStatus, redactRedisUrl, retryFailed } from '../../search/queue.js';
import { table } from '../table.js';

const nonNegativeInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} ${v}: expected a whole number, 0 or more`);
  return n;
};

export function registerQueue(program: Command): Command {
  const queue = program.command('queue').description('the embedding queue of `clip index --queue` and `clip worker`: status, retry failed jobs');

  queue.command('status')
    .description('job counts by state, and the failed jobs with their reasons')
    .requiredOption('--queue <url>', 'the Redis of the queue (redis://host:port)')
    .option('--failed <n>', 'list at most N failed jobs, newest first (0: counts only)', nonNegativeInt('--failed'), 20)
    .option('--json', 'print JSON: {counts: {waiting, active, delayed, completed, failed}, failed: [{id, reason, attempts, failedAt, files, first}]}')
    .action(async (o) => {
      const s = await queueStatus(o.queue, o.failed);
      if (o.json) {
        process.stdout.write(JSON.stringify({ queue: redactRedisUrl(o.queue), ...s }) + '\n');
        return;
      }
      const c = s.counts;
      process.stdout.write(`${redactRedisUrl(o.queue)}: ${c.waiting} waiting, ${c.active} active, ${c.delayed} delayed (retrying), ${c.completed} completed, ${c.failed} failed\n`);
      if (s.failed.length) {
        process.stdout.write(table(['job', 'attempts', 'failed at', 'files', 'first file', 'reason'], s.failed.map((j) => [
          j.id, j.attempts, j.failedAt ? new Date(j.failedAt).toISOString().replace('T', ' ').slice(0, 19) : '', j.files, j.first ?? '', j.reason.replace(/\s+/g, ' '),
        ])) + '\n');
        if (c.failed > s.failed.length) process.stdout.write(`(${c.failed - s.failed.length} more failed jobs: --failed N lists more)\n`);
        process.stdout.write('`clip queue retry --queue URL [JOB...]` puts them back in the queue\n');
      }
    });

  queue.command('retry')
    .description('put failed jobs back in the queue, their attempts reset: all of them, or the ones named')
    .argument('[jobs...]', 'job ids (from `clip queue status`); none: every failed job')
    .requiredOption('--queue <url>', 'the Redis of the queue (redis://host:port)')
    .option('--json', 'print JSON: {retried: [id], notRetried: [{id, reason}]}')
    .action(async (jobs: string[], o) => {
      const r = await retryFailed(o.queue, jobs.length ? jobs : undefined);
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(`${redactRedisUrl(o.queue)}: re-queued ${r.retried.length} failed job${r.retried.length === 1 ? '' : 's'}${r.retried.length ? `: ${r.retried.join(', ')}` : ''}\n`);
      for (const n of r.notRetried) process.stderr.write(`clip: job ${n.id} not re-queued: ${n.reason}\n`);
      if (r.notRetried.length) process.exitCode = r.retried.length ? 3 : 1;
    });
  return queue;
}
