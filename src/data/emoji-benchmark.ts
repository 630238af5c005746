// The emoji benchmark report (data from `npm run data`, see src/data/manifests.ts):
//   - zero-shot on the `zeroshot` split in styles never trained on (OpenMoji, Fluent), with the trained
//     styles (Noto, Twemoji) as a reference, at three granularities: 9-way group, ~95-way subgroup and
//     one class per concept (label). Group and subgroup classes are described two ways: by their names,
//     and by their members (the renormalized mean of the member labels' class embeddings: a prompt
//     ensemble over labels, still text only);
//   - Tux Paint stamps: image→text and text→image recall;
//   - Fashion-MNIST: zero-shot over the classes mapped to emoji, with the emoji label or the dataset's name.
// Each image set is embedded once; every granularity and class-text method is scored from those
// embeddings (evalZeroShot would re-embed the images per class list).
import type { EmojiRow, FashionRow, RetrievalRow } from './manifests.js';
import { emojiClasses, readManifest } from './manifests.js';
import { dataRoot } from './paths.js';
import { meanDirection } from '../runtime/vectors.js';
import type { EvalModel } from '../tasks/eval-zeroshot.js';
import { bestRank, clampK, orNull, rankOf, recallFromRanks, recallsAt } from '../tasks/metrics.js';
import { forEachDotRow } from '../tasks/score-matrix.js';
import { classEmbeddings } from '../tasks/zeroshot.js';

export const EMOJI_TEMPLATES: readonly string[] = ['{}', 'an emoji of {}'];
export const DEFAULT_STYLES: readonly string[] = ['openmoji', 'fluent'];
export const SEEN_STYLES: readonly string[] = ['google', 'twitter'];
export type BenchmarkPart = 'zeroshot' | 'tuxpaint' | 'fashion-mnist';
export const BENCHMARK_PARTS: readonly BenchmarkPart[] = ['zeroshot', 'tuxpaint', 'fashion-mnist'];

export type BenchmarkStage =
  | 'zeroshot images' | 'zeroshot texts' | 'tuxpaint images' | 'tuxpaint texts' | 'fashion images' | 'fashion texts';

export interface EmojiBenchmarkOptions {
  /** Data root (default: dataRoot(), i.e. $CLIP_CACHE/data or ~/.cache/clip-ts/data). */
  root?: string;
  /** Styles evaluated zero-shot (default openmoji, fluent). */
  styles?: string[];
  /** Styles the model was trained on, reported as a reference (default google, twitter; [] for none). */
  seenStyles?: string[];
  /** Parts to run (default all three). */
  parts?: BenchmarkPart[];
  /** Templates with `{}` for every class text (default `{}` and `an emoji of {}`). */
  templates?: string[];
  /** Fashion-MNIST: keep only the first n images of each class (default: all, 1,000 per class). */
  fashionPerClass?: number;
  /** Recorded in the report (default: the model's checkpoint path). */
  modelName?: string;
  batchSize?: number;
  onProgress?: (stage: BenchmarkStage, done: number, total: number) => void;
}

/** Accuracy over a set of images; null when none could be evaluated. */
export interface TopKScore {
  images: number;
  top1: number | null;
  /** Top-k with k = min(5, classes) (see `k`). */
  top5: number | null;
}

export type Granularity = 'group' | 'subgroup' | 'label';
/** names: the class's own name in the templates; members: mean of its member labels' class embeddings. */
export type ClassTextMethod = 'names' | 'members';

export interface ZeroShotResult {
  granularity: Granularity;
  method: ClassTextMethod;
  classes: number;
  /** k of `top5` (5 clamped to the class count). */
  k: number;
  /** Expected accuracy of a random ranking: 1/classes and k/classes. */
  chance: { top1: number; top5: number };
  /** Every embedded style (evaluated and seen) on its own. */
  byStyle: Record<string, TopKScore>;
  /** The evaluated styles pooled. */
  pooled: TopKScore;
  /** The seen styles pooled; null when none were asked for. */
  seen: TopKScore | null;
}

