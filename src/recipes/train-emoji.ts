#!/usr/bin/env node
// `npm run train:emoji`: reproduce the bundled default model from a clean clone.
//   1. train the BPE tokenizer on the training captions (our own trainer, src/text/train-bpe.ts)
//   2. `clip train` from scratch with the recipe in emoji-clip.ts (resumable: rerun to continue)
//   3. the benchmark report (`clip eval emoji`) and the training curve
//   4. with --ship, the fp16 copy into models/emoji-clip/ (what `--model` defaults to)
// Usage: npm run train:emoji [-- --out DIR] [-- --ship] [-- --threads N]
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BUNDLED_MODELS } from '../hub/bundled.js';
import { dataReady, manifestPath } from '../data/manifests.js';
import { clipCacheRoot } from '../data/paths.js';
import { ClipModel } from '../runtime/clip-model.js';
import { emojiBenchmarkTable, runEmojiBenchmark } from '../data/emoji-benchmark.js';
import { renderTrainingCurve } from '../train/training-curve.js';
import { trainClipBpe, writeClipBpe } from '../text/train-bpe.js';
import { exportHalf } from '../train/export.js';
import { trainClip } from '../train/run.js';
import { EMOJI_CLIP_CONFIG, EMOJI_TOKENIZER, EMOJI_TRAIN, tokenizerCorpus } from './emoji-clip.js';

const log = (m: string) => process.stderr.write(`[train:emoji] ${m}\n`);

function parseArgs(argv: string[]): { out: string; ship: boolean; threads?: number } {
  let out = join(clipCacheRoot(), 'runs', 'emoji-clip');
  let ship = false;
  let threads: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') out = argv[++i]!;
    else if (a === '--ship') ship = true;
    else if (a === '--threads') threads = Number(argv[++i]);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: npm run train:emoji [-- --out DIR] [-- --ship] [-- --threads N]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return { out: resolve(out), ship, threads };
}

