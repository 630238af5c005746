// Training throughput and memory: our trainer (the ClipTrainer step `clip train` runs: forward, backward
// and AdamW in one ORT session) next to ../shared/bench/torch_clip_step.py (the same architecture in
// PyTorch), both on fixed random inputs, so data loading is out of both figures.
//   node dist/bench/train.js --worker ours|torch --model emoji|vitb32 --batch N --steps S [--recompute] [--tokens T]
// A worker prints one JSON line (TrainResult). run.ts spawns one process per measurement, so each peak RSS
// is that run's own.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join, resolve as resolvePath } from 'node:path';
import { clipConfigFromHF, type ClipConfig } from '../src/models/config.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { hfClipWeights } from '../src/models/families/hf-clip.js';
import type { TowerWeights } from '../src/models/weights.js';
import { EMOJI_CLIP_CONFIG } from '../src/recipes/emoji-clip.js';
import { completeScratchConfig } from '../src/train/hf-config.js';
import { randomClipWeights } from '../src/train/init.js';
import { ClipTrainer } from '../src/train/trainer.js';
import { LOSS } from '../src/train/clip-loss.js';
import { Rng } from '../src/tasks/rng.js';
import { matmulFlops } from './flops.js';
import { ensureCheckpoint, SHARED } from './prepare.js';
import { median, memory, progress } from './timing.js';

export const TRAIN_MODELS = ['emoji', 'vitb32'] as const;
export type TrainModel = (typeof TRAIN_MODELS)[number];

/** The torch script's default caption length; both sides get the same. */
export const TRAIN_TOKENS = 16;
export const TORCH_SCRIPT = join(SHARED, 'bench', 'torch_clip_step.py');
export const TORCH_PYTHON = '/usr/bin/python3';

export interface TrainResult {
  side: 'ours' | 'torch';
  model: TrainModel;
  batch: number;
  tokens: number;
  threads: number;
  recompute?: boolean;
  noArena?: boolean;
  warmupSteps: number;
  steps: number;
  sPerStep: number;
  samplesPerSec: number;
  /** 3 x forward FLOPs of the MatMul/Gemm/Conv nodes (bench/flops.ts), per step. */
  gflopPerStep?: number;
  gflops?: number;
  /** Peak RSS of the whole process (load, warm-up and timed steps). */
  peakRssMB: number;
  /** RSS after the timed steps (ours): what a long run holds. */
  rssMB?: number;
  params?: number;
  loadAvg: number;
  /** Which of the alternating ours/torch rounds (emoji-clip) this row is, from 1. */
  round?: number;
}

/** HF config.json of each benchmark model. */
export function trainModelConfig(model: TrainModel): Record<string, any> {
  if (model === 'emoji') {
    // The recipe's config with the recipe tokenizer's size and ids (values fix shapes, not speed).
    return completeScratchConfig(EMOJI_CLIP_CONFIG, { vocab: 6000, bos: 0, eos: 1, pad: 1 }, 'emoji-clip recipe');
  }
  const paths = ensureCheckpoint(progress);
  return JSON.parse(readFileSync(join(paths.modelDir, 'config.json'), 'utf8')) as Record<string, any>;
}

function loadModel(model: TrainModel): { cfg: ClipConfig; w: TowerWeights } {
  if (model === 'emoji') {
    const json = trainModelConfig('emoji');
    return { cfg: clipConfigFromHF(json, 'emoji-clip recipe'), w: hfClipWeights(randomClipWeights(json, 0)) };
  }
  const ck = openCheckpoint(ensureCheckpoint(progress).modelDir, { format: 'weights' });
  if (!ck.config || !ck.weights) throw new Error('bench checkpoint has no weights');
  return { cfg: ck.config, w: ck.weights };
}

export interface OursOptions {
  model: TrainModel;
  batch: number;
  steps: number;
  warmup: number;
  threads: number;
  tokens?: number;
  recompute?: boolean;
  /** TrainMemory overrides for experiments (arena, update). */
  memory?: { arena?: boolean; update?: 'chunked' | 'graph' };
}

