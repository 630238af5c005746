// `npm run bench`: ours vs transformers.js on a full-size ViT-B/32, side by side.
// The parent only prepares inputs and spawns one child per side/dtype, so that each child's peak RSS is
// its own and one library's arenas never slow the other. Children print one JSON line on stdout.
//   node dist/bench/run.js [--json]            full run: table (or JSON only) + bench/results/latest.json
//   node dist/bench/run.js --worker <name>     one side: ours-fp32 | tjs-fp32 | ours-int8 | tjs-q8 | ours-12mp | tjs-12mp
//   --workers a,b,...   run only these workers (default: all);  --no-photos  skip the 12 MP photo workers;
//   --no-search         skip the vector search latency
//   --only train        only the training bench (emoji-clip and ViT-B/32 steps, ours vs PyTorch; bench/train.ts)
//   --no-train          skip the training bench;  --short  fewer timed training steps
//   --train-batches 32,64,128   ViT-B/32 batches for the training bench (default 32)
import { runSearchBench, renderSearchBench, type SearchBenchResult } from './search.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, benchInputs, bigPhotos, ensureCheckpoint, sharedAvailable, SHARED, type BenchPaths } from './prepare.js';
import { renderPhotos, type PhotosResult } from './photos.js';
import { buildReport, renderTable } from './report.js';
import { IMAGE_BATCH, TEXT_BATCH, progress, type WorkerResult } from './timing.js';
import { currentTrainChild, renderTrainBench, runTrainBench, type TrainBenchResult } from './train.js';

const MAIN_WORKERS = ['ours-fp32', 'tjs-fp32', 'ours-int8', 'tjs-q8'] as const;
const PHOTO_WORKERS = ['ours-12mp', 'tjs-12mp'] as const;
const WORKERS = [...MAIN_WORKERS, ...PHOTO_WORKERS] as const;
type WorkerName = (typeof WORKERS)[number];

/** Both sides get this intra-op thread count explicitly (ORT's default is also all cores). */
const THREADS = Number(process.env.CLIP_BENCH_THREADS ?? availableParallelism());

async function runWorker(name: WorkerName, loadOnly: boolean): Promise<void> {
  const paths = ensureCheckpoint(progress);
  if (name === 'ours-12mp' || name === 'tjs-12mp') {
    const photos = await bigPhotos(progress);
    const { benchOursPhotos, benchTjsPhotos } = await import('./photos.js');
    const r = name === 'ours-12mp' ? await benchOursPhotos(paths, photos, THREADS) : await benchTjsPhotos(paths, photos, THREADS);
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  if (loadOnly) {
    const { benchOursLoad } = await import('./ours.js');
    process.stdout.write(JSON.stringify(await benchOursLoad(paths, THREADS, name === 'ours-int8' ? 'int8' : 'fp32')) + '\n');
    return;
  }
  const inputs = benchInputs();
  let result: WorkerResult;
  if (name === 'ours-fp32' || name === 'ours-int8') {
    const { benchOurs } = await import('./ours.js');
    result = await benchOurs(paths, inputs, THREADS, name === 'ours-int8' ? 'int8' : 'fp32');
  } else {
    const { benchTransformersJs } = await import('./transformersjs.js');
    result = await benchTransformersJs(paths, inputs, THREADS, name === 'tjs-q8' ? 'q8' : 'fp32');
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** The running worker, so an interrupted bench stops it instead of leaving it hogging the CPU. */
let current: ChildProcess | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (current?.pid !== undefined && current.exitCode === null) current.kill('SIGTERM');
    if (currentTrainChild?.pid !== undefined && currentTrainChild.exitCode === null) currentTrainChild.kill('SIGTERM');
    process.exit(130);
  });
}

