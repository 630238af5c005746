#!/usr/bin/env node
// `npm run data`: prepare the offline image–text benchmark in the cache (see manifests.ts for the
// layout). Progress goes to stderr; the summary table to stdout.
//   --no-icons        skip the optional Tabler/MDI vocabulary and the Open Clip Art drawings
//   --concurrency N   images rendered at once (default 2: other work shares the machine)
//   --only fashion-mnist   only Fashion-MNIST's linear-probe splits (probe/fashion-mnist/{train,test}.csv)
import { setPriority } from 'node:os';
import { Progress } from './progress.js';
import { table } from './table.js';
import { buildData, buildFashionProbe } from '../data/build.js';
import type { DataSummary } from '../data/manifests.js';
import { dataRoot } from '../data/paths.js';

function parseArgs(argv: string[]): { icons: boolean; concurrency: number; only?: 'fashion-mnist' } {
  let icons = true;
  let concurrency = 2;
  let only: 'fashion-mnist' | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--no-icons') icons = false;
    else if (a === '--concurrency') concurrency = Number(argv[++i]);
    else if (a === '--only') {
      if (argv[++i] !== 'fashion-mnist') throw new Error('--only takes fashion-mnist (the linear-probe splits)');
      only = 'fashion-mnist';
    }
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: npm run data [-- --no-icons] [-- --concurrency N] [-- --only fashion-mnist]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency needs a positive integer');
  return { icons, concurrency, only };
}

const log = (m: string) => process.stderr.write(`[data] ${m}\n`);

function progress(label: string, total: number): (done: number) => void {
  if (process.stderr.isTTY) {
    const p = new Progress(`[data] ${label}`, true);
    return (done) => p.update(done, total);
  }
  // Logs and CI: a line at the start and at each quarter.
  log(`${label}: ${total} images`);
  let shown = 0;
  return (done) => {
    const q = Math.floor((done / total) * 4);
    if (q > shown) {
      shown = q;
      log(`${label}: ${done}/${total}`);
    }
  };
}

function report(s: DataSummary): string {
  const z = s.splits.zeroshot;
  const t = s.splits.tuxpaint;
  const f = s.splits['fashion-mnist'];
  const per = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', ');
  const rows: (string | number)[][] = [
    ['train', s.splits.train.rows, `${s.splits.train.concepts} concepts`, per(s.splits.train.perStyle)],
    ['zeroshot', z.rows, `${z.groups} groups / ${z.subgroups} subgroups / ${z.labels} labels`, per(z.perStyle)],
    ['tuxpaint', t.pairs, `${t.uniqueCaptions} distinct captions`, `${t.png} png + ${t.svg} svg`],
    ['fashion-mnist', f.rows, `${f.classes} classes`, `left out: ${f.leftOut.join(', ')}`],
  ];
  if (s.splits.icons) rows.push(['icons', s.splits.icons.rows, '', per(s.splits.icons.perStyle)]);
  const c = s.splits.clipart;
  if (c) rows.push(['clipart', c.rows, '', `${c.tuxDuplicates} left out as close to a Tux Paint stamp, ${c.untitled} untitled, ${c.repeated} repeated titles`]);
  const j = s.fluentJoin;
  return [
    table(['split', 'rows', 'classes', 'detail'], rows),
    '',
    `concepts: ${s.concepts.emojibase} emojibase base emojis; emojilib keywords for ${s.concepts.emojilibMatched}/${s.concepts.emojilibEntries}`,
    `styles: ${per(s.styles)}`,
    `fluent names: ${j.matched}/${j.names} matched (${(j.matchRate * 100).toFixed(1)}%; ${per(j.byMethod)}); ` +
      `chars.json vs names: ${j.agree} agree, ${j.disagree.length} disagree, ${j.unchecked} unchecked; unmatched: ${j.unmatched.join(', ') || 'none'}`,
    `manifests: ${s.root}/manifests`,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // Background work: yield the CPU to interactive builds and tests.
  try { setPriority(10); } catch { /* not permitted: run at normal priority */ }
  const root = dataRoot();
  const t0 = performance.now();
  if (args.only) {
    log(`preparing Fashion-MNIST's linear-probe splits under ${root}`);
    const { files, steps } = await buildFashionProbe({ root, icons: false, concurrency: args.concurrency, log, progress });
    log(`${steps.filter((s) => !s.skipped).length} steps built; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    process.stdout.write(files.join('\n') + '\n');
    return;
  }
  log(`preparing ${root}${args.icons ? '' : ' (without icons)'}`);
  const { summary, steps } = await buildData({ root, icons: args.icons, concurrency: args.concurrency, log, progress });
  const built = steps.filter((s) => !s.skipped);
  log(`${built.length} steps built, ${steps.length - built.length} already done; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  process.stdout.write(report(summary) + '\n');
}

main().catch((e: Error) => {
  process.stderr.write(`[data] error: ${e.message}\n`);
  process.exit(1);
});
