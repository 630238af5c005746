// `clip eval emoji`: the benchmark report on the data `npm run data` prepared (src/data/emoji-benchmark.ts).
import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { loadModel, modelOptions, positiveInt } from '../model-options.js';
import { BENCHMARK_PARTS, DEFAULT_STYLES, emojiBenchmarkTable, runEmojiBenchmark, SEEN_STYLES, type BenchmarkPart, type BenchmarkStage } from '../../data/emoji-benchmark.js';
import { Progress } from '../progress.js';

const list = (v: string): string[] => (v.trim() === 'none' ? [] : v.split(',').map((s) => s.trim()).filter(Boolean));

/** One progress bar per stage on stderr (silent when stderr is not a terminal, like the other commands). */
function stageProgress(): (stage: BenchmarkStage, done: number, total: number) => void {
  let current: { stage: string; bar: Progress } | undefined;
  return (stage, done, total) => {
    if (current?.stage !== stage) current = { stage, bar: new Progress(stage) };
    current.bar.update(done, total);
  };
}

export function registerEvalEmoji(evalCmd: Command): void {
  modelOptions(evalCmd.command('emoji'))
    .description('the emoji benchmark (`npm run data`): zero-shot in unseen styles at group/subgroup/label level, Tux Paint retrieval, Fashion-MNIST')
    .option('--root <dir>', 'prepared data root (default: $CLIP_CACHE/data, else ~/.cache/clip-ts/data)')
    .option('--styles <list>', 'comma-separated styles to evaluate zero-shot', list, [...DEFAULT_STYLES])
    .option('--seen-styles <list>', 'styles seen in training, reported as a reference ("none" to skip)', list, [...SEEN_STYLES])
    .option('--only <parts>', `comma-separated parts to run (${BENCHMARK_PARTS.join(', ')})`, list)
    .option('--fashion-per-class <n>', 'Fashion-MNIST: only the first n test images of each class', positiveInt('--fashion-per-class'))
    .option('--json', 'print the JSON report instead of the table')
    .option('--out <file>', 'write the JSON report to FILE')
    .option('--markdown <file>', 'write the markdown table to FILE')
    .action(async (o) => {
      const model = await loadModel(o, { quiet: true }); // evaluating the emoji model is what this command is for
      try {
        const report = await runEmojiBenchmark(model, {
          root: o.root, styles: o.styles, seenStyles: o.seenStyles, parts: o.only as BenchmarkPart[] | undefined,
          fashionPerClass: o.fashionPerClass, batchSize: o.batchSize, onProgress: stageProgress(),
        });
        const failed = [...report.zeroshot?.failed ?? [], ...report.tuxpaint?.failed ?? [], ...report.fashion?.failed ?? []];
        for (const f of failed.slice(0, 20)) process.stderr.write(`clip: ${f.error}\n`);
        if (failed.length > 20) process.stderr.write(`clip: … ${failed.length - 20} more unreadable images (listed in the JSON report)\n`);
        const md = emojiBenchmarkTable(report);
        if (o.out) await writeFile(o.out, JSON.stringify(report, null, 1) + '\n');
        if (o.markdown) await writeFile(o.markdown, md + '\n');
        process.stdout.write(o.json ? JSON.stringify(report) + '\n' : md + '\n');
        if (failed.length) process.exitCode = 3;
      } finally {
        await model.release();
      }
    });
}
