// `clip train`: fine-tune a checkpoint or train from a config on image–caption pairs.
import { Command, Option } from 'commander';
import { DATA_FORMATS } from '../../train/data.js';
import { LOSS_KINDS } from '../../models/family.js';
import { AUGMENTS, checkCropScale } from '../../train/augment.js';
import { CAPTION_MODES, SETUP_DEFAULTS, trainClip, type StepInfo, type TrainSetup } from '../../train/run.js';
import { LAYOUT, type EpochRecord } from '../../train/state.js';
import { positiveInt } from '../model-options.js';
import { table } from '../table.js';

const number = (flag: string, min = 0) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${flag} expects a number >= ${min}, got "${v}"`);
  return n;
};
const nonNegativeInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} expects a non-negative integer, got "${v}"`);
  return n;
};

const HELP = `
Data (positional, and --val): EasyNLP TSV (text<TAB>base64-image per line), CSV (image,caption rows;
paths relative to the CSV), JSONL ({"image": path, "captions": [...]}), or a folder of images each with a
same-name .txt beside it (cat.jpg + cat.txt; every non-empty line of the .txt is one caption). Each caption
is one training pair. Unreadable images are reported and left out of their batches.

Output directory:
${LAYOUT.replace(/^/gm, '  ')}
Defaults: --epochs ${SETUP_DEFAULTS.epochs} --batch-size ${SETUP_DEFAULTS.batchSize} --lr ${SETUP_DEFAULTS.lr} --wd ${SETUP_DEFAULTS.weightDecay} --warmup ${SETUP_DEFAULTS.warmup} --seed ${SETUP_DEFAULTS.seed}; AdamW betas ${SETUP_DEFAULTS.betas.join(', ')}, eps ${SETUP_DEFAULTS.eps}.`;

function cropScale(v: string): [number, number] {
  const parts = v.split(',').map((x) => Number(x.trim()));
  checkCropScale(parts);
  return parts as [number, number];
}

