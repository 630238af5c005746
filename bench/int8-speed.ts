// One-off: image tower model-only speed of fp32 vs int8 on the bench's ViT-B/32, measured interleaved in one
// process (round-robin, best and median per variant), so load from other processes hits every variant alike.
//   node dist/bench/int8-speed.js [rounds]     (VARIANTS=fp32,int8,fp16 to choose; CLIP_BENCH_THREADS)
import { availableParallelism, loadavg, cpus } from 'node:os';
import { ClipModel } from '../src/index.js';
import { ensureCheckpoint } from './prepare.js';
import { IMAGE_BATCH, progress } from './timing.js';

const rounds = Number(process.argv[2] ?? 6);
const paths = ensureCheckpoint(progress);
const threads = Number(process.env.CLIP_BENCH_THREADS ?? availableParallelism());
const variants: Array<[string, ClipModel]> = [];
const names = (process.env.VARIANTS ?? 'fp32,int8').split(',');
for (const name of names) {
  const m = await ClipModel.load(paths.modelDir, { threads, format: 'weights', dtype: name as 'fp32' | 'int8' | 'fp16' });
  variants.push([name, m]);
}
const per = 3 * 224 * 224;
const buf = Float32Array.from({ length: IMAGE_BATCH * per }, (_, i) => Math.sin(i * 0.001) * 1.5);
const times = new Map<string, number[]>(names.map((n) => [n, []]));
for (const [, m] of variants) await m.encodePixels(buf, IMAGE_BATCH); // warm-up, session creation
const load0 = loadavg()[0]!;
for (let r = 0; r < rounds; r++) {
  for (const [name, m] of variants) {
    const t0 = performance.now();
    await m.encodePixels(buf, IMAGE_BATCH);
    times.get(name)!.push(IMAGE_BATCH / ((performance.now() - t0) / 1000));
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = times.get(names[0]!)!;
console.log(`${cpus()[0]?.model}, ${threads} threads, batch ${IMAGE_BATCH}, ${rounds} rounds; load average ${load0.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`);
for (const n of names) {
  const t = times.get(n)!;
  console.log(`${n.padEnd(9)} best ${Math.max(...t).toFixed(1)} img/s  median ${med(t).toFixed(1)} img/s  ratio to ${names[0]}: best ${(Math.max(...t) / Math.max(...base)).toFixed(2)}x median ${(med(t) / med(base)).toFixed(2)}x`);
}
for (const [, m] of variants) await m.release();