export async function benchOursTrain(o: OursOptions): Promise<TrainResult> {
  const T = o.tokens ?? TRAIN_TOKENS;
  const { cfg, w } = loadModel(o.model);
  const trainer = await ClipTrainer.create(cfg, w, {
    adamw: { betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2 },
    threads: o.threads,
    memory: { recompute: o.recompute, ...o.memory },
  });
  // Random inputs as the torch script makes them: normal pixels, ids below the vocabulary, EOT last.
  const rng = new Rng(0, 1);
  const S = cfg.vision.imageSize;
  const pixels = new Float32Array(o.batch * 3 * S * S);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.normal();
  const vocab = cfg.text.vocabSize;
  const ids = new BigInt64Array(o.batch * T);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(i % T === T - 1 ? vocab - 1 : Math.floor(rng.float() * (vocab - 2)));
  const batch = { pixelValues: pixels, inputIds: ids, n: o.batch, seqLen: T, eot: Array.from({ length: o.batch }, () => T - 1) };

  const g = trainer.graph;
  const forwardEnd = g.nodes.findIndex((n) => n.outputs.includes(LOSS)) + 1;
  let gflopPerStep: number | undefined;
  try {
    gflopPerStep = (3 * matmulFlops(g, { batch: o.batch, sequence: T }, forwardEnd)) / 1e9;
  } catch (e) {
    progress(`train ${o.model}: FLOPs not counted (${(e as Error).message})`);
  }

  for (let k = 0; k < o.warmup; k++) await trainer.step(batch, 1e-5);
  const t0 = performance.now();
  for (let k = 0; k < o.steps; k++) await trainer.step(batch, 1e-5);
  const dt = (performance.now() - t0) / 1000;
  const params = [...trainer.params.values()].reduce((a, p) => a + p.data.length, 0);
  const mem = memory();
  await trainer.release();
  return {
    side: 'ours', model: o.model, batch: o.batch, tokens: T, threads: o.threads, recompute: o.recompute ?? false, noArena: o.memory?.arena === false,
    warmupSteps: o.warmup, steps: o.steps, sPerStep: dt / o.steps, samplesPerSec: (o.batch * o.steps) / dt,
    gflopPerStep, gflops: gflopPerStep !== undefined ? (gflopPerStep * o.steps) / dt : undefined,
    peakRssMB: mem.peakRssMB, rssMB: mem.rssMB, params, loadAvg: loadavg()[0]!,
  };
}

/** Why the PyTorch side cannot run here, or undefined when it can. */
export async function torchUnavailable(): Promise<string | undefined> {
  if (!existsSync(TORCH_SCRIPT)) return `${TORCH_SCRIPT} is absent`;
  if (!existsSync(TORCH_PYTHON)) return `${TORCH_PYTHON} is absent`;
  const r = await runPython(['-c', 'import torch; print(torch.__version__)'], {});
  return r.code === 0 ? undefined : `torch is not importable by ${TORCH_PYTHON} (${r.err.trim().split('\n').pop() ?? 'no message'})`;
}