export interface TuxPaintReport {
  /**
   * Identical captions (e.g. "A frog." for two stamps) are one text here, whose positives are all its
   * images: with one text per pair, a perfect model would still lose R@1 on every duplicate.
   */
  counts: { images: number; captions: number; uniqueCaptions: number; failedImages: number; imageQueries: number; textQueries: number };
  ks: number[];
  imageToText: Record<string, number | null>;
  textToImage: Record<string, number | null>;
  /** Mean of all six recalls. */
  mean: number | null;
  /** Recall of a random ranking (exact expectation for the positives each query has). */
  chance: { imageToText: Record<string, number>; textToImage: Record<string, number> };
  failed: { input: string; error: string }[];
}

export interface FashionReport {
  counts: { images: number; evaluated: number; failed: number; perClass: Record<string, number> };
  classes: { fashionClass: number; fashionName: string; label: string }[];
  k: number;
  chance: { top1: number; top5: number };
  /** Class texts: the mapped emoji's label ("woman's boot"), or the dataset's class name ("Ankle boot"). */
  label: TopKScore;
  fashionName: TopKScore;
  failed: { input: string; error: string }[];
}

export interface EmojiBenchmarkReport {
  model: string;
  root: string;
  styles: string[];
  seenStyles: string[];
  templates: string[];
  parts: BenchmarkPart[];
  seconds: number;
  zeroshot: {
    counts: {
      images: number; evaluated: number; failed: number; perStyle: Record<string, number>; concepts: number;
      classes: Record<Granularity, number>;
    };
    results: ZeroShotResult[];
    failed: { input: string; error: string }[];
  } | null;
  tuxpaint: TuxPaintReport | null;
  fashion: FashionReport | null;
}

function score(ranks: readonly number[], k: number): TopKScore {
  const r = [...ranks];
  return { images: r.length, top1: orNull(recallFromRanks(r, 1)), top5: orNull(recallFromRanks(r, k)) };
}

/** 0-based rank of each image's true class among the classes (cosine; the logit scale does not change ranks). */
async function trueClassRanks(images: readonly Float32Array[], classes: readonly Float32Array[], targets: readonly number[]): Promise<number[]> {
  const ranks = new Array<number>(images.length);
  await forEachDotRow(images, classes, (row, i) => { ranks[i] = rankOf(row, targets[i]!); });
  return ranks;
}

/** Embed images, keeping the failures apart: `ok[i]` indexes the input of `embs[i]`. */
async function embedImages(model: EvalModel, inputs: string[], stage: BenchmarkStage, opts: EmojiBenchmarkOptions) {
  const res = await model.encodeImages(inputs, { normalize: true, batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.(stage, d, t) });
  const embs: Float32Array[] = [];
  const ok: number[] = [];
  const failed: { input: string; error: string }[] = [];
  res.forEach((r, i) => {
    if (r.embedding) { embs.push(r.embedding); ok.push(i); } else failed.push({ input: r.input, error: r.error ?? 'no embedding' });
  });
  return { embs, ok, failed };
}

