// The whole preparation: fetch pinned packages, join the emoji sources into one concept table,
// render every image once (white background), then write the manifests and summary. Each stage is
// a step (steps.ts), so a rerun only redoes what is missing or out of date.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { type ConceptTable, loadConcepts } from './emoji.js';
import { FASHION_CLASSES } from './fashion.js';
import { fashionProbeSplits } from './fashion-probe.js';
import { fetchSource } from './fetch.js';
import { iconSvg, joinFluent, loadFluent } from './fluent.js';
import { iconCaptions, mdiIcons, tablerIcons, type IconEntry } from './icons.js';
import { idxImage, readIdx } from './idx.js';
import { clipartCaptions, openclipartEntries, thumbnail, tuxDuplicates } from './openclipart.js';
import type { ClipartRow, DataSummary, EmojiStyle, FashionRow, IconRow, RetrievalRow, TrainStyle } from './manifests.js';
import { toJsonl, TRAIN_STYLES } from './manifests.js';
import { layout } from './paths.js';
import { grayToPng, rasterToPng, svgToPng } from './raster.js';
import { countBy, drawnBy, emojiRow, imageName, sharedConcepts } from './rows.js';
import { SOURCES, source } from './sources.js';
import { fingerprint, mapLimit, step, type StepReport, writeFileAtomic } from './steps.js';
import { listStamps, stampsDir } from './tuxpaint.js';
import { loadDatasource, loadEmojione, loadOpenmoji } from './vendors.js';

/** Bump to rebuild images / manifests after changing how they are made. */
const RENDER_VERSION = 1;
const MANIFEST_VERSION = 1;
export const EMOJI_SIZE = 64;
export const STAMP_SIZE = 224;

export interface BuildOptions {
  root: string;
  icons: boolean;
  /** Images rendered at once (sharp itself is held to one thread each). */
  concurrency: number;
  log: (msg: string) => void;
  /** A progress callback for a labelled batch of `total` items. */
  progress: (label: string, total: number) => (done: number) => void;
}

export interface BuildResult {
  summary: DataSummary;
  steps: StepReport[];
}

export interface RenderJob {
  out: string;
  render: (dst: string) => Promise<void>;
}

