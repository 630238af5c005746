// `clip embed --input ... --out FILE`: embedding at scale into EasyNLP TSV, .npy or JSONL, resumable.
// main.ts adds these flags to `clip embed` and hands over to runEmbedBatch when --out is given.
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { enumerateInputs } from '../../tasks/inputs.js';
import { runEmbedJob, type EmbedJobResult, type EmbedModel } from '../../tasks/embed-job.js';
import { formatFor, OUTPUT_FORMATS } from '../../tasks/writers.js';
import { modelId } from '../model-options.js';
import { Progress } from '../progress.js';

export interface EmbedBatchOptions {
  input?: string[];
  out: string;
  outFormat?: string;
  resume?: boolean;
  batchSize?: number;
  chunkSize?: number;
  raw?: boolean;
  json?: boolean;
  model?: string;
  /** `--image` and `--text` values join the inputs when --out is given. */
  image?: string[];
  text?: string[];
}

/** Errors printed on stderr; the full list is in OUT.errors.jsonl. */
const MAX_ERRORS_SHOWN = 50;

const positiveInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} expects a positive integer, got "${v}"`);
  return n;
};

const collect = (v: string, prev: string[]) => [...prev, v];

/** Add an option unless the command already has one with that long flag (e.g. --batch-size from the model options). */
function addOnce(cmd: Command, opt: Option): void {
  if (!cmd.options.some((o) => o.long === opt.long)) cmd.addOption(opt);
}

/**
 * The batch flags of `clip embed`. `--format` is taken by the model options (weights/onnx), so the output
 * format is `--out-format`; by default it follows the extension of --out.
 */
export function addEmbedBatchOptions(cmd: Command): Command {
  addOnce(cmd, new Option('--input <spec>', 'folder (recursive), glob, list file (one path per line), EasyNLP .tsv or image; repeatable').argParser(collect).default([]));
  addOnce(cmd, new Option('--out <file>', 'write embeddings to FILE (.tsv EasyNLP layout, .npy + .meta.jsonl, .jsonl) instead of printing them'));
  addOnce(cmd, new Option('--out-format <format>', 'output format (default: from the --out extension)').choices([...OUTPUT_FORMATS]));
  addOnce(cmd, new Option('--resume', 'continue an interrupted --out job from FILE.progress').default(true));
  addOnce(cmd, new Option('--no-resume', 'start the --out job over, overwriting FILE'));
  addOnce(cmd, new Option('--chunk-size <n>', 'inputs embedded and saved per durable chunk').argParser(positiveInt('--chunk-size')).default(256));
  addOnce(cmd, new Option('--batch-size <n>', 'batch size').argParser(positiveInt('--batch-size')));
  return cmd;
}

function printErrors(r: EmbedJobResult): void {
  if (!r.errors.length) return;
  process.stderr.write(`clip: ${r.errors.length} input${r.errors.length > 1 ? 's' : ''} failed (all listed in ${r.errorsFile}):\n`);
  // One line each: decoder messages can span lines.
  for (const e of r.errors.slice(0, MAX_ERRORS_SHOWN)) process.stderr.write(`  ${e.error.replace(/\s*\n\s*/g, ' ')}\n`);
  if (r.errors.length > MAX_ERRORS_SHOWN) process.stderr.write(`  ... and ${r.errors.length - MAX_ERRORS_SHOWN} more\n`);
}

/**
 * Run the batch job for `clip embed --out`. Returns the exit code: 0 all embedded, 3 partial (some
 * inputs failed), 1 nothing could be embedded. Ctrl-C exits at once: every finished chunk is already
 * on disk and the same command continues from there.
 */
export async function runEmbedBatch(o: EmbedBatchOptions, loadModel: () => Promise<EmbedModel & { release?: () => Promise<void> }>): Promise<number> {
  const format = formatFor(o.out, o.outFormat);
  // Writing over an input table or list would destroy it before it is read to the end.
  for (const spec of o.input ?? []) {
    if (resolve(spec.replace(/^(glob|list|tsv):/, '')) === resolve(o.out)) throw new Error(`--out ${o.out} is also an --input`);
  }
  const { items, invalid } = enumerateInputs(o.input ?? [], { images: o.image, texts: o.text });
  if (!items.length && !invalid.length) throw new Error('nothing to embed: give --input (or --image / --text)');

  const model = await loadModel();
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\nclip: ${sig}: stopped; finished chunks are saved in ${o.out}, rerun the same command to continue\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let progress: Progress | undefined;
  let r: EmbedJobResult;
  try {
    r = await runEmbedJob(model, {
      items, invalid, out: o.out, format,
      resume: o.resume !== false,
      batchSize: o.batchSize,
      chunkSize: o.chunkSize,
      normalize: !o.raw,
      modelId: o.model ? modelId(o.model) : undefined,
      onProgress: (done, total) => {
        // The bar (and its rate and ETA) covers this run's work; inputs done before are named in the label.
        progress ??= new Progress(items.length > total ? `embed (${items.length - total} done before)` : 'embed');
        progress.update(done, total);
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await model.release?.();
  }

  printErrors(r);
  const rate = r.seconds > 0 ? (r.total - r.skipped) / r.seconds : 0;
  process.stderr.write(`clip: ${r.rows} rows in ${r.files.join(' + ')} (${r.embedded} new, ${r.skipped} done before); ` +
    `${r.total - r.skipped} inputs in ${r.seconds.toFixed(1)} s, ${rate.toFixed(1)}/s\n`);
  if (o.json) {
    process.stdout.write(JSON.stringify({
      format: r.format, files: r.files, rows: r.rows, embedded: r.embedded, skipped: r.skipped,
      errors: r.errors, errorsFile: r.errors.length ? r.errorsFile : null, seconds: r.seconds,
    }) + '\n');
  }
  if (!r.errors.length) return 0;
  return r.rows === 0 ? 1 : 3;
}