/** The model directory's README: what it is, how it was made, what it scores, and the data's licenses. */
function modelCard(table: string, trainSeconds: number, steps: number): string {
  const c = EMOJI_CLIP_CONFIG;
  return `# emoji-clip (bundled default model of clip-ts)

A small CLIP trained from scratch by \`npm run train:emoji\` (src/recipes/) on 3,812 emoji images of two
vendors — Noto Emoji (Apache-2.0) and Twemoji (CC-BY 4.0, © Twitter, Inc. and other contributors) from the
emoji-datasource packages — captioned from emojibase-data and emojilib (MIT). Weights stored as float16.

- Image tower: ViT, ${c.vision_config.image_size} px, patch ${c.vision_config.patch_size}, width ${c.vision_config.hidden_size}, ${c.vision_config.num_hidden_layers} layers.
- Text tower: CLIP causal transformer, width ${c.text_config.hidden_size}, ${c.text_config.num_hidden_layers} layers, ${c.text_config.max_position_embeddings} tokens;
  byte-level BPE of ${EMOJI_TOKENIZER.vocabSize} tokens trained on the captions by our own trainer.
- Training: ${EMOJI_TRAIN.epochs} epochs, batch ${EMOJI_TRAIN.batchSize}, AdamW lr ${EMOJI_TRAIN.lr}, wd ${EMOJI_TRAIN.weightDecay}, warmup ${EMOJI_TRAIN.warmup}, seed ${EMOJI_TRAIN.seed},
  captions sampled per image, augmentation ${EMOJI_TRAIN.augment}; ${steps} steps, ${(trainSeconds / 60).toFixed(1)} min on 2 CPU cores.
- Good for: emoji-like drawings on a light background (transparent images are composited on white).
  Not for photos: it never saw one (see Fashion-MNIST below).

## Evaluation (\`clip eval emoji\`, styles never seen in training: OpenMoji, Fluent Emoji Flat)

${table}
`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!dataReady()) throw new Error('the benchmark data is not prepared: run `npm run data` first');
  mkdirSync(args.out, { recursive: true });
  const started = Date.now();

  // 1. Tokenizer and config (deterministic: rewriting them on a resumed run changes nothing).
  const tokDir = join(args.out, 'tokenizer');
  const bpe = trainClipBpe(tokenizerCorpus(), EMOJI_TOKENIZER);
  writeClipBpe(tokDir, bpe);
  log(`tokenizer: ${bpe.stats.vocab} tokens (${bpe.stats.merges} merges over ${bpe.stats.words} distinct words) in ${tokDir}`);
  const configPath = join(args.out, 'config.json');
  writeFileSync(configPath, JSON.stringify(EMOJI_CLIP_CONFIG, null, 2) + '\n');

  // 2. Train (the same as `clip train` with the flags printed here).
  const runDir = join(args.out, 'run');
  const flags = `--epochs ${EMOJI_TRAIN.epochs} --batch-size ${EMOJI_TRAIN.batchSize} --lr ${EMOJI_TRAIN.lr} --wd ${EMOJI_TRAIN.weightDecay} --warmup ${EMOJI_TRAIN.warmup} --grad-clip ${EMOJI_TRAIN.gradClip} --seed ${EMOJI_TRAIN.seed} --captions ${EMOJI_TRAIN.captions} --augment ${EMOJI_TRAIN.augment}`;
  log(`equivalent: clip train ${manifestPath('train')} --config ${configPath} --tokenizer ${tokDir} --out ${runDir} ${flags} --resume`);
  let lastShown = 0;
  const result = await trainClip({ data: manifestPath('train'), config: configPath, tokenizer: tokDir, ...EMOJI_TRAIN }, { out: runDir, resume: true, threads: args.threads }, {
    note: (m) => log(m),
    step: (s) => {
      if (Date.now() - lastShown < 15_000 && s.step !== s.total) return;
      lastShown = Date.now();
      log(`epoch ${s.epoch}/${s.epochs} step ${s.step}/${s.total} loss ${s.loss?.toFixed(4) ?? 'skipped'} lr ${s.lr.toExponential(2)} ${s.samplesPerSec.toFixed(1)} samples/s`);
    },
    epoch: (r) => log(`epoch ${r.epoch}: mean loss ${r.trainLoss?.toFixed(4)} (${r.seconds.toFixed(0)} s)`),
  });
  const trainSeconds = result.history.reduce((s, h) => s + h.seconds, 0);
  log(`trained ${result.steps} steps in ${(trainSeconds / 60).toFixed(1)} min of steps (${((Date.now() - started) / 60000).toFixed(1)} min in this process)`);

  // 3. Report and curve.
  // Loaded once, right after training: no use for the ONNX cache.
  const model = await ClipModel.load(runDir, { threads: args.threads, cache: false });
  let report;
  try {
    report = await runEmojiBenchmark(model, { modelName: 'emoji-clip (fp32, run output)', onProgress: (stage, d, t) => { if (d === t) log(`${stage}: ${t}`); } });
  } finally {
    await model.release();
  }
  const full = { recipe: { config: EMOJI_CLIP_CONFIG, tokenizer: EMOJI_TOKENIZER, train: EMOJI_TRAIN, trainSeconds, steps: result.steps, finalLoss: result.finalLoss }, ...report };
  writeFileSync(join(args.out, 'report.json'), JSON.stringify(full, null, 1) + '\n');
  const md = emojiBenchmarkTable(report);
  writeFileSync(join(args.out, 'report.md'), md + '\n');
  await renderTrainingCurve(runDir, join(args.out, 'training-curve.png'), { title: 'emoji-clip: from scratch on Noto + Twemoji' });
  process.stdout.write(md + '\n');
  log(`report: ${join(args.out, 'report.json')}, ${join(args.out, 'report.md')}, ${join(args.out, 'training-curve.png')}`);

  // 4. Ship.
  if (args.ship) {
    const dst = BUNDLED_MODELS['emoji-clip']!.dir;
    rmSync(dst, { recursive: true, force: true });
    const { bytes } = exportHalf(runDir, dst);
    // Transparent PNGs (most emoji files) are seen on white, as the training images were drawn.
    const ppPath = join(dst, 'preprocessor_config.json');
    writeFileSync(ppPath, JSON.stringify({ ...JSON.parse(readFileSync(ppPath, 'utf8')), background_color: [255, 255, 255] }, null, 2) + '\n');
    for (const f of ['report.json', 'report.md', 'training-curve.png']) copyFileSync(join(args.out, f), join(dst, f));
    writeFileSync(join(dst, 'README.md'), modelCard(md, trainSeconds, result.steps));
    log(`shipped fp16 weights (${(bytes / 2 ** 20).toFixed(1)} MiB, file ${(statSync(join(dst, 'model.safetensors')).size / 2 ** 20).toFixed(1)} MiB) to ${dst}`);
  }
}

main().catch((e) => {
  process.stderr.write(`[train:emoji] ${(e as Error).message}\n`);
  process.exit(1);
});