function spawnWorker<T = WorkerResult>(name: WorkerName, extra: string[] = []): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const script = fileURLToPath(import.meta.url);
    // stderr passes straight through: that is the progress stream.
    const child = spawn(process.execPath, [script, '--worker', name, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    current = child;
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`worker ${name} exited with ${signal ?? code}`));
      try {
        resolvePromise(JSON.parse(last) as T);
      } catch {
        reject(new Error(`worker ${name} printed no result line`));
      }
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const wi = args.indexOf('--worker');
  if (wi >= 0) {
    const name = args[wi + 1] as WorkerName;
    if (!WORKERS.includes(name)) throw new Error(`unknown worker "${name}" (expected ${WORKERS.join(', ')})`);
    return runWorker(name, args.includes('--load-only'));
  }
  const jsonOnly = args.includes('--json');
  const oi = args.indexOf('--only');
  const only = oi >= 0 ? args[oi + 1] : undefined;
  if (only !== undefined && only !== 'train') throw new Error(`--only: expected "train" (got ${only ?? 'nothing'})`);
  const tb = args.indexOf('--train-batches');
  const vitBatches = tb >= 0 ? (args[tb + 1] ?? '').split(',').map(Number) : undefined;
  if (vitBatches?.some((b) => !Number.isInteger(b) || b < 1 || b > 4096)) throw new Error('--train-batches: expected batch sizes such as 32,64,128');
  const trainOpts = { short: args.includes('--short'), vitBatches, threads: THREADS, torchThreads: Number(process.env.CLIP_BENCH_TORCH_THREADS ?? 1) };
  if (only === 'train') {
    const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
    progress(`training bench only; CPU ${cpuModel}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    if (!sharedAvailable()) progress(`ViT-B/32 rows skipped: ${SHARED}/bench/vitb32-tiled.tar.xz is absent`);
    else ensureCheckpoint(progress); // once here, so workers never race to extract
    const train = await runTrainBench({ ...trainOpts, noVit: !sharedAvailable() });
    const resultsDir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, 'latest-train.json');
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, ...train }, null, 2) + '\n');
    if (jsonOnly) process.stdout.write(JSON.stringify(train) + '\n');
    else process.stdout.write(renderTrainBench(train) + `\n\nwritten ${file}\n`);
    return;
  }
  const wsel = args.indexOf('--workers');
  const selected = wsel >= 0 ? (args[wsel + 1] ?? '').split(',').filter(Boolean) : [...WORKERS];
  const unknown = selected.filter((w) => !(WORKERS as readonly string[]).includes(w));
  if (unknown.length) throw new Error(`--workers: unknown ${unknown.join(', ')} (expected some of ${WORKERS.join(', ')})`);
  const photoWorkers = args.includes('--no-photos') ? [] : PHOTO_WORKERS.filter((w) => selected.includes(w));
  if (!sharedAvailable()) {
    process.stderr.write(`bench: skipped, the benchmark checkpoint is not available (${SHARED}/bench/vitb32-tiled.tar.xz; ../shared is absent)\n`);
    if (jsonOnly) process.stdout.write(JSON.stringify({ skipped: 'shared bench files absent' }) + '\n');
    return;
  }
  const paths: BenchPaths = ensureCheckpoint(progress); // once here, so workers never race to extract
  const inputs = benchInputs();
  progress(`model ${paths.modelDir}; ${inputs.images.length} images per timing, ${inputs.captions.length} captions; ${THREADS} threads each side`);

  const busy = loadavg()[0]!;
  if (busy > availableParallelism() - 0.5) {
    progress(`warning: load average is ${busy.toFixed(1)} on ${availableParallelism()} cores before starting; other processes will skew the numbers`);
  }
  // One at a time: two heavy processes on a small machine would measure the contention, not the code.
  const workers: WorkerResult[] = [];
  const photoResults: PhotosResult[] = [];
  const t0 = performance.now();
  // Our built-ONNX cache lives in a scratch CLIP_CACHE for the run: a first process loads cold (builds
  // and writes it), then the measuring process loads as every later run would.
  const scratch = mkdtempSync(join(tmpdir(), 'clip-bench-cache-'));
  process.env.CLIP_ONNX_CACHE_DIR = scratch;
  process.env.CLIP_ONNX_CACHE = '1';
  try {
    for (const name of MAIN_WORKERS.filter((w) => selected.includes(w))) {
      progress(`--- ${name} ---`);
      let cold: { loadS: number } | undefined;
      if (name.startsWith('ours-')) {
        cold = await spawnWorker<{ loadS: number }>(name, ['--load-only']);
        progress(`${name}: first load (empty ONNX cache) ${cold.loadS.toFixed(2)} s`);
      }
      const w = await spawnWorker(name);
      if (cold) w.coldLoadS = cold.loadS;
      workers.push(w);
    }
    if (photoWorkers.length) await bigPhotos(progress); // made once here, so workers never race to write them
    for (const name of photoWorkers) {
      progress(`--- ${name} ---`);
      photoResults.push(await spawnWorker<PhotosResult>(name));
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  progress(`all workers done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  // Vector search latency (LanceDB ANN vs exact) at 100k and 1M vectors; the tables are cached after the first run.
  let search: SearchBenchResult | undefined;
  if (!process.argv.includes('--no-search')) {
    progress('--- search latency (100k, 1M vectors) ---');
    search = await runSearchBench({});
  }

  let train: TrainBenchResult | undefined;
  if (!args.includes('--no-train')) {
    progress('--- training (emoji-clip and ViT-B/32 steps, ours vs PyTorch) ---');
    train = await runTrainBench(trainOpts);
  }

  const report = buildReport({
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), threads: THREADS, node: process.version, platform: `${process.platform}-${process.arch}` },
    model: paths.modelDir,
    inputs: {
      images: inputs.images.length, distinctImages: new Set(inputs.images).size,
      texts: inputs.captions.length, imageBatch: IMAGE_BATCH, textBatch: TEXT_BATCH,
    },
    workers,
  });
  if (search) (report as unknown as Record<string, unknown>).search = search;
  if (train) (report as unknown as Record<string, unknown>).train = train;
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  const oursPhotos = photoResults.find((r) => r.worker === 'ours-12mp');
  const theirPhotos = photoResults.find((r) => r.worker === 'tjs-12mp');
  if (photoResults.length) (report as unknown as Record<string, unknown>).photos12mp = { cpuModel, results: photoResults };
  const resultsDir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, 'latest.json');
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  if (jsonOnly) {
    process.stdout.write(JSON.stringify(report) + '\n');
  } else {
    process.stdout.write(renderTable(report) + '\n');
    if (photoResults.length) process.stdout.write('\n' + renderPhotos(oursPhotos, theirPhotos, cpuModel) + '\n');
    if (search) process.stdout.write('\n' + renderSearchBench(search) + '\n');
    if (train) process.stdout.write('\n' + renderTrainBench(train) + '\n');
    process.stdout.write(`\nwritten ${file}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
