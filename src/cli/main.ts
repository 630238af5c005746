// The `clip` command.
import { Command } from 'commander';
import { loadModel, modelOptions, positiveInt } from './model-options.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { enumerateInputs, hasGlobMagic } from '../tasks/inputs.js';
import { fileURLToPath } from 'node:url';
import { loadTemplates, TEMPLATE_SETS, type TemplateSpec } from '../tasks/templates.js';
import { buildClassifier, predict, type ZeroShotClassifier } from '../tasks/zeroshot.js';
import { readHead } from '../tasks/head-file.js';
import type { LinearHead } from '../tasks/linear-probe.js';
import type { ClipModel } from '../runtime/clip-model.js';
import { registerEval } from './commands/eval.js';
import { addEmbedBatchOptions, runEmbedBatch } from './commands/embed-batch.js';
import { registerModels } from './commands/models.js';
import { registerServe } from './commands/serve.js';
import { registerIndexSearch } from './commands/index-search.js';
import { registerTrain } from './commands/train.js';
import { registerWorker } from './commands/worker.js';
import { registerDedup } from './commands/dedup.js';
import { registerQueue } from './commands/queue.js';
import { Progress } from './progress.js';
import { table } from './table.js';
import { renderTrainingCurve } from '../train/training-curve.js';
import { join } from 'node:path';
import { labelSetWarning, labelsFromText, splitLabels } from '../tasks/labels.js';

/** The package's own version (package.json sits three levels above dist/src/cli/). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** A text file named by an option, with an error that names the option and the file. */
export function readOptionFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a file' : (e as Error).message;
    throw new Error(`${flag} ${path}: ${why}`);
  }
}

const collect = (v: string, prev: string[]) => [...prev, v];

const fmt = (x: number) => x.toFixed(4);

/** Image arguments: files as given (a missing one is reported per image), folders walked, globs expanded. */
function expandImageArgs(args: string[]): string[] {
  return args.flatMap((a) => {
    const p = a.startsWith('file://') ? fileURLToPath(a) : a;
    if (existsSync(p) && statSync(p).isFile()) return [p];
    if ((existsSync(p) && statSync(p).isDirectory()) || (!existsSync(p) && hasGlobMagic(p))) {
      const { items } = enumerateInputs([existsSync(p) ? p : `glob:${p}`]);
      return items.flatMap((it) => (it.kind === 'image' && 'path' in it ? [it.path] : []));
    }
    return [p];
  });
}