async function zeroShotPart(model: EvalModel, opts: EmojiBenchmarkOptions, root: string, styles: string[], seenStyles: string[], templates: string[]): Promise<NonNullable<EmojiBenchmarkReport['zeroshot']>> {
  const all = readManifest('zeroshot', root);
  const present = [...new Set(all.map((r) => r.style))];
  const wanted = [...new Set([...styles, ...seenStyles])];
  const missing = wanted.filter((s) => !present.includes(s as EmojiRow['style']));
  if (missing.length) throw new Error(`style(s) ${missing.join(', ')} not in the zeroshot split (it has ${present.join(', ')})`);
  // Class lists come from the whole split so that every style is scored over the same classes.
  const cls = { group: emojiClasses(all, 'group').classes, subgroup: emojiClasses(all, 'subgroup').classes, label: emojiClasses(all, 'label').classes };
  const index = Object.fromEntries((Object.keys(cls) as Granularity[]).map((g) => [g, new Map(cls[g].map((c, i) => [c, i]))])) as Record<Granularity, Map<string, number>>;
  const groupName = new Map(all.map((r) => [r.group, r.groupName]));
  const subgroupName = new Map(all.map((r) => [r.subgroup, r.subgroupName]));

  // Every class text in one pass through the text tower: labels, then group names, then subgroup names.
  const texts = [...cls.label, ...cls.group.map((g) => groupName.get(g)!), ...cls.subgroup.map((s) => subgroupName.get(s)!)];
  const embs = await classEmbeddings(model, texts, templates, { batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('zeroshot texts', d, t) });
  const labelEmb = embs.slice(0, cls.label.length);
  const names: Record<Granularity, Float32Array[]> = {
    label: labelEmb,
    group: embs.slice(cls.label.length, cls.label.length + cls.group.length),
    subgroup: embs.slice(cls.label.length + cls.group.length),
  };
  // members: each group/subgroup is the mean direction of the distinct labels of its concepts.
  const members = (g: 'group' | 'subgroup'): Float32Array[] => {
    const labelsOf = cls[g].map(() => new Set<number>());
    for (const r of all) labelsOf[index[g].get(r[g])!]!.add(index.label.get(r.label)!);
    return labelsOf.map((s) => meanDirection([...s].map((l) => labelEmb[l]!)));
  };

  const rows = all.filter((r) => wanted.includes(r.style));
  const img = await embedImages(model, rows.map((r) => r.image), 'zeroshot images', opts);
  const okRows = img.ok.map((i) => rows[i]!);
  const subsets = (ranks: number[], k: number) => {
    const of = (ss: readonly string[]) => score(ranks.filter((_, i) => ss.includes(okRows[i]!.style)), k);
    return {
      byStyle: Object.fromEntries(wanted.map((s) => [s, of([s])])),
      pooled: of(styles),
      seen: seenStyles.length ? of(seenStyles) : null,
    };
  };

  const results: ZeroShotResult[] = [];
  const runs: [Granularity, ClassTextMethod, Float32Array[]][] = [
    ['group', 'names', names.group], ['group', 'members', members('group')],
    ['subgroup', 'names', names.subgroup], ['subgroup', 'members', members('subgroup')],
    ['label', 'names', names.label],
  ];
  for (const [granularity, method, classEmb] of runs) {
    const n = cls[granularity].length;
    const k = clampK(5, n);
    const ranks = await trueClassRanks(img.embs, classEmb, okRows.map((r) => index[granularity].get(r[granularity])!));
    results.push({ granularity, method, classes: n, k, chance: { top1: 1 / n, top5: k / n }, ...subsets(ranks, k) });
  }
  const perStyle = Object.fromEntries(wanted.map((s) => [s, rows.filter((r) => r.style === s).length]));
  return {
    counts: {
      images: rows.length, evaluated: img.embs.length, failed: img.failed.length, perStyle,
      concepts: new Set(all.map((r) => r.key)).size,
      classes: { group: cls.group.length, subgroup: cls.subgroup.length, label: cls.label.length },
    },
    results,
    failed: img.failed,
  };
}

/** Chance that at least one of p positives among n items is in a random top k: 1 - C(n-p, k) / C(n, k). */
export function chanceRecall(n: number, p: number, k: number): number {
  const kk = Math.min(k, n);
  let miss = 1;
  for (let i = 0; i < kk; i++) miss *= Math.max(0, n - p - i) / (n - i);
  return 1 - miss;
}

async function tuxPaintPart(model: EvalModel, opts: EmojiBenchmarkOptions, root: string): Promise<TuxPaintReport> {
  const rows: RetrievalRow[] = readManifest('tuxpaint', root);
  if (!rows.length) throw new Error('the tuxpaint split is empty');
  const ks = [1, 5, 10];
  const img = await embedImages(model, rows.map((r) => r.image), 'tuxpaint images', opts);
  // Unique captions of the images that could be read; a caption's positives are all its images.
  const captionIndex = new Map<string, number>();
  const positives: number[][] = [];
  const imageCaption = img.ok.map((i) => {
    const c = rows[i]!.caption;
    if (!captionIndex.has(c)) { captionIndex.set(c, captionIndex.size); positives.push([]); }
    return captionIndex.get(c)!;
  });
  imageCaption.forEach((c, j) => positives[c]!.push(j));
  const captions = [...captionIndex.keys()];
  const textEmb = captions.length ? await model.encodeTexts(captions, {
    normalize: true, batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('tuxpaint texts', d, t),
  }) : [];

  const i2t: number[] = [];
  await forEachDotRow(img.embs, textEmb, (row, j) => { i2t.push(bestRank(row, [imageCaption[j]!])); });
  const t2i: number[] = [];
  await forEachDotRow(textEmb, img.embs, (row, c) => { t2i.push(bestRank(row, positives[c]!)); });
  const imageToText = recallsAt(i2t, ks);
  const textToImage = recallsAt(t2i, ks);
  const all = [...Object.values(imageToText), ...Object.values(textToImage)];
  const nI = img.embs.length;
  const nT = captions.length;
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    counts: {
      images: rows.length, captions: rows.length, uniqueCaptions: new Set(rows.map((r) => r.caption)).size,
      failedImages: img.failed.length, imageQueries: i2t.length, textQueries: t2i.length,
    },
    ks,
    imageToText,
    textToImage,
    mean: all.every((x) => x !== null) ? avg(all as number[]) : null,
    chance: {
      imageToText: Object.fromEntries(ks.map((k) => [`R@${k}`, nT ? chanceRecall(nT, 1, k) : 0])),
      textToImage: Object.fromEntries(ks.map((k) => [`R@${k}`, avg(positives.map((p) => chanceRecall(nI, p.length, k)))])),
    },
    failed: img.failed,
  };
}

