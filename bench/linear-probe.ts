// One-off measurement of the linear probe on a labeled TRAIN/TEST pair (Fashion-MNIST from
// `npm run data -- --only fashion-mnist`): fit time at a fixed C on the full training set, and the same
// features exported as .npy for a scikit-learn cross-check (bench/linear-probe-sklearn.py).
//   node dist/bench/linear-probe.js TRAIN.csv TEST.csv --c C [--model M] [--out DIR] [--backend js|onnx]
// The features come from the same cache `clip eval linear-probe` fills, so run that first.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MODEL } from '../src/hub/bundled.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { readLabeledCsv } from '../src/tasks/datasets.js';
import { withClasses } from '../src/tasks/eval-zeroshot.js';
import { labeledFeatures } from '../src/tasks/features.js';
import { fitLinearProbe, headAccuracy, type Backend } from '../src/tasks/linear-probe.js';
import { npyHeader } from '../src/tasks/writers.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function writeNpy(path: string, data: Float32Array, rows: number, dim: number): void {
  writeFileSync(path, Buffer.concat([npyHeader(rows, dim), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

async function main(): Promise<void> {
  const [trainCsv, testCsv] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  if (!trainCsv || !testCsv) throw new Error('usage: linear-probe.js TRAIN.csv TEST.csv --c C [--model M] [--out DIR]');
  const C = Number(arg('--c') ?? '1');
  const modelArg = arg('--model') ?? DEFAULT_MODEL;
  const out = arg('--out');
  const model = await ClipModel.load(modelArg);
  // The key `clip eval linear-probe` uses with default flags, so its cached features are found.
  const modelKey = { model: modelArg, path: model.checkpoint.path, family: model.checkpoint.family, dtype: 'fp32', format: 'auto' };
  const train = readLabeledCsv(trainCsv);
  const test = withClasses(readLabeledCsv(testCsv), train.classes);
  const tr = await labeledFeatures(model, train, { modelKey });
  const te = await labeledFeatures(model, test, { modelKey });
  await model.release();
  process.stderr.write(`features: train ${tr.x.rows} × ${tr.x.dim} (reused ${tr.reused}), test ${te.x.rows} (reused ${te.reused})\n`);
  const acc = headAccuracy;
  for (let rep = 0; rep < 2; rep++) {
    const fit = await fitLinearProbe(tr.x, tr.labels, { classes: train.classes, C, blend: 'none', backend: (arg('--backend') ?? 'auto') as Backend });
    process.stdout.write(JSON.stringify({ C, seconds: +fit.seconds.toFixed(2), ...fit.optimizer, objective: fit.optimizer.f * tr.x.rows, test: acc(fit.plain, te.x, te.labels) }) + '\n');
  }
  if (out) {
    mkdirSync(out, { recursive: true });
    writeNpy(join(out, 'x_train.npy'), tr.x.data, tr.x.rows, tr.x.dim);
    writeNpy(join(out, 'y_train.npy'), Float32Array.from(tr.labels), tr.x.rows, 1);
    writeNpy(join(out, 'x_test.npy'), te.x.data, te.x.rows, te.x.dim);
    writeNpy(join(out, 'y_test.npy'), Float32Array.from(te.labels), te.x.rows, 1);
    process.stderr.write(`wrote ${out}/{x,y}_{train,test}.npy\n`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
