// `clip eval zeroshot` and `clip eval retrieval`: accuracy / recall reports on a dataset.
import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { loadModel, modelOptions, positiveInt } from '../model-options.js';
import { readLabeledCsv, readLabeledFolder, readRetrievalCsv, readRetrievalJsonl, readRetrievalTsv, type RetrievalDataset } from '../../tasks/datasets.js';
import { evalRetrieval, type RetrievalReport } from '../../tasks/eval-retrieval.js';
import { loadTemplates, TEMPLATE_SETS } from '../../tasks/templates.js';
import { evalZeroShot, withClasses, type StageProgress, type ZeroShotReport } from '../../tasks/eval-zeroshot.js';
import { writeConfusionPng } from '../../tasks/confusion-png.js';
import { registerEvalEmoji } from './eval-emoji.js';
import { Progress } from '../progress.js';
import { table } from '../table.js';

/** Full confusion matrices are printed up to this many classes; beyond, only the top confusions. */
const FULL_MATRIX_MAX = 12;

// Model flags shared with every command, plus the report flags of both eval commands.
function evalOptions(cmd: Command): Command {
  return modelOptions(cmd)
    .option('--report <file>', 'write the full JSON report to FILE')
    .option('--json', 'print the full JSON report instead of tables');
}

/** One progress bar per stage (texts, then images, or the reverse), on stderr. */
function stageProgress(): StageProgress {
  let current: { stage: string; bar: Progress } | undefined;
  return (stage, done, total) => {
    if (current?.stage !== stage) current = { stage, bar: new Progress(stage) };
    current.bar.update(done, total);
  };
}

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? 'n/a' : `${(x * 100).toFixed(2)}%`);

async function finish(o: Record<string, any>, report: object, text: () => string, failed: { error: string }[]): Promise<void> {
  // Tables list failed images themselves; with --json, people watching still see them on stderr.
  if (o.json) for (const f of failed) process.stderr.write(`clip: ${f.error}\n`);
  if (o.report) await writeFile(o.report, JSON.stringify(report, null, 1) + '\n');
  process.stdout.write(o.json ? JSON.stringify(report) + '\n' : text() + '\n');
}

function zeroShotText(r: ZeroShotReport, source: string): string {
  const out: string[] = [];
  const tpl = r.templates.length === 1 ? `template "${r.templates[0]}"` : `${r.templates.length} templates`;
  out.push(`zero-shot on ${source}: ${r.counts.evaluated} images evaluated${r.counts.failed ? ` (${r.counts.failed} failed)` : ''}, ${r.classes.length} classes, ${tpl}`);
  out.push(table(['metric', 'value'], [
    ['top-1 accuracy', pct(r.accuracy.top1)],
    [`top-${r.k} accuracy`, pct(r.accuracy[`top${r.k}`])],
    ['mean per-class accuracy', pct(r.accuracy.meanPerClass)],
  ]));
  out.push('', 'per class:', table(['class', 'images', 'correct', 'accuracy'], r.perClass.map((c) => [c.class, c.total, c.correct, pct(c.accuracy)])));
  if (r.classes.length <= FULL_MATRIX_MAX) {
    // Columns are numbered to keep the table narrow; the row labels carry the numbers.
    out.push('', 'confusion matrix (rows: true class, columns: predicted):', table(
      ['true \\ predicted', ...r.classes.map((_, i) => String(i))],
      r.confusion.map((row, i) => [`${i} ${r.classes[i]}`, ...row]),
    ));
  } else {
    out.push('', `top confusions (of ${r.classes.length} classes):`, r.topConfusions.length
      ? table(['true', 'predicted', 'count'], r.topConfusions.map((c) => [c.true, c.predicted, c.count]))
      : 'none');
  }
  if (r.failed.length) out.push('', `failed images (${r.failed.length}, skipped):`, ...r.failed.map((f) => `  ${f.error}`));
  return out.join('\n');
}

