// Fashion-MNIST as a labeled image set for `clip eval linear-probe`: all 10 classes, both splits
// (60,000 train / 10,000 test), as 28x28 PNGs (original gray values, white on black) and two
// `path,label` CSVs that `eval linear-probe` / `eval zeroshot --csv` read:
//   <data>/probe/fashion-mnist/train.csv, test.csv   (paths relative to the CSV)
// Unlike the emoji benchmark's fashion-mnist split (8 classes mapped to emoji), labels are the dataset's
// own class names, so any model can be probed on them.
import { join, relative } from 'node:path';
import { FASHION_CLASSES } from './fashion.js';
import { idxImage, readIdx } from './idx.js';
import { layout } from './paths.js';
import { grayToPng } from './raster.js';
import { source } from './sources.js';
import { fingerprint, step, type StepReport, writeFileAtomic } from './steps.js';
import type { RenderStep } from './build.js';

const PROBE_VERSION = 1;

export const fashionProbeDir = (root: string): string => join(root, 'probe', 'fashion-mnist');

/** A CSV field, quoted when it holds a comma, quote or line break. */
const csvField = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

/** Render both splits and write their CSVs; returns the CSV paths. */
export async function fashionProbeSplits(root: string, renderStep: RenderStep, steps: StepReport[]): Promise<string[]> {
  const L = layout(root);
  const dir = join(L.pkg('fashion-mnist'), 'usr', 'share', 'datasets', 'fashion-mnist');
  const out = fashionProbeDir(root);
  const csv: Record<string, string> = {};
  for (const [split, prefix] of [['train', 'train'], ['test', 't10k']] as const) {
    const images = readIdx(join(dir, `${prefix}-images-idx3-ubyte.gz`));
    const labels = readIdx(join(dir, `${prefix}-labels-idx1-ubyte.gz`));
    if (images.dims.length !== 3 || labels.dims.length !== 1 || images.dims[0] !== labels.dims[0]) {
      throw new Error(`fashion-mnist ${split}: images [${images.dims.join(', ')}] and labels [${labels.dims.join(', ')}] do not match`);
    }
    const [n, h, w] = images.dims as [number, number, number];
    const name = (i: number) => `${String(i).padStart(5, '0')}.png`;
    const at = await renderStep(`fashion-mnist-${split}`, [source('fashion-mnist').version], Array.from({ length: n }, (_, i) => ({
      out: name(i), render: (dst: string) => grayToPng(idxImage(images, i), w, h, dst),
    })));
    const rows = ['path,label'];
    for (let i = 0; i < n; i++) {
      const cls = FASHION_CLASSES[labels.data[i]!];
      if (!cls) throw new Error(`fashion-mnist ${split}: label ${labels.data[i]} of image ${i} is out of range`);
      rows.push(`${csvField(relative(out, at(name(i))))},${csvField(cls.name)}`);
    }
    csv[`${split}.csv`] = rows.join('\n') + '\n';
  }
  await step('fashion-mnist probe splits', out, { v: PROBE_VERSION, csv: fingerprint(csv) }, async (tmp) => {
    for (const [file, text] of Object.entries(csv)) writeFileAtomic(join(tmp, file), text);
    return { files: Object.keys(csv).length };
  }, steps);
  return Object.keys(csv).map((f) => join(out, f));
}