function runPython(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TORCH_PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/**
 * torch_clip_step.py on the same config, with peak RSS read by a wrapper (the script is not ours to edit).
 * One BLAS thread per torch thread, as its README advises for this build.
 */
export async function benchTorchTrain(model: TrainModel, batch: number, steps: number, threads: number, tokens = TRAIN_TOKENS): Promise<TrainResult> {
  const dir = mkdtempSync(join(tmpdir(), 'clip-bench-torch-'));
  try {
    const cfgPath = join(dir, 'config.json');
    writeFileSync(cfgPath, JSON.stringify(withTorchDefaults(trainModelConfig(model))));
    const wrapper = [
      'import json, resource, runpy, sys',
      `sys.argv = ${JSON.stringify([TORCH_SCRIPT, cfgPath, String(batch), String(steps), String(threads), String(tokens)])}`,
      `runpy.run_path(sys.argv[0], run_name="__main__")`,
      'print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))',
    ].join('\n');
    const r = await runPython(['-c', wrapper], { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' });
    if (r.code !== 0) throw new Error(`torch_clip_step.py failed (${r.code}): ${r.err.trim().split('\n').slice(-3).join(' | ')}`);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const res = lines.find((l) => 'samples_per_s' in l);
    const rss = lines.find((l) => 'peak_rss_kb' in l);
    if (!res || !rss) throw new Error(`torch_clip_step.py printed no result: ${r.out.slice(0, 200)}`);
    return {
      side: 'torch', model, batch, tokens, threads: res.threads!, warmupSteps: TORCH_WARMUP_STEPS, steps,
      sPerStep: res.s_per_step!, samplesPerSec: res.samples_per_s!, peakRssMB: rss.peak_rss_kb! / 1024, params: res.params,
      loadAvg: loadavg()[0]!,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The script reads these keys without defaults; HF's CLIPConfig defaults fill what a config leaves out. */
function withTorchDefaults(c: Record<string, any>): Record<string, any> {
  const t = { vocab_size: 49408, max_position_embeddings: 77, ...c.text_config };
  const v = { image_size: 224, patch_size: 32, ...c.vision_config };
  return { projection_dim: 512, ...c, text_config: t, vision_config: v };
}

/** One measurement of the training bench: which side, model, batch and how many timed steps. */
export interface TrainJob {
  side: 'ours' | 'torch';
  model: TrainModel;
  batch: number;
  steps: number;
  recompute?: boolean;
  /** Also ORT's arena off, with glibc mapping large blocks directly (LOW_MEMORY_ENV): the lowest peak. */
  noArena?: boolean;
  round?: number;
}

/** What `clip train --no-arena` needs in the environment to give freed memory back (see TrainMemory.arena). */
export const LOW_MEMORY_ENV = { MALLOC_MMAP_THRESHOLD_: '262144' };

export interface TrainBenchResult {
  cpuModel: string;
  cores: number;
  loadBefore: number[];
  torch: string | undefined;
  /** Why the PyTorch rows are missing, when they are. */
  torchSkipped?: string;
  flopsNote: string;
  rows: (TrainResult | { side: TrainJob['side']; model: TrainModel; batch: number; recompute?: boolean; noArena?: boolean; round?: number; error: string })[];
}

export const FLOPS_NOTE = 'GFLOP/s = 3 x the forward FLOPs of the graph\'s MatMul/Gemm/Conv nodes (2 per multiply-add, shapes bound to the batch) per step / s per step; same count for both sides';

/** Ours and torch threads: ours uses every core; torch's Debian build is fastest at 1 thread + 1 BLAS thread on 2 cores (its README). */
/** Warm-up steps torch_clip_step.py runs before timing (../shared/bench). */
const TORCH_WARMUP_STEPS = 3;

function spawnTrainWorker(job: TrainJob, threads: number, torchThreads: number, warmup: number): Promise<TrainResult> {
  return new Promise((resolve, reject) => {
    const args = [fileURLToPath(import.meta.url), '--worker', job.side, '--model', job.model, '--batch', String(job.batch), '--steps', String(job.steps),
      '--threads', String(job.side === 'torch' ? torchThreads : threads), '--warmup', String(warmup), ...(job.recompute ? ['--recompute'] : []), ...(job.noArena ? ['--no-arena'] : [])];
    const env = job.noArena ? { ...process.env, ...LOW_MEMORY_ENV } : process.env;
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    currentTrainChild = child;
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      currentTrainChild = undefined;
      if (code !== 0) return reject(new Error(`train worker ${job.side} ${job.model} exited with ${signal ?? code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as TrainResult);
      } catch {
        reject(new Error(`train worker ${job.side} ${job.model} printed no result line`));
      }
    });
  });
}

/** The running training worker, so an interrupted bench can stop it. */
export let currentTrainChild: ChildProcess | undefined;

export interface TrainBenchOptions {
  /** Fewer timed steps (a quick look, noisier). */
  short?: boolean;
  /** ViT-B/32 batches to measure (default [32]); each gets ours, ours --recompute, ours --recompute --no-arena and torch. */
  vitBatches?: number[];
  /** Skip ViT-B/32 (the shared checkpoint is absent). */
  noVit?: boolean;
  threads: number;
  torchThreads?: number;
  /** Alternating ours/torch rounds of emoji-clip (default EMOJI_ROUNDS, 1 with short). */
  rounds?: number;
}

export const EMOJI_ROUNDS = 3;

export async function runTrainBench(o: TrainBenchOptions): Promise<TrainBenchResult> {
  const busy = loadavg()[0]!;
  if (busy > availableParallelism() - 0.5) {
    progress(`train: warning: load average is ${busy.toFixed(1)} on ${availableParallelism()} cores before starting; other processes will skew the numbers`);
  }
  const torchSkipped = await torchUnavailable();
  if (torchSkipped) progress(`train: PyTorch side skipped: ${torchSkipped}`);
  const torch = torchSkipped ? undefined : (await runPython(['-c', 'import torch; print(torch.__version__)'], {})).out.trim();
  const emojiSteps = o.short ? 3 : 10;
  const vitSteps = o.short ? 1 : 3;
  // emoji-clip alternates ours and torch for a few rounds: on a shared 2-core VM one run's speed moves by
  // ±15% from minute to minute, and a ratio of two single runs moved with it (1.43x–1.62x seen).
  const rounds = o.rounds ?? (o.short ? 1 : EMOJI_ROUNDS);
  const jobs: TrainJob[] = [];
  for (let round = 1; round <= rounds; round++) {
    jobs.push({ side: 'ours', model: 'emoji', batch: 128, steps: emojiSteps, round });
    if (!torchSkipped) jobs.push({ side: 'torch', model: 'emoji', batch: 128, steps: emojiSteps, round });
  }
  if (!o.noVit) {
    for (const batch of o.vitBatches ?? [32]) {
      jobs.push(
        { side: 'ours', model: 'vitb32', batch, steps: vitSteps },
        { side: 'ours', model: 'vitb32', batch, steps: vitSteps, recompute: true },
        { side: 'ours', model: 'vitb32', batch, steps: vitSteps, recompute: true, noArena: true },
      );
      if (!torchSkipped) jobs.push({ side: 'torch', model: 'vitb32', batch, steps: vitSteps });
    }
  }
  const result: TrainBenchResult = {
    cpuModel: cpus()[0]?.model ?? 'unknown CPU', cores: availableParallelism(), loadBefore: loadavg(),
    torch, torchSkipped, flopsNote: FLOPS_NOTE, rows: [],
  };
  // FLOPs per step of each model and batch, from our graph: the torch rows get the same count.
  const flops = new Map<string, number>();
  for (const job of jobs) {
    const label = `${job.side} ${job.model} batch ${job.batch}${job.recompute ? ' --recompute' : ''}${job.noArena ? ' --no-arena' : ''}${job.round ? ` (round ${job.round})` : ''}`;
    progress(`--- train: ${label} (${job.steps} timed steps) ---`);
    try {
      // Our warm-up matches torch_clip_step.py's 3 steps: the first steps grow ORT's arena and V8's heap.
      const r = await spawnTrainWorker(job, o.threads, o.torchThreads ?? 1, TORCH_WARMUP_STEPS);
      if (job.round) r.round = job.round;
      const key = `${job.model}/${job.batch}`;
      if (r.gflopPerStep !== undefined) flops.set(key, r.gflopPerStep);
      else if (flops.has(key)) {
        r.gflopPerStep = flops.get(key)!;
        r.gflops = r.gflopPerStep / r.sPerStep;
      }
      progress(`train: ${label}: ${r.samplesPerSec.toFixed(2)} samples/s, peak RSS ${(r.peakRssMB / 1024).toFixed(2)} GiB, load ${r.loadAvg.toFixed(1)}`);
      result.rows.push(r);
    } catch (e) {
      progress(`train: ${label} failed: ${(e as Error).message}`);
      result.rows.push({ side: job.side, model: job.model, batch: job.batch, recompute: job.recompute, noArena: job.noArena, round: job.round, error: (e as Error).message });
    }
  }
  return result;
}

/**
 * The emoji-clip speed ratio over the alternating rounds: median samples/s of each side and their ratio,
 * and each round's own ratio (rounds missing a side are left out). Undefined with no complete round.
 */
export function roundSummary(rows: TrainBenchResult['rows']): { rounds: number; ours: number; torch: number; ratio: number; perRound: number[] } | undefined {
  const ok = rows.filter((x): x is TrainResult => !('error' in x) && x.model === 'emoji' && x.round !== undefined);
  const pairs: [TrainResult, TrainResult][] = [];
  for (const o of ok.filter((x) => x.side === 'ours')) {
    const t = ok.find((x) => x.side === 'torch' && x.round === o.round);
    if (t) pairs.push([o, t]);
  }
  if (!pairs.length) return undefined;
  const ours = median(pairs.map((p) => p[0].samplesPerSec));
  const torch = median(pairs.map((p) => p[1].samplesPerSec));
  return { rounds: pairs.length, ours, torch, ratio: ours / torch, perRound: pairs.map((p) => p[0].samplesPerSec / p[1].samplesPerSec) };
}

export function renderTrainBench(r: TrainBenchResult): string {
  const lines = [
    `Training step (forward + backward + AdamW, random inputs, ${TRAIN_TOKENS} tokens; mean over the timed steps after warm-up)`,
    `CPU: ${r.cpuModel}, ${r.cores} cores; load average before ${r.loadBefore.map((x) => x.toFixed(2)).join(' ')}`,
    r.torch ? `PyTorch ${r.torch} (${TORCH_PYTHON}, torch_clip_step.py)` : `PyTorch: skipped (${r.torchSkipped})`,
    '',
  ];
  const head = ['model', 'batch', 'side', 'samples/s', 'GFLOP/s', 'peak RSS', 'speed vs torch', 'RSS vs torch', 'load'];
  const rows: string[][] = [];
  for (const x of r.rows) {
    const side = x.side === 'torch' ? `PyTorch (${'threads' in x ? x.threads : '?'} thr)` : `ours${x.recompute ? ' --recompute' : ''}${x.noArena ? ' --no-arena*' : ''}`;
    const model = x.model === 'emoji' ? 'emoji-clip' : 'ViT-B/32';
    if ('error' in x) {
      rows.push([model, String(x.batch), side, 'failed', '', '', '', '', '']);
      continue;
    }
    const t = r.rows.find((y): y is TrainResult => y.side === 'torch' && y.model === x.model && y.batch === x.batch && y.round === x.round && !('error' in y));
    const vs = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : '');
    rows.push([
      model, String(x.batch), x.round ? `${side} r${x.round}` : side, x.samplesPerSec.toFixed(2), x.gflops?.toFixed(1) ?? '', `${(x.peakRssMB / 1024).toFixed(2)} GiB`,
      x.side === 'ours' ? vs(x.samplesPerSec, t?.samplesPerSec) : '', x.side === 'ours' ? vs(x.peakRssMB, t?.peakRssMB) : '', x.loadAvg.toFixed(1),
    ]);
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  const summary = roundSummary(r.rows);
  lines.push(fmt(head), fmt(w.map((n) => '-'.repeat(n))), ...rows.map(fmt), '',
    ...(summary ? [`emoji-clip over ${summary.rounds} alternating rounds: ours ${summary.ours.toFixed(1)} samples/s, PyTorch ${summary.torch.toFixed(1)} (medians): ${summary.ratio.toFixed(2)}x (per round ${summary.perRound.map((x) => x.toFixed(2) + 'x').join(', ')})`, ''] : []),
    r.flopsNote + '.',
    `* --no-arena rows run with ${Object.entries(LOW_MEMORY_ENV).map(([k, v]) => `${k}=${v}`).join(' ')} (glibc returns freed blocks; see TrainMemory.arena).`,
    'peak RSS: the whole process (load, warm-up, timed steps); load: 1-min load average when the row finished (above the core count, other processes competed).');
  return lines.join('\n');
}

async function worker(args: string[]): Promise<void> {
  const get = (k: string, d?: string): string => {
    const i = args.indexOf(k);
    const v = i >= 0 ? args[i + 1] : d;
    if (v === undefined) throw new Error(`train worker: ${k} is required`);
    return v;
  };
  const side = get('--worker');
  const model = get('--model') as TrainModel;
  if (!TRAIN_MODELS.includes(model)) throw new Error(`--model: expected ${TRAIN_MODELS.join(' or ')}`);
  const batch = Number(get('--batch'));
  const steps = Number(get('--steps'));
  const threads = Number(get('--threads', '2'));
  const tokens = Number(get('--tokens', String(TRAIN_TOKENS)));
  const r = side === 'torch'
    ? await benchTorchTrain(model, batch, steps, threads, tokens)
    : await benchOursTrain({
      model, batch, steps, warmup: Number(get('--warmup', '2')), threads, tokens, recompute: args.includes('--recompute'),
      memory: { ...(args.includes('--no-arena') ? { arena: false } : {}), ...(args.includes('--update-in-graph') ? { update: 'graph' as const } : {}) },
    });
  process.stdout.write(JSON.stringify(r) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolvePath(process.argv[1])) {
  worker(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`train bench: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