export async function buildData(o: BuildOptions): Promise<BuildResult> {
  const L = layout(o.root);
  const steps: StepReport[] = [];
  sharp.concurrency(1);
  // Every file is read once, so libvips' operation cache would only hold memory.
  sharp.cache(false);

  for (const s of SOURCES) {
    if (s.optional && !o.icons) continue;
    await fetchStep(o, s, steps);
  }
  const renderStep = makeRenderStep(o, steps);

  const table = loadConcepts(L.pkg('emojibase'), L.pkg('emojilib'));
  const google = loadDatasource(L.pkg('google'), 'google');
  const twitter = loadDatasource(L.pkg('twitter'), 'twitter');
  const emojione = loadEmojione(L.pkg('emojione'));
  const openmoji = loadOpenmoji(L.pkg('openmoji'));
  const fluent = loadFluent(L.pkg('fluent'));
  const fj = joinFluent(fluent.json, fluent.chars, table);
  o.log(`fluent join: ${fj.stats.matched}/${fj.stats.names} names matched (${fj.stats.byMethod.chars} chars.json, ${fj.stats.byMethod.label} label, ${fj.stats.byMethod.shortcode} shortcode, ${fj.stats.byMethod.tone} tone)`);

  const shared = sharedConcepts(table, [google, twitter, openmoji, fj.byKey]);
  // Every training style's images, in the train split's order (TRAIN_STYLES: Noto and Twemoji first, as before
  // EmojiOne joined, so a recipe that trains on those two sees the same rows).
  const trainImages: Record<TrainStyle, Map<string, string>> = { google, twitter, emojione: emojione.color, 'emojione-bw': emojione.bw };
  const drawnIn = (style: TrainStyle) => drawnBy(table, trainImages[style]);
  const rasterJobs = (style: TrainStyle) => drawnIn(style).map((c) => ({
    out: imageName(c.key), render: (dst: string) => rasterToPng(trainImages[style].get(c.key)!, dst, EMOJI_SIZE),
  }));
  const svgJobs = (m: Map<string, string>, concepts: typeof shared) => concepts.map((c) => ({
    out: imageName(c.key), render: async (dst: string) => svgToPng(await readFile(m.get(c.key)!, 'utf8'), dst, EMOJI_SIZE),
  }));
  const at: Record<EmojiStyle, (out: string) => string> = {
    google: await renderStep('google', [source('google').version], rasterJobs('google')),
    twitter: await renderStep('twitter', [source('twitter').version], rasterJobs('twitter')),
    openmoji: await renderStep('openmoji', [source('openmoji').version], svgJobs(openmoji, shared)),
    emojione: await renderStep('emojione', [source('emojione').version], rasterJobs('emojione')),
    'emojione-bw': await renderStep('emojione-bw', [source('emojione').version], svgJobs(emojione.bw, drawnIn('emojione-bw'))),
    fluent: await renderStep('fluent', [source('fluent').version, shared.map((c) => fj.byKey.get(c.key))], shared.map((c) => ({
      out: imageName(c.key), render: (dst: string) => svgToPng(iconSvg(fluent.json, fj.byKey.get(c.key)!, EMOJI_SIZE), dst, EMOJI_SIZE),
    }))),
  };
  const rowsFor = (style: EmojiStyle, concepts: typeof shared) => concepts.map((c) => emojiRow(c, style, at[style](imageName(c.key))));
  const train = TRAIN_STYLES.flatMap((s) => rowsFor(s, drawnIn(s)));
  const zeroshot = (['google', 'twitter', 'openmoji', 'fluent'] as const).flatMap((s) => rowsFor(s, shared));

  const tux = await tuxpaintRows(o, L.pkg('tuxpaint'), renderStep);
  const fashion = await fashionRows(table, L.pkg('fashion-mnist'), renderStep);
  await fashionProbeSplits(o.root, renderStep, steps);
  const icons = o.icons ? await iconRows(L, renderStep) : undefined;
  const clipart = o.icons ? await openclipartSplit(o, L.pkg('openclipart'), renderStep, tux.rows, steps) : undefined;

  const summary: DataSummary = {
    root: o.root,
    background: 'white',
    sources: SOURCES.filter((s) => !s.optional || o.icons).map((s) => ({ id: s.id, name: s.name, version: s.version, license: s.license })),
    concepts: { emojibase: table.concepts.length, emojilibMatched: table.emojilibMatched, emojilibEntries: table.emojilibTotal },
    styles: {
      google: drawnIn('google').length, twitter: drawnIn('twitter').length, openmoji: drawnBy(table, openmoji).length, fluent: fj.byKey.size,
      emojione: drawnIn('emojione').length, 'emojione-bw': drawnIn('emojione-bw').length,
    },
    fluentJoin: { ...fj.stats, matchRate: Math.round((fj.stats.matched / fj.stats.names) * 10000) / 10000 },
    splits: {
      train: { rows: train.length, concepts: new Set(train.map((r) => r.key)).size, perStyle: countBy(train, (r) => r.style) },
      zeroshot: {
        rows: zeroshot.length, concepts: shared.length, groups: new Set(shared.map((c) => c.group)).size,
        subgroups: new Set(shared.map((c) => c.subgroup)).size, labels: new Set(shared.map((c) => c.label)).size,
        perStyle: countBy(zeroshot, (r) => r.style),
      },
      tuxpaint: tux.stats,
      'fashion-mnist': {
        rows: fashion.length, classes: new Set(fashion.map((r) => r.fashionClass)).size, perClass: countBy(fashion, (r) => r.fashionName),
        leftOut: FASHION_CLASSES.filter((c) => !c.key).map((c) => c.name),
      },
      ...(icons ? { icons: { rows: icons.length, perStyle: countBy(icons, (r) => r.style) } } : {}),
      ...(clipart ? { clipart: clipart.stats } : {}),
    },
  };

  const files: Record<string, string> = {
    'train.jsonl': toJsonl(train), 'zeroshot.jsonl': toJsonl(zeroshot), 'tuxpaint.jsonl': toJsonl(tux.rows),
    'fashion-mnist.jsonl': toJsonl(fashion), ...(icons ? { 'icons.jsonl': toJsonl(icons) } : {}),
    ...(clipart ? { 'clipart.jsonl': toJsonl(clipart.rows) } : {}),
  };
  await step('manifests', L.manifests, { v: MANIFEST_VERSION, files: fingerprint(files), summary: fingerprint(summary) }, async (tmp) => {
    for (const [name, text] of Object.entries(files)) writeFileAtomic(join(tmp, name), text);
    // Written last: its presence means the manifests are complete (dataReady()).
    writeFileAtomic(join(tmp, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    return { files: Object.keys(files).length + 1 };
  }, steps);
  return { summary, steps };
}

export type RenderStep = (style: string, inputs: unknown, jobs: RenderJob[]) => Promise<(out: string) => string>;

function fetchStep(o: BuildOptions, s: (typeof SOURCES)[number], steps: StepReport[]): Promise<unknown> {
  return step(`fetch ${s.name}@${s.version}`, layout(o.root).pkg(s.id), { s }, async (tmp) => {
    o.log(`fetching ${s.name}@${s.version}`);
    await fetchSource(s, tmp, o.log);
    return { version: s.version };
  }, steps);
}

/** Images: one step per style, named by concept key / stamp id. */
function makeRenderStep(o: BuildOptions, steps: StepReport[]): RenderStep {
  return async (style, inputs, jobs) => {
    const dir = layout(o.root).images(style);
    await step(`images ${style}`, dir, { v: RENDER_VERSION, inputs, outs: jobs.map((j) => j.out) }, async (tmp) => {
      const tick = o.progress(`render ${style}`, jobs.length);
      await mapLimit(jobs, o.concurrency, (j) => j.render(join(tmp, j.out)).catch((e: Error) => {
        throw new Error(`${style}/${j.out}: ${e.message}`);
      }), tick);
      return { images: jobs.length };
    }, steps);
    return (out: string) => join(dir, out);
  };
}

/**
 * Only Fashion-MNIST's linear-probe splits (`npm run data -- --only fashion-mnist`): the package and the
 * two labeled CSVs, without the emoji benchmark.
 */
export async function buildFashionProbe(o: BuildOptions): Promise<{ files: string[]; steps: StepReport[] }> {
  const steps: StepReport[] = [];
  sharp.concurrency(1);
  sharp.cache(false);
  await fetchStep(o, source('fashion-mnist'), steps);
  const files = await fashionProbeSplits(o.root, makeRenderStep(o, steps), steps);
  return { files, steps };
}

async function tuxpaintRows(o: BuildOptions, pkg: string, renderStep: RenderStep): Promise<{ rows: RetrievalRow[]; stats: DataSummary['splits']['tuxpaint'] }> {
  const { stamps, noImage, noEnglish } = listStamps(stampsDir(pkg));
  const names = stamps.map((s) => imageName(s.id));
  if (new Set(names).size !== names.length) throw new Error('tuxpaint: two stamps map to the same image name');
  if (noImage.length) o.log(`tuxpaint: ${noImage.length} descriptions without an image (${noImage.slice(0, 3).join(', ')})`);
  const at = await renderStep('tuxpaint', [source('tuxpaint').version, STAMP_SIZE], stamps.map((s, i) => ({
    out: names[i]!,
    render: async (dst: string) => (s.source.endsWith('.svg') ? svgToPng(await readFile(s.source, 'utf8'), dst, STAMP_SIZE) : rasterToPng(s.source, dst, STAMP_SIZE)),
  })));
  const rows = stamps.map((s, i) => ({ image: at(names[i]!), caption: s.caption, id: s.id, category: s.category }));
  return {
    rows,
    stats: {
      pairs: rows.length, uniqueCaptions: new Set(rows.map((r) => r.caption.toLowerCase())).size,
      png: stamps.filter((s) => s.source.endsWith('.png')).length, svg: stamps.filter((s) => s.source.endsWith('.svg')).length,
      noImage: noImage.length, noEnglish: noEnglish.length,
    },
  };
}

async function fashionRows(table: ConceptTable, pkg: string, renderStep: RenderStep): Promise<FashionRow[]> {
  const dir = join(pkg, 'usr', 'share', 'datasets', 'fashion-mnist');
  const images = readIdx(join(dir, 't10k-images-idx3-ubyte.gz'));
  const labels = readIdx(join(dir, 't10k-labels-idx1-ubyte.gz'));
  if (images.dims[0] !== labels.dims[0]) throw new Error('fashion-mnist: image and label counts differ');
  const [, h, w] = images.dims as [number, number, number];
  const picked: { index: number; cls: (typeof FASHION_CLASSES)[number] }[] = [];
  labels.data.forEach((l, index) => {
    const cls = FASHION_CLASSES[l];
    if (!cls) throw new Error(`fashion-mnist: label ${l} out of range`);
    if (cls.key) picked.push({ index, cls });
  });
  const name = (i: number) => imageName(String(i).padStart(5, '0'));
  const at = await renderStep('fashion-mnist', [source('fashion-mnist').version], picked.map((p) => ({
    out: name(p.index), render: (dst: string) => grayToPng(idxImage(images, p.index), w, h, dst),
  })));
  return picked.map(({ index, cls }) => {
    const c = table.byKey.get(cls.key!);
    if (!c) throw new Error(`fashion-mnist: class ${cls.name} maps to ${cls.key}, which is not an emojibase concept`);
    return {
      image: at(name(index)), index, fashionClass: cls.index, fashionName: cls.name,
      key: c.key, emoji: c.emoji, label: c.label, group: c.group, subgroup: c.subgroup,
    };
  });
}

async function iconRows(L: ReturnType<typeof layout>, renderStep: RenderStep): Promise<IconRow[]> {
  const all = [...tablerIcons(L.pkg('tabler')), ...mdiIcons(L.pkg('mdi'))];
  const rows: IconRow[] = [];
  for (const style of ['tabler-outline', 'tabler-filled', 'mdi'] as const) {
    const list: IconEntry[] = all.filter((e) => e.style === style);
    const version = source(style === 'mdi' ? 'mdi' : 'tabler').version;
    const at = await renderStep(style, [version], list.map((e) => ({
      out: imageName(e.name), render: async (dst: string) => svgToPng(await readFile(e.source, 'utf8'), dst, EMOJI_SIZE),
    })));
    for (const e of list) rows.push({ image: at(imageName(e.name)), style, name: e.name, category: e.category, keywords: e.keywords, captions: iconCaptions(e) });
  }
  return rows;
}

/**
 * Thumbnail correlation at which a clip-art drawing counts as a Tux Paint stamp. Read off the closest pairs:
 * the same file at another size scores 0.99-1.0; the pairs from 0.6 to 0.85 that also share a word with the
 * stamp's caption were looked at and are other drawings of the concept (Christmas trees, pumpkins, laptops),
 * not copies. Cautious: some unrelated simple shapes (round buttons, flags) score above it and go too.
 */
export const TUX_DUPLICATE_THRESHOLD = 0.85;

async function openclipartSplit(
  o: BuildOptions, pkg: string, renderStep: RenderStep, tux: readonly RetrievalRow[], steps: StepReport[],
): Promise<{ rows: ClipartRow[]; stats: NonNullable<DataSummary['splits']['clipart']> }> {
  const { entries, untitled, tooLarge, repeated } = openclipartEntries(pkg);
  const names = entries.map((e) => imageName(e.id.replaceAll('/', '--')));
  if (new Set(names).size !== names.length) throw new Error('openclipart: two drawings map to the same image name');
  // A drawing librsvg cannot render is skipped (counted and named), not fatal: the set is optional extra data.
  const failed: string[] = [];
  const at = await renderStep('openclipart', [source('openclipart').version, EMOJI_SIZE, 1], entries.map((e, i) => ({
    out: names[i]!,
    render: (dst: string) => readFile(e.source, 'utf8').then((svg) => svgToPng(svg, dst, EMOJI_SIZE)).catch((err: Error) => {
      failed.push(`${e.id}: ${err.message}`);
    }),
  })));
  if (failed.length) o.log(`openclipart: ${failed.length} drawings not rendered, e.g. ${failed.slice(0, 3).join('; ')}`);
  const rendered = entries.map((_, i) => i).filter((i) => existsSync(at(names[i]!)));
  // A step of its own (the answer lives in its stamp): ~9k thumbnails would otherwise be redone on every run.
  const inputs = { threshold: TUX_DUPLICATE_THRESHOLD, clipart: [source('openclipart').version, EMOJI_SIZE, rendered.map((i) => names[i])], tux: [source('tuxpaint').version, STAMP_SIZE, tux.map((r) => r.id)] };
  const dupNames = await step('openclipart: Tux Paint look-alikes', layout(o.root).derived('openclipart-tux-duplicates'), inputs, async () => {
    const stamps = await mapLimit(tux.map((r) => r.image), o.concurrency, thumbnail);
    const thumbs = await mapLimit(rendered.map((i) => at(names[i]!)), o.concurrency, thumbnail);
    return tuxDuplicates(thumbs, stamps, TUX_DUPLICATE_THRESHOLD).map((k) => names[rendered[k]!]!);
  }, steps);
  const dup = new Set(dupNames);
  o.log(`openclipart: ${entries.length} titled drawings, ${entries.length - rendered.length} unrenderable, ${dup.size} close to a Tux Paint stamp (left out)`);
  const rows = rendered.filter((i) => !dup.has(names[i]!)).map((i) => {
    const e = entries[i]!;
    return { image: at(names[i]!), id: e.id, category: e.category, title: e.title, keywords: e.keywords, captions: clipartCaptions(e) };
  });
  return { rows, stats: { rows: rows.length, untitled, tooLarge, repeated, unrenderable: entries.length - rendered.length, tuxDuplicates: dup.size } };
}