async function fashionPart(model: EvalModel, opts: EmojiBenchmarkOptions, root: string, templates: string[]): Promise<FashionReport> {
  let rows: FashionRow[] = readManifest('fashion-mnist', root);
  if (opts.fashionPerClass !== undefined) {
    const seen = new Map<number, number>();
    rows = [...rows].sort((a, b) => a.index - b.index).filter((r) => {
      const n = seen.get(r.fashionClass) ?? 0;
      seen.set(r.fashionClass, n + 1);
      return n < opts.fashionPerClass!;
    });
  }
  if (!rows.length) throw new Error('the fashion-mnist split is empty');
  const byClass = new Map<number, FashionRow>();
  for (const r of rows) if (!byClass.has(r.fashionClass)) byClass.set(r.fashionClass, r);
  const classes = [...byClass.values()].sort((a, b) => a.fashionClass - b.fashionClass)
    .map((r) => ({ fashionClass: r.fashionClass, fashionName: r.fashionName, label: r.label }));
  const index = new Map(classes.map((c, i) => [c.fashionClass, i]));
  const n = classes.length;
  const k = clampK(5, n);

  const embs = await classEmbeddings(model, [...classes.map((c) => c.label), ...classes.map((c) => c.fashionName)], templates, {
    batchSize: opts.batchSize, onProgress: (d, t) => opts.onProgress?.('fashion texts', d, t),
  });
  const img = await embedImages(model, rows.map((r) => r.image), 'fashion images', opts);
  const targets = img.ok.map((i) => index.get(rows[i]!.fashionClass)!);
  const label = score(await trueClassRanks(img.embs, embs.slice(0, n), targets), k);
  const fashionName = score(await trueClassRanks(img.embs, embs.slice(n), targets), k);
  const perClass: Record<string, number> = {};
  for (const r of rows) perClass[r.fashionName] = (perClass[r.fashionName] ?? 0) + 1;
  return {
    counts: { images: rows.length, evaluated: img.embs.length, failed: img.failed.length, perClass },
    classes, k, chance: { top1: 1 / n, top5: k / n }, label, fashionName, failed: img.failed,
  };
}

/** Any ClipModel; `checkpoint.path` names the model in the report. */
export type BenchmarkModel = EvalModel & { readonly checkpoint?: { readonly path: string } };

export async function runEmojiBenchmark(model: BenchmarkModel, opts: EmojiBenchmarkOptions = {}): Promise<EmojiBenchmarkReport> {
  const t0 = performance.now();
  const root = opts.root ?? dataRoot();
  const styles = opts.styles ?? [...DEFAULT_STYLES];
  const seenStyles = opts.seenStyles ?? [...SEEN_STYLES];
  const templates = opts.templates ?? [...EMOJI_TEMPLATES];
  const parts = opts.parts ?? [...BENCHMARK_PARTS];
  if (!styles.length) throw new Error('no styles to evaluate');
  if (!templates.length) throw new Error('no prompt templates given');
  const bad = parts.filter((p) => !BENCHMARK_PARTS.includes(p));
  if (bad.length) throw new Error(`unknown benchmark part(s) ${bad.join(', ')} (known: ${BENCHMARK_PARTS.join(', ')})`);
  if (opts.fashionPerClass !== undefined && !(Number.isInteger(opts.fashionPerClass) && opts.fashionPerClass > 0)) {
    throw new Error(`fashionPerClass must be a positive integer, got ${opts.fashionPerClass}`);
  }
  const zeroshot = parts.includes('zeroshot') ? await zeroShotPart(model, opts, root, styles, seenStyles, templates) : null;
  const tuxpaint = parts.includes('tuxpaint') ? await tuxPaintPart(model, opts, root) : null;
  const fashion = parts.includes('fashion-mnist') ? await fashionPart(model, opts, root, templates) : null;
  return {
    model: opts.modelName ?? model.checkpoint?.path ?? 'unknown',
    root, styles, seenStyles, templates, parts,
    seconds: (performance.now() - t0) / 1000,
    zeroshot, tuxpaint, fashion,
  };
}

