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
import { existsSync, statSync } from 'node:fs';
import { evalLinearProbe, type LinearProbeReport, type MeanStd } from '../../tasks/eval-linear-probe.js';
import { headModel } from '../head-options.js';
import { writeHead } from '../../tasks/head-file.js';
import type { ClassificationSummary } from '../../tasks/metrics.js';
import type { LabeledDataset } from '../../tasks/datasets.js';
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
  out.push(...classTables(r, r.classes));
  if (r.failed.length) out.push('', `failed images (${r.failed.length}, skipped):`, ...r.failed.map((f) => `  ${f.error}`));
  return out.join('\n');
}

/** Per-class accuracy and the confusion matrix (or its largest cells), shared by the classification reports. */
function classTables(r: Pick<ClassificationSummary, 'perClass' | 'confusion' | 'topConfusions'>, classes: string[]): string[] {
  const out = ['', 'per class:', table(['class', 'images', 'correct', 'accuracy'], r.perClass.map((c) => [c.class, c.total, c.correct, pct(c.accuracy)]))];
  if (classes.length <= FULL_MATRIX_MAX) {
    // Columns are numbered to keep the table narrow; the row labels carry the numbers.
    out.push('', 'confusion matrix (rows: true class, columns: predicted):', table(
      ['true \\ predicted', ...classes.map((_, i) => String(i))],
      r.confusion.map((row, i) => [`${i} ${classes[i]}`, ...row]),
    ));
  } else {
    out.push('', `top confusions (of ${classes.length} classes):`, r.topConfusions.length
      ? table(['true', 'predicted', 'count'], r.topConfusions.map((c) => [c.true, c.predicted, c.count]))
      : 'none');
  }
  return out;
}

const pm = (m: MeanStd): string => `${(m.mean * 100).toFixed(2)}% ± ${(m.std * 100).toFixed(2)}`;

function linearProbeText(r: LinearProbeReport, source: string): string {
  const c = r.counts;
  const out = [`linear probe on ${source}: ${c.train} train / ${c.test} test images${c.failedTrain + c.failedTest ? ` (failed: ${c.failedTrain} train, ${c.failedTest} test)` : ''}, ` +
    `${r.classes.length} classes, ${r.features.dim}-dim features (reused from the cache: ${r.features.reused.train} train, ${r.features.reused.test} test)`];
  const kk = `top-${r.k}`;
  if (r.probe) {
    const p = r.probe;
    out.push(table(['head', 'top-1', kk, 'C', 'blend α'], [
      ['zero-shot', pct(r.zeroShot.top1), pct(r.zeroShot.topK), '', ''],
      ['linear probe', pct(p.plain.top1), pct(p.plain.topK), p.plain.C.toExponential(1), '1'],
      ['probe + zero-shot blend', pct(p.head.top1), pct(p.head.topK), p.head.C.toExponential(1), String(p.head.alpha)],
    ]));
    const s = p.selection;
    out.push(s.scheme === 'none' ? `C not chosen on held-out data: ${s.reason}`
      : `C and α chosen on ${s.heldOut} held-out training images (${s.scheme === 'holdout' ? 'one stratified split' : `${s.folds} folds`}): ` +
        `plain ${pct(s.accuracy?.plain)}, blend ${pct(s.accuracy?.head)}${s.accuracy?.zeroShot !== undefined ? `, zero-shot ${pct(s.accuracy.zeroShot)}` : ''}`);
    out.push(`final fit: ${p.optimizer.iterations} L-BFGS iterations (${p.optimizer.status}, max |gradient| ${p.optimizer.gradMax.toExponential(1)}, ${p.optimizer.backend}); ` +
      `C sweep and fits ${p.fitSeconds.toFixed(1)} s`);
  } else if (r.fewShot) {
    const f = r.fewShot;
    out.push(table(['head', `top-1, mean ± std over ${f.seeds.length} draws`], [
      ['zero-shot', pct(r.zeroShot.top1)],
      [`${f.shots}-shot linear probe`, pm(f.plain)],
      [`${f.shots}-shot probe + zero-shot blend`, pm(f.head)],
    ]));
    out.push(`per draw (C, α): ${f.seeds.map((s) => `${s.C.toExponential(0)}/${s.alpha}${s.scheme === 'none' ? ' (no held-out)' : ''}`).join(', ')}`);
    out.push('', `draw 0, the blended head: top-1 ${pct(r.detail.accuracy.top1)}, ${kk} ${pct(r.detail.accuracy[`top${r.k}`])}`);
  }
  out.push(...classTables(r.detail, r.classes));
  if (r.failed.length) out.push('', `failed images (${r.failed.length}, skipped):`, ...r.failed.map((f) => `  ${f.error}`));
  return out.join('\n');
}