/** Option name -> TrainSetup field, for the options that fix the trajectory. */
const SETUP_FLAGS: [string, keyof TrainSetup][] = [
  ['model', 'model'], ['config', 'config'], ['tokenizer', 'tokenizer'], ['format', 'dataFormat'], ['val', 'val'], ['valFormat', 'valFormat'],
  ['epochs', 'epochs'], ['batchSize', 'batchSize'], ['lr', 'lr'], ['wd', 'weightDecay'], ['warmup', 'warmup'], ['gradClip', 'gradClip'],
  ['seed', 'seed'], ['freeze', 'freeze'], ['captions', 'captions'], ['augment', 'augment'], ['cropScale', 'cropScale'], ['loss', 'loss'],
];

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${(x * 100).toFixed(1)}%`);

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** One rewritten line on stderr (terminals only). */
class StatusLine {
  private shown = false;
  private readonly start = Date.now();
  constructor(private readonly enabled = process.stderr.isTTY === true) {}

  step(s: StepInfo): void {
    if (!this.enabled) return;
    const width = 16;
    const fill = Math.round((s.step / Math.max(1, s.total)) * width);
    const eta = s.samplesPerSec > 0 ? ((s.total - s.step) * ((Date.now() - this.start) / 1000)) / Math.max(1, s.step) : NaN;
    const loss = s.loss === null ? 'skipped' : s.loss.toFixed(4);
    this.write(`epoch ${s.epoch}/${s.epochs} ${'█'.repeat(fill)}${'░'.repeat(width - fill)} step ${s.step}/${s.total} loss ${loss} lr ${s.lr.toExponential(2)} ${s.samplesPerSec.toFixed(1)} samples/s ETA ${duration(eta)}`);
  }

  stage(stage: string, done: number, total: number): void {
    if (this.enabled) this.write(`${stage} ${done}/${total}`);
  }

  private write(text: string): void {
    const cols = process.stderr.columns ?? 120;
    process.stderr.write(`\r${text.slice(0, cols - 1)}\x1b[K`);
    this.shown = true;
  }

  /** Print a whole line above the status line. */
  message(text: string): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
    process.stderr.write(text + '\n');
  }
}

function epochTable(history: EpochRecord[]): string {
  const hasVal = history.some((h) => h.val);
  const head = ['epoch', 'step', 'train loss', 'samples/s', ...(hasVal ? ['i→t R@1', 'R@5', 'R@10', 't→i R@1', 'R@5', 'R@10', 'mean'] : [])];
  return table(head, history.map((h) => [
    h.epoch, h.step, h.trainLoss === null ? 'n/a' : h.trainLoss.toFixed(4), h.samplesPerSec.toFixed(1),
    ...(hasVal ? (h.val ? [
      pct(h.val.imageToText['R@1']), pct(h.val.imageToText['R@5']), pct(h.val.imageToText['R@10']),
      pct(h.val.textToImage['R@1']), pct(h.val.textToImage['R@5']), pct(h.val.textToImage['R@10']), pct(h.val.mean),
    ] : ['', '', '', '', '', '', '']) : []),
  ]));
}

export function registerTrain(program: Command): void {
  program.command('train')
    .description('fine-tune a checkpoint (--model) or train from a config (--config + --tokenizer) on image–caption pairs')
    .argument('[data]', 'training pairs: EasyNLP TSV, CSV, JSONL or a caption folder (optional with --resume)')
    .option('-m, --model <model>', 'checkpoint to fine-tune (HF CLIP, Chinese-CLIP, SigLIP, or an OpenAI/open_clip checkpoint; a ModifiedResNet only with --freeze vision)')
    .option('--config <file>', 'CLIPConfig JSON to train from scratch (random init, seeded by --seed)')
    .option('--tokenizer <dir>', 'tokenizer directory (tokenizer.json + tokenizer_config.json); required with --config')
    .addOption(new Option('--format <format>', 'data format (default: from the file)').choices(DATA_FORMATS))
    .option('--val <data>', 'validation pairs, evaluated at every epoch end (retrieval R@1/5/10)')
    .addOption(new Option('--val-format <format>', 'validation data format').choices(DATA_FORMATS))
    .requiredOption('-o, --out <dir>', 'output directory (final model, checkpoints, log)')
    .option('--epochs <n>', 'epochs', positiveInt('--epochs'))
    .option('--batch-size <n>', 'pairs per step', positiveInt('--batch-size'))
    .option('--lr <x>', 'peak learning rate', number('--lr', Number.MIN_VALUE))
    .option('--wd <x>', 'AdamW weight decay (not on biases, norms, other 1-D tensors or logit_scale)', number('--wd'))
    .option('--warmup <steps>', 'linear warmup steps, then cosine decay', nonNegativeInt('--warmup'))
    .option('--grad-clip <norm>', 'clip the global gradient norm', number('--grad-clip', Number.MIN_VALUE))
    .option('--seed <n>', 'seed for data order and scratch init', nonNegativeInt('--seed'))
    .addOption(new Option('--freeze <tower>', 'keep a tower fixed (vision = EasyNLP fix_vision); it gets no backward pass').choices(['vision', 'text']))
    .addOption(new Option('--captions <mode>', 'all: every caption is a pair each epoch; sample: every image once per epoch with a random one of its captions').choices(CAPTION_MODES))
    .addOption(new Option('--augment <kind>', 'image augmentation: crop = random zoom in and out (window 60-180% of the image area, white margin); crop+style = crops, and half the images get dark outlines, grayscale or blur; crop+redraw = crops, and 3 in 4 images get one or two of ten drawing changes (outlines thin or thick, line art, flat fills, one-colour glyph, stroke weight, hue, gray, blur)').choices(AUGMENTS))
    .option('--crop-scale <min,max>', 'crop window area relative to the image (default 0.6,1.8; above 1 zooms out onto a white margin)', cropScale)
    .addOption(new Option('--loss <kind>', 'objective: softmax (CLIP\'s cross-entropy over the batch) or sigmoid (SigLIP\'s pairwise loss, needs a logit_bias); default: the model family\'s own').choices(LOSS_KINDS))
    .option('--save-every <steps>', 'also checkpoint every N steps', positiveInt('--save-every'))
    .option('--keep <n>', 'checkpoints kept (newest)', positiveInt('--keep'), 1)
    .option('--resume', 'continue from the newest checkpoint in --out')
    .option('--threads <n>', 'ORT intra-op threads', positiveInt('--threads'))
    .option('--cache-mb <n>', 'memory for decoded images; larger sets are decoded per batch', positiveInt('--cache-mb'))
    .option('--recompute', 'recompute each transformer block\'s activations in the backward pass instead of keeping them: less memory for larger batches, ~1/3 more compute')
    .option('--no-arena', 'no ONNX Runtime memory arena: with MALLOC_MMAP_THRESHOLD_=262144 in the environment, memory freed within a step goes back to the system (lowest peak, slower)')
    .option('--json', 'print one JSON record per epoch and a final one, instead of a table')
    .addHelpText('after', HELP)
    .action(async (data: string | undefined, o: Record<string, any>, cmd: Command) => {
      // Only options given on the command line: on --resume, the rest come from the run itself.
      const given: Partial<TrainSetup> = { data };
      for (const [flag, field] of SETUP_FLAGS) if (cmd.getOptionValueSource(flag) === 'cli') (given as any)[field] = o[flag];
      const status = new StatusLine();
      const result = await trainClip(given, {
        out: o.out, resume: o.resume, saveEvery: o.saveEvery, keep: o.keep, threads: o.threads,
        cacheBytes: o.cacheMb === undefined ? undefined : o.cacheMb * 2 ** 20,
        memory: { ...(o.recompute ? { recompute: true } : {}), ...(o.arena === false ? { arena: false } : {}) },
      }, {
        note: (m) => status.message(`clip: ${m}`),
        prepare: (stage, d, t) => status.stage(stage, d, t),
        step: (s) => status.step(s),
        saved: (dir) => status.message(`clip: saved ${dir}`),
        epoch: (r) => {
          if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
          else status.message(`epoch ${r.epoch}: train loss ${r.trainLoss?.toFixed(4) ?? 'n/a'}${r.val ? `, val mean recall ${pct(r.val.mean)}` : ''}`);
        },
      });
      if (o.json) {
        process.stdout.write(JSON.stringify({
          type: 'done', out: result.out, steps: result.steps, finalLoss: result.finalLoss,
          skippedImages: result.skippedImages.map((s) => ({ image: s.name, error: s.error })),
        }) + '\n');
      } else {
        process.stdout.write(`${epochTable(result.history)}\nmodel saved to ${result.out}\n`);
      }
    });
}