// ---- Markdown -------------------------------------------------------------------------------------------

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? 'n/a' : `${(x * 100).toFixed(2)}%`);

export function markdownTable(headers: string[], rows: string[][]): string {
  // Padded so the source reads as a table too (no wide characters in these cells).
  const widths = headers.map((h, c) => Math.max(3, h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(headers), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/** The report as markdown tables (for the README and for people): zero-shot by style, then retrieval and Fashion-MNIST. */
export function emojiBenchmarkTable(r: EmojiBenchmarkReport): string {
  const out: string[] = [];
  const kind = (g: Granularity, m: ClassTextMethod) => (g === 'label' ? 'label' : `${g} (${m})`);
  if (r.zeroshot) {
    const z = r.zeroshot;
    const pooledHead = r.styles.length === 2 ? 'both' : 'pooled';
    const seenHead = `seen (${r.seenStyles.join(', ')})`;
    const headers = ['zero-shot', 'classes', ...r.styles, ...(r.styles.length > 1 ? [pooledHead] : []), ...(r.seenStyles.length ? [seenHead] : []), 'chance'];
    const rows = z.results.flatMap((res) => (['top1', 'top5'] as const).map((m) => [
      `${kind(res.granularity, res.method)} top-${m === 'top1' ? 1 : res.k}`,
      String(res.classes),
      ...r.styles.map((s) => pct(res.byStyle[s]?.[m])),
      ...(r.styles.length > 1 ? [pct(res.pooled[m])] : []),
      ...(res.seen ? [pct(res.seen[m])] : []),
      pct(res.chance[m]),
    ]));
    const perStyle = Object.entries(z.counts.perStyle).map(([s, n]) => `${s} ${n}`).join(', ');
    out.push(`Zero-shot on the emoji \`zeroshot\` split: ${z.counts.concepts} concepts, images per style: ${perStyle}` +
      `${z.counts.failed ? ` (${z.counts.failed} unreadable, left out)` : ''}; templates ${r.templates.map((t) => `"${t}"`).join(', ')}.`, '', markdownTable(headers, rows));
  }
  const other: string[][] = [];
  if (r.tuxpaint) {
    const t = r.tuxpaint;
    for (const [dir, name] of [['imageToText', 'image→text'], ['textToImage', 'text→image']] as const) {
      for (const k of t.ks) other.push([`Tux Paint ${name} R@${k}`, pct(t[dir][`R@${k}`]), pct(t.chance[dir][`R@${k}`])]);
    }
    other.push(['Tux Paint mean recall', pct(t.mean), '']);
  }
  if (r.fashion) {
    const f = r.fashion;
    for (const [what, name] of [['label', 'emoji label'], ['fashionName', 'Fashion-MNIST name']] as const) {
      other.push([`Fashion-MNIST top-1 (${name})`, pct(f[what].top1), pct(f.chance.top1)]);
      other.push([`Fashion-MNIST top-${f.k} (${name})`, pct(f[what].top5), pct(f.chance.top5)]);
    }
  }
  if (other.length) {
    if (out.length) out.push('');
    const notes: string[] = [];
    if (r.tuxpaint) notes.push(`Tux Paint: ${r.tuxpaint.counts.images - r.tuxpaint.counts.failedImages} stamps, ${r.tuxpaint.counts.uniqueCaptions} distinct captions (identical captions count as one text)`);
    if (r.fashion) notes.push(`Fashion-MNIST: ${r.fashion.counts.evaluated} test images of ${r.fashion.classes.length} classes`);
    out.push(`${notes.join('; ')}.`, '', markdownTable(['metric', 'value', 'chance'], other));
  }
  out.push('', `Model \`${r.model}\`, ${r.seconds.toFixed(1)} s.`);
  return out.join('\n');
}
