// Turn worker results into the side-by-side table and the JSON written to bench/results/latest.json.
import type { Rate, WorkerResult } from './timing.js';

export interface BenchReport {
  date: string;
  machine: { cpus: number; threads: number; node: string; platform: string };
  model: string;
  inputs: { images: number; distinctImages: number; texts: number; imageBatch: number; textBatch: number };
  /** Worker results without their sample embeddings (only the cosines in `checks` are kept). */
  workers: Array<Omit<WorkerResult, 'sample'>>;
  rows: Array<{ metric: string; ours: number | null; theirs: number | null; oursInt8: number | null; theirsQ8: number | null; ratio: number | null; better: 'higher' | 'lower' }>;
  checks: Record<string, number | null>;
  notes: string[];
}

type Pick = (w: WorkerResult) => number;

const rate = (f: (w: WorkerResult) => Rate): Pick => (w) => f(w).bestPerSec;

const METRICS: Array<{ metric: string; pick: Pick; better: 'higher' | 'lower'; oursHasNoInt8?: boolean }> = [
  { metric: 'image tower, model only (images/s, batch 32)', pick: rate((w) => w.imageModel), better: 'higher' },
  { metric: 'decode + preprocess only (images/s)', pick: rate((w) => w.preprocess), better: 'higher' },
  { metric: 'files -> embeddings (images/s, batch 32)', pick: rate((w) => w.files), better: 'higher' },
  { metric: 'clip embed job, files -> TSV (images/s)', pick: (w) => (w.embedTsv ? w.embedTsv.bestPerSec : NaN), better: 'higher' },
  { metric: 'short captions -> embeddings (texts/s, batch 256)', pick: rate((w) => w.texts), better: 'higher' },
  { metric: '  tokens per row fed to the text tower (mean)', pick: (w) => w.textTokens, better: 'lower' },
  { metric: 'text tower, model only, 77 tokens (texts/s, batch 64)', pick: rate((w) => w.textModel77), better: 'higher' },
  { metric: 'model load (s)', pick: (w) => w.loadS, better: 'lower' },
  { metric: '  first load, empty ONNX cache (s)', pick: (w) => w.coldLoadS ?? NaN, better: 'lower' },
  { metric: 'RSS after load (MiB)', pick: (w) => w.rssAfterLoadMB, better: 'lower' },
  { metric: 'peak RSS (MiB)', pick: (w) => w.peakRssMB, better: 'lower' },
];

function cosine(a: number[], b: number[]): number | null {
  if (!a.length || a.length !== b.length) return null;
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return d / Math.sqrt(na * nb);
}