function retrievalText(r: RetrievalReport, source: string): string {
  const c = r.counts;
  const head = `retrieval on ${source}: ${c.images - c.failedImages} images, ${c.texts - c.droppedTexts} captions` +
    (c.failedImages ? ` (failed images: ${c.failedImages}, their captions left out: ${c.droppedTexts})` : '');
  const cols = r.ks.map((k) => `R@${k}`);
  const out = [head, table(['direction', ...cols], [
    ['image→text', ...cols.map((k) => pct(r.imageToText[k]))],
    ['text→image', ...cols.map((k) => pct(r.textToImage[k]))],
  ]), `mean recall: ${pct(r.mean)}`];
  if (r.failed.length) out.push('', `failed images (${r.failed.length}, skipped):`, ...r.failed.map((f) => `  ${f.error}`));
  return out.join('\n');
}

function exitCodeFor(evaluated: number, failed: number): void {
  if (!evaluated) process.exitCode = 1;
  else if (failed) process.exitCode = 3;
}

export function registerEval(program: Command): void {
  const evalCmd = program.command('eval').description('evaluate a model: zero-shot accuracy, retrieval recall, the emoji benchmark');

  evalOptions(evalCmd.command('zeroshot'))
    .description('zero-shot classification accuracy on labeled images (DIR/<class>/<image> or --csv path,label)')
    .argument('[dir]', 'folder with one subfolder per class')
    .option('--csv <file>', 'CSV of path,label rows (paths relative to the CSV) instead of a folder')
    .option('--templates <name|file>', `prompt templates: a prompts JSON, a text file (one template with {} per line), or a built-in set (${Object.keys(TEMPLATE_SETS).join(', ')}); default: the label itself`)
    .option('--dataset <name>', 'which set of a prompts JSON to use (its classes replace the data labels, matched by name or index)')
    .option('--top <k>', 'k of top-k accuracy', positiveInt('--top'), 5)
    .option('--confusion-png <file>', 'write the confusion matrix as a PNG heat map (rows: true class, row-normalized)')
    .action(async (dir: string | undefined, o) => {
      if (!!dir === !!o.csv) throw new Error('give either a dataset folder or --csv FILE (exactly one)');
      const source: string = dir ?? o.csv;
      let data = dir ? readLabeledFolder(dir) : readLabeledCsv(o.csv);
      const set = loadTemplates(o.templates, o.dataset);
      if (set.classes) data = withClasses(data, set.classes);
      const model = await loadModel(o);
      try {
        const report = await evalZeroShot(model, data, { templates: set.templates, k: o.top, batchSize: o.batchSize, onProgress: stageProgress() });
        if (o.confusionPng) await writeConfusionPng(o.confusionPng, report.confusion, { classes: report.classes });
        const full = { model: o.model, dataset: source, templateSource: set.source, ...report };
        await finish(o, full, () => zeroShotText(report, source), report.failed);
        exitCodeFor(report.counts.evaluated, report.counts.failed);
      } finally {
        await model.release();
      }
    });

  evalOptions(evalCmd.command('retrieval'))
    .description('image→text and text→image recall@k on captioned images')
    .option('--tsv <file>', 'EasyNLP TSV: text<TAB>base64-image per line')
    .option('--csv <file>', 'CSV of image,caption rows (several rows per image allowed)')
    .option('--jsonl <file>', 'JSONL: {"image": path, "captions": [...]} per line')
    .option('--k <list>', 'comma-separated cut-offs', (v) => v.split(',').map((s) => positiveInt('--k')(s.trim())), [1, 5, 10])
    .option('--no-dedupe', 'TSV: keep every line as its own image instead of merging identical images')
    .action(async (o) => {
      const given = (['tsv', 'csv', 'jsonl'] as const).filter((f) => o[f]);
      if (given.length !== 1) throw new Error('give exactly one of --tsv, --csv, --jsonl');
      const source: string = o[given[0]!];
      const data: RetrievalDataset = o.tsv ? await readRetrievalTsv(o.tsv, { dedupe: o.dedupe })
        : o.csv ? readRetrievalCsv(o.csv) : await readRetrievalJsonl(o.jsonl);
      const model = await loadModel(o);
      try {
        const report = await evalRetrieval(model, data, { ks: o.k, batchSize: o.batchSize, onProgress: stageProgress() });
        const full = { model: o.model, dataset: source, dedupe: o.tsv ? o.dedupe : undefined, ...report };
        await finish(o, full, () => retrievalText(report, source), report.failed);
        exitCodeFor(report.counts.images - report.counts.failedImages, report.counts.failedImages);
      } finally {
        await model.release();
      }
    });

  registerEvalEmoji(evalCmd);
}