export function buildCli(): Command {
  const program = new Command('clip').description('CLIP for TypeScript: embed, classify, search, train').showHelpAfterError()
    .version(packageVersion(), '-V, --version', 'print the clip-ts version');

  addEmbedBatchOptions(modelOptions(program.command('embed')))
    .description('embed images and texts (with --out: folders, globs, lists or EasyNLP TSV into TSV/.npy/JSONL, resumable)')
    .option('-i, --image <path>', 'image file (repeatable)', collect, [])
    .option('-t, --text <text>', 'text (repeatable)', collect, [])
    .option('--raw', 'unnormalized projected features instead of L2-normalized embeddings')
    .option('--json', 'print JSON')
    .action(async (o) => {
      if (o.out) {
        process.exitCode = await runEmbedBatch(o, () => loadModel(o));
        return;
      }
      if (o.input?.length) throw new Error('--input needs --out FILE (the batch job writes TSV, .npy or JSONL)');
      if (!o.image.length && !o.text.length) throw new Error('nothing to embed: give --image FILE or --text TEXT (or --input with --out FILE); see clip embed --help');
      const model = await loadModel(o);
      const normalize = !o.raw;
      const progress = new Progress('images');
      const images = o.image.length
        ? await model.encodeImages(o.image, { normalize, batchSize: o.batchSize, onProgress: (d, t) => progress.update(d, t) })
        : [];
      const texts = o.text.length ? await model.encodeTexts(o.text, { normalize, batchSize: o.batchSize }) : [];
      const failed = images.filter((r) => r.error);
      for (const f of failed) process.stderr.write(`clip: ${f.error}\n`);
      if (o.json) {
        process.stdout.write(JSON.stringify({
          images: images.map((r) => (r.embedding ? { input: r.input, embedding: Array.from(r.embedding) } : { input: r.input, error: r.error })),
          texts: texts.map((e, i) => ({ input: o.text[i], embedding: Array.from(e) })),
        }) + '\n');
      } else {
        const rows = [
          ...images.map((r) => ['image', r.input, r.embedding ? `[${Array.from(r.embedding.slice(0, 4), fmt).join(', ')}, …] (${r.embedding.length})` : `error: ${r.error}`]),
          ...texts.map((e, i) => ['text', o.text[i], `[${Array.from(e.slice(0, 4), fmt).join(', ')}, …] (${e.length})`]),
        ];
        process.stdout.write(table(['kind', 'input', 'embedding'], rows) + '\n');
      }
      await model.release();
      if (failed.length) process.exitCode = failed.length === images.length && !texts.length ? 1 : 3;
    });

  modelOptions(program.command('classify'))
    .description('classify images: zero-shot over labels, or with a fitted linear head (--head)')
    .argument('<images...>', 'image files, folders, globs or file:// URLs')
    .option('-l, --labels <labels>', 'comma-separated labels (full-width ， too); \\, keeps a comma in a label')
    .option('--label <label>', 'one label, taken as is, commas included (repeatable)', collect, [])
    .option('--labels-file <file>', 'labels, one per line')
    .option('--template <template>', 'one prompt template with {} for the label')
    .option('--templates <set|file>', `template set (${Object.keys(TEMPLATE_SETS).join(', ')}) or a file (JSON or one template per line); averaged per class`)
    .option('--dataset <name>', 'with a multi-set templates file: which set (its classes are used when no labels are given)')
    .option('-k, --top <k>', 'also list the top k labels', (v) => parseInt(v, 10))
    .option('--head <file>', 'a linear head saved by `clip eval linear-probe --save-head` instead of labels (its model is the default --model)')
    .option('--json', 'print JSON')
    .action(async function (this: Command, images: string[], o) {
      let labels: string[];
      let clf: ZeroShotClassifier | LinearHead;
      let model: ClipModel;
      if (o.head) {
        if (o.labels || o.label.length || o.labelsFile || o.template || o.templates || o.dataset) throw new Error('--head replaces --labels / --label / --labels-file / --template(s): give one or the other');
        const saved = readHead(o.head);
        // Without --model, the head's own model; with another one, its features would not fit the head.
        if (this.getOptionValueSource('model') === 'default' || o.model === undefined) o.model = saved.model.model;
        model = await loadModel(o);
        if (model.dim !== saved.head.dim) {
          await model.release();
          throw new Error(`head ${o.head} takes ${saved.head.dim}-dim features of ${saved.model.model}, but ${o.model} gives ${model.dim}`);
        }
        if (model.checkpoint.path !== saved.model.path) process.stderr.write(`clip: warning: head ${o.head} was fitted on ${saved.model.model} (${saved.model.path}), not ${model.checkpoint.path}\n`);
        clf = saved.head;
        labels = saved.head.classes;
      } else {
        const spec: TemplateSpec = o.templates || o.dataset ? loadTemplates(o.templates, o.dataset) : { source: 'option', templates: [o.template ?? '{}'] };
        labels = [...(o.labels ? splitLabels(String(o.labels)) : []), ...o.label.map((l: string) => l.trim()).filter(Boolean)];
        if (o.labelsFile) labels = labels.concat(labelsFromText(readOptionFile('--labels-file', o.labelsFile)));
        if (!labels.length && spec.classes) labels = spec.classes;
        if (!labels.length) throw new Error('no labels: give --labels, --label, --labels-file, a --templates file with classes, or --head');
        const dup = labels.find((l, i) => labels.indexOf(l) !== i);
        if (dup !== undefined) throw new Error(`label "${dup}" is given twice`);
        model = await loadModel(o);
        // A single label is a meaningful question under a per-label sigmoid score, not under a softmax.
        const warning = model.score.kind === 'sigmoid' ? undefined : labelSetWarning(labels);
        if (warning) process.stderr.write(`clip: warning: ${warning}\n`);
        clf = await buildClassifier(model, labels, spec.templates, o.batchSize);
      }
      const files = expandImageArgs(images);
      const progress = new Progress('images');
      const res = await model.encodeImages(files, { batchSize: o.batchSize, onProgress: (d, t) => progress.update(d, t) });
      const out = res.map((r) => {
        if (!r.embedding) return { image: r.input, error: r.error };
        const { probs, ranking } = predict(clf, r.embedding);
        const scores = Object.fromEntries(labels.map((l, i) => [l, probs[i]!]));
        const top = o.top ? ranking.slice(0, o.top).map((i) => ({ label: labels[i]!, score: probs[i]! })) : undefined;
        // Which probabilities: a softmax over the labels (they sum to 1), or independent per-label sigmoids (the model's score rule).
        const scoring = 'kind' in clf && clf.kind === 'linear' ? 'softmax' : (clf as ZeroShotClassifier).score?.kind ?? 'softmax';
        return { image: r.input, scores, scoring, label: labels[ranking[0]!]!, ...(top ? { top } : {}) };
      });
      for (const r of out) if ('error' in r) process.stderr.write(`clip: ${r.error}\n`);
      if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
      else if (o.top || labels.length > 8) {
        const k = o.top ?? 5;
        process.stdout.write(table(['image', ...Array.from({ length: Math.min(k, labels.length) }, (_, i) => `#${i + 1}`)], out.map((r) =>
          'error' in r ? [r.image, `error: ${r.error}`] : [r.image, ...Object.entries(r.scores!).sort((a, b) => b[1] - a[1]).slice(0, k).map(([l, p]) => `${l} ${fmt(p)}`)])) + '\n');
      } else {
        process.stdout.write(table(['image', 'label', ...labels], out.map((r) =>
          'error' in r ? [r.image, 'error', ...labels.map(() => '')] : [r.image, r.label!, ...labels.map((l) => fmt(r.scores![l]!))])) + '\n');
      }
      await model.release();
      const failed = out.filter((r) => 'error' in r).length;
      if (failed) process.exitCode = failed === out.length ? 1 : 3;
    });

  registerEval(program);
  registerModels(program);
  registerServe(program);
  registerIndexSearch(program);
  registerTrain(program);
  registerWorker(program);
  registerDedup(program);
  registerQueue(program);

  program.command('train-curve')
    .description('draw a training run\'s loss, learning rate and validation recall as a PNG (from OUT/train_log.jsonl and OUT/train_steps.jsonl)')
    .argument('<out>', 'the output directory of `clip train`')
    .option('--png <file>', 'where to write the chart (default OUT/training-curve.png)')
    .option('--width <px>', 'image width', positiveInt('--width'), 1000)
    .option('--height <px>', 'image height', positiveInt('--height'), 720)
    .action(async (out: string, o) => {
      const png: string = o.png ?? join(out, 'training-curve.png');
      const r = await renderTrainingCurve(out, png, { width: o.width, height: o.height });
      process.stdout.write(`${png}: ${r.width}x${r.height}, ${r.steps} steps, ${r.epochs} epochs\n`);
    });
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    process.stderr.write(`clip: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