export function buildReport(base: Omit<BenchReport, 'rows' | 'checks' | 'notes' | 'workers'> & { workers: WorkerResult[] }): BenchReport {
  const by = (name: string) => base.workers.find((w) => w.worker === name);
  const ours = by('ours-fp32');
  const theirs = by('tjs-fp32');
  const q8 = by('tjs-q8');
  const oursQ8 = by('ours-int8');
  const val = (w: WorkerResult | undefined, pick: Pick): number | null => {
    if (!w) return null;
    const v = pick(w);
    return Number.isFinite(v) ? v : null;
  };
  const rows = METRICS.map(({ metric, pick, better }) => {
    const o = val(ours, pick);
    const t = val(theirs, pick);
    return { metric, ours: o, theirs: t, oursInt8: val(oursQ8, pick), theirsQ8: val(q8, pick), ratio: o !== null && t ? o / t : null, better };
  });
  const checks: Record<string, number | null> = {
    'cos(ours, tjs fp32) first image': ours && theirs ? cosine(ours.sample.image, theirs.sample.image) : null,
    'cos(ours, tjs fp32) first caption': ours && theirs ? cosine(ours.sample.text, theirs.sample.text) : null,
    'cos(tjs q8, tjs fp32) first image': q8 && theirs ? cosine(q8.sample.image, theirs.sample.image) : null,
    'cos(tjs q8, tjs fp32) first caption': q8 && theirs ? cosine(q8.sample.text, theirs.sample.text) : null,
  };
  const notes: string[] = [];
  if (ours) {
    // How much of the preprocessing hides behind inference: 1 = fully overlapped, 0 = strictly serial.
    const model = 1 / ours.imageModel.bestPerSec, prep = 1 / ours.preprocess.bestPerSec, files = 1 / ours.files.bestPerSec;
    const serial = model + prep, ideal = Math.max(model, prep);
    const overlap = serial > ideal ? (serial - files) / (serial - ideal) : 0;
    checks['ours: preprocess share of serial per-image time'] = prep / serial;
    // Outside any 0..1 range the timings were too noisy to say (e.g. files faster than the model alone).
    checks['ours: decode/inference overlap (0 serial .. 1 full)'] = overlap >= -0.1 && overlap <= 1.1 ? overlap : null;
    notes.push(
      `ours per image: model ${(model * 1000).toFixed(1)} ms, preprocess ${(prep * 1000).toFixed(1)} ms, ` +
      `files->embeddings ${(files * 1000).toFixed(1)} ms (serial sum ${(serial * 1000).toFixed(1)} ms)`,
    );
  }
  if (theirs) {
    const model = 1 / theirs.imageModel.bestPerSec, prep = 1 / theirs.preprocess.bestPerSec, files = 1 / theirs.files.bestPerSec;
    notes.push(
      `transformers.js fp32 per image: model ${(model * 1000).toFixed(1)} ms, preprocess ${(prep * 1000).toFixed(1)} ms, ` +
      `files->embeddings ${(files * 1000).toFixed(1)} ms (serial sum ${((model + prep) * 1000).toFixed(1)} ms)`,
    );
  }
  // Other processes on the machine skew rates; say so next to the numbers rather than hide it.
  for (const w of base.workers) {
    const rates = [w.imageModel, w.preprocess, w.files, w.texts, w.textModel77];
    const load = Math.max(...rates.map((r) => r.loadAvg));
    const cores = rates.map((r) => r.cpuCores);
    checks[`${w.worker}: max load avg during timings`] = load;
    if (load > base.machine.cpus + 0.5) {
      notes.push(`warning: ${w.worker} ran with load average up to ${load.toFixed(1)} on ${base.machine.cpus} cores (other processes competed); ` +
        `CPU cores used per timing ${cores.map((c) => c.toFixed(2)).join(', ')}`);
    }
  }
  notes.push('rates are the best of the timed runs (median and mean are in the JSON) (each run = 128 images or 256 captions, or one batch of 32 for model-only).');
  notes.push('ratio = ours / transformers.js fp32; for rates higher is better, for times and memory lower is better.');
  notes.push('int8: ours = weights quantized per channel at load (7-bit), activations per row (MatMulIntegerToFloat); transformers.js = its _quantized ONNX files.');
  if (oursQ8 && ours) {
    checks['cos(ours int8, ours fp32) first image'] = cosine(oursQ8.sample.image, ours.sample.image);
    checks['cos(ours int8, ours fp32) first caption'] = cosine(oursQ8.sample.text, ours.sample.text);
  }
  const workers = base.workers.map(({ sample: _sample, ...rest }) => rest);
  return { ...base, workers, rows, checks, notes };
}

function fmt(v: number | null, metric: string): string {
  if (v === null) return 'n/a';
  if (metric.includes('tokens per row')) return v.toFixed(0);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function renderTable(r: BenchReport): string {
  const header = ['metric', 'ours (fp32)', 'transformers.js (fp32)', 'ratio ours/theirs', 'ours (int8)', 'transformers.js (q8)'];
  const body = r.rows.map((row) => [
    row.metric,
    fmt(row.ours, row.metric),
    fmt(row.theirs, row.metric),
    row.ratio === null ? 'n/a' : `${row.ratio.toFixed(2)}x`,
    fmt(row.oursInt8, row.metric),
    fmt(row.theirsQ8, row.metric),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)];
  out.push('');
  for (const [k, v] of Object.entries(r.checks)) out.push(`${k}: ${v === null ? 'n/a' : v.toFixed(4)}`);
  for (const n of r.notes) out.push(n);
  return out.join('\n');
}