/** A dataset argument: a folder with one subfolder per class, or a `path,label` CSV file. */
function readLabeled(arg: string): LabeledDataset {
  return existsSync(arg) && statSync(arg).isDirectory() ? readLabeledFolder(arg) : readLabeledCsv(arg);
}

const blendValue = (v: string): 'auto' | 'none' | number => {
  if (v === 'auto' || v === 'none') return v;
  const x = Number(v);
  if (!(x >= 0 && x <= 1)) throw new Error(`--blend expects auto, none or a weight in [0, 1], got "${v}"`);
  return x;
};
const positiveNumber = (flag: string) => (v: string): number => {
  const x = Number(v);
  if (!(x > 0 && Number.isFinite(x))) throw new Error(`${flag} expects a positive number, got "${v}"`);
  return x;
};

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

  evalOptions(evalCmd.command('linear-probe'))
    .description('linear probe (logistic regression on image features) fitted on TRAIN, scored on TEST next to zero-shot; --shots K for few-shot')
    .argument('<train>', 'training images: a folder with one subfolder per class, or a path,label CSV')
    .argument('<test>', 'test images, the same way (its labels must be among the training classes)')
    .option('--shots <k>', 'few-shot: K training images per class, drawn anew for each seed', positiveInt('--shots'))
    .option('--seeds <n>', 'few-shot draws to average over', positiveInt('--seeds'), 5)
    .option('--c <value>', 'inverse L2 strength C (default: swept on held-out training images)', positiveNumber('--c'))
    .option('--blend <auto|none|weight>', 'weight of the linear head against the zero-shot head: auto (chosen on held-out images; zero-shot when none can be held out), none (plain probe), or a number in [0, 1]', blendValue, 'auto')
    .option('--templates <name|file>', 'prompt templates of the zero-shot head (as eval zeroshot)')
    .option('--top <k>', 'k of top-k accuracy', positiveInt('--top'), 5)
    .option('--features-dir <dir>', 'where image features are cached and reused (default $CLIP_CACHE/features)')
    .option('--save-head <file>', 'write the head to FILE (JSON) for clip classify --head')
    .option('--confusion-png <file>', 'write the confusion matrix as a PNG heat map')
    .action(async (trainArg: string, testArg: string, o) => {
      const train = readLabeled(trainArg);
      const test = readLabeled(testArg);
      const set = loadTemplates(o.templates);
      const model = await loadModel(o);
      try {
        const modelKey = headModel(o, model);
        const bars = stageProgress();
        const report = await evalLinearProbe(model, train, test, {
          templates: set.templates, k: o.top, shots: o.shots, seeds: o.seeds, C: o.c, blend: o.blend, featuresDir: o.featuresDir,
          modelKey: { ...modelKey, format: o.format }, batchSize: o.batchSize,
          onProgress: (stage, d, t) => bars(stage as 'images', d, t), onLog: (m) => process.stderr.write(`clip: ${m}\n`),
        });
        if (o.saveHead) writeHead(o.saveHead, report.head, modelKey, report.fit);
        if (o.confusionPng) await writeConfusionPng(o.confusionPng, report.detail.confusion);
        const source = `${trainArg} → ${testArg}`;
        const { head: _head, ...json } = report;
        await finish(o, { model: o.model, train: trainArg, test: testArg, templateSource: set.source, ...json }, () => linearProbeText(report, source), report.failed);
        exitCodeFor(report.counts.test, report.counts.failedTrain + report.counts.failedTest);
      } finally {
        await model.release();
      }
    });

  registerEvalEmoji(evalCmd);
}
