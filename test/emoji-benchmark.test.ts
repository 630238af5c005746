// The emoji benchmark report on a tiny fake data root, and the training-curve chart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { ClipModel } from '../src/runtime/clip-model.js';
import { emojiClasses, ofStyles, toJsonl, type EmojiRow, type FashionRow, type RetrievalRow } from '../src/data/manifests.js';
import { layout } from '../src/data/paths.js';
import { chanceRecall, emojiBenchmarkTable, runEmojiBenchmark, type EmojiBenchmarkReport, type TopKScore } from '../src/data/emoji-benchmark.js';
import { evalZeroShot } from '../src/tasks/eval-zeroshot.js';
import { classEmbeddings } from '../src/tasks/zeroshot.js';
import { l2normalize } from '../src/runtime/vectors.js';
import { niceTicks, readTrainingLog, renderTrainingCurve, smooth, tickLabel, trainingCurveSvg } from '../src/train/training-curve.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';

const TEMPLATES = ['{}', 'an emoji of {}'];
const STYLES = ['google', 'twitter', 'openmoji', 'fluent'] as const;
// Six concepts; every subgroup has exactly one concept (so subgroup `members` classes are the label
// classes), groups have two or one.
const CONCEPTS = [
  { key: '1f600', emoji: '😀', label: 'grinning face', group: 'smileys-emotion', groupName: 'smileys & emotion', subgroup: 'face-smiling', subgroupName: 'smiling' },
  { key: '2764', emoji: '❤', label: 'red heart', group: 'smileys-emotion', groupName: 'smileys & emotion', subgroup: 'heart', subgroupName: 'hearts' },
  { key: '1f436', emoji: '🐶', label: 'dog face', group: 'animals-nature', groupName: 'animals & nature', subgroup: 'animal-mammal', subgroupName: 'mammals' },
  { key: '1f339', emoji: '🌹', label: 'rose', group: 'animals-nature', groupName: 'animals & nature', subgroup: 'plant-flower', subgroupName: 'flowers' },
  { key: '1f34e', emoji: '🍎', label: 'red apple', group: 'food-drink', groupName: 'food & drink', subgroup: 'food-fruit', subgroupName: 'fruit' },
  { key: '1f680', emoji: '🚀', label: 'rocket', group: 'travel-places', groupName: 'travel & places', subgroup: 'transport-air', subgroupName: 'air transportation' },
];
const COLORS = ['#f4c20d', '#db4437', '#8d6e63', '#e91e63', '#4caf50', '#3f51b5'];

async function png(path: string, color: string, shape: number, size: number): Promise<void> {
  const s = size;
  const body = [
    `<circle cx="${s / 2}" cy="${s / 2}" r="${s * 0.35}" fill="${color}"/>`,
    `<rect x="${s * 0.15}" y="${s * 0.15}" width="${s * 0.7}" height="${s * 0.7}" fill="${color}"/>`,
    `<polygon points="${s / 2},${s * 0.1} ${s * 0.9},${s * 0.9} ${s * 0.1},${s * 0.9}" fill="${color}"/>`,
    `<ellipse cx="${s / 2}" cy="${s / 2}" rx="${s * 0.45}" ry="${s * 0.2}" fill="${color}"/>`,
  ][shape % 4];
  await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${s}" height="${s}"><rect width="${s}" height="${s}" fill="#ffffff"/>${body}</svg>`)).png().toFile(path);
}

/** A data root with the manifests of src/data/manifests.ts; fluent's rocket is an unreadable file. */
async function fakeDataRoot(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'clip-emoji-bench-'));
  const L = layout(root);
  mkdirSync(L.manifests, { recursive: true });
  const zeroshot: EmojiRow[] = [];
  for (const [si, style] of STYLES.entries()) {
    mkdirSync(L.images(style), { recursive: true });
    for (const [ci, c] of CONCEPTS.entries()) {
      const image = join(L.images(style), `${c.key}.png`);
      if (style === 'fluent' && c.key === '1f680') writeFileSync(image, 'not a png');
      else await png(image, COLORS[ci]!, ci + si, 64);
      zeroshot.push({ image, style, ...c, order: ci + 1, captions: [c.label, `an emoji of ${c.label}`] });
    }
  }
  // Shuffled so that class order must come from `order`, not from row order.
  zeroshot.reverse();
  writeFileSync(L.manifest('zeroshot'), toJsonl(zeroshot));
  writeFileSync(L.manifest('train'), toJsonl(zeroshot.filter((r) => r.style === 'google' || r.style === 'twitter')));

  mkdirSync(L.images('tuxpaint'), { recursive: true });
  const tux: RetrievalRow[] = [];
  const stamps = [['frog', 'A frog.', '#2e7d32'], ['frog-1', 'A frog.', '#1b5e20'], ['car', 'A red car.', '#c62828'], ['tree', 'A tall tree.', '#33691e']] as const;
  for (const [i, [id, caption, color]] of stamps.entries()) {
    const image = join(L.images('tuxpaint'), `${id}.png`);
    await png(image, color, i, 224);
    tux.push({ image, caption, id: `animals/${id}`, category: 'animals' });
  }
  writeFileSync(L.manifest('tuxpaint'), toJsonl(tux));

  mkdirSync(L.images('fashion-mnist'), { recursive: true });
  const fashion: FashionRow[] = [];
  const fclasses = [[9, 'Ankle boot', '1f462', "woman's boot"], [1, 'Trouser', '1f456', 'jeans'], [8, 'Bag', '1f45c', 'handbag']] as const;
  let index = 0;
  for (let rep = 0; rep < 2; rep++) {
    for (const [fi, [fashionClass, fashionName, key, label]] of fclasses.entries()) {
      const image = join(L.images('fashion-mnist'), `${String(index).padStart(5, '0')}.png`);
      await png(image, ['#eeeeee', '#999999', '#555555'][fi]!, fi + rep, 28);
      fashion.push({ image, index, fashionClass, fashionName, key, emoji: '?', label, group: 'objects', subgroup: 'clothing' });
      index++;
    }
  }
  writeFileSync(L.manifest('fashion-mnist'), toJsonl(fashion));
  writeFileSync(L.summary, JSON.stringify({ root }));
  return root;
}

const tmp: string[] = [];
after(() => { for (const d of tmp) rmSync(d, { recursive: true, force: true }); });

let shared: Promise<{ root: string; model: ClipModel; report: EmojiBenchmarkReport }> | undefined;
function setup() {
  shared ??= (async () => {
    const root = await fakeDataRoot();
    tmp.push(root);
    const model = await ClipModel.load(fixture('hf-clip-tiny'));
    const stages = new Set<string>();
    const report = await runEmojiBenchmark(model, { root, onProgress: (s) => stages.add(s) });
    assert.deepEqual([...stages].sort(), ['fashion images', 'fashion texts', 'tuxpaint images', 'tuxpaint texts', 'zeroshot images', 'zeroshot texts']);
    return { root, model, report };
  })();
  return shared;
}
after(async () => { if (shared) await (await shared).model.release(); });

const inUnit = (x: number | null) => x !== null && x >= 0 && x <= 1;
function checkScore(s: TopKScore, what: string): void {
  assert.ok(inUnit(s.top1) && inUnit(s.top5), `${what}: ${JSON.stringify(s)}`);
  assert.ok(s.top5! >= s.top1!, `${what}: top-5 ${s.top5} < top-1 ${s.top1}`);
}

test('zero-shot counts, classes and score ranges', { skip: SKIP_FIXTURES }, async () => {
  const { report } = await setup();
  const z = report.zeroshot!;
  assert.deepEqual(report.styles, ['openmoji', 'fluent']);
  assert.deepEqual(report.seenStyles, ['google', 'twitter']);
  assert.deepEqual(report.templates, TEMPLATES);
  assert.equal(report.model, fixture('hf-clip-tiny'));
  assert.deepEqual(z.counts, {
    images: 24, evaluated: 23, failed: 1, perStyle: { openmoji: 6, fluent: 6, google: 6, twitter: 6 }, concepts: 6,
    classes: { group: 4, subgroup: 6, label: 6 },
  });
  assert.match(z.failed[0]!.input, /fluent[/\\]1f680\.png$/);
  assert.deepEqual(z.results.map((r) => `${r.granularity}/${r.method}`), ['group/names', 'group/members', 'subgroup/names', 'subgroup/members', 'label/names']);
  for (const r of z.results) {
    const what = `${r.granularity}/${r.method}`;
    assert.equal(r.k, Math.min(5, r.classes));
    assert.equal(r.chance.top1, 1 / r.classes);
    assert.equal(r.chance.top5, r.k / r.classes);
    assert.equal(r.pooled.images, 11, what);
    assert.equal(r.seen!.images, 12, what);
    assert.equal(r.byStyle.fluent!.images, 5, what);
    assert.equal(r.byStyle.openmoji!.images, 6, what);
    for (const [name, s] of [['pooled', r.pooled], ['seen', r.seen!], ...Object.entries(r.byStyle)] as const) checkScore(s, `${what} ${name}`);
    // Pooled = image-weighted mean of its styles.
    const w = (r.byStyle.openmoji!.top1! * 6 + r.byStyle.fluent!.top1! * 5) / 11;
    assert.ok(Math.abs(r.pooled.top1! - w) < 1e-12, `${what}: pooled ${r.pooled.top1} vs ${w}`);
  }
  // Four groups: top-4 of 4 classes is always right.
  const g = z.results[0]!;
  assert.equal(g.k, 4);
  assert.equal(g.pooled.top5, 1);
});

test('members of one-concept classes score exactly as the label classes', { skip: SKIP_FIXTURES }, async () => {
  const { report } = await setup();
  const by = (g: string, m: string) => report.zeroshot!.results.find((r) => r.granularity === g && r.method === m)!;
  const members = by('subgroup', 'members');
  const label = by('label', 'names');
  assert.deepEqual({ ...members, granularity: 'label', method: 'names' }, label);
});

test('label and group-name accuracy agree with evalZeroShot; group members with an independent computation', { skip: SKIP_FIXTURES }, async () => {
  const { root, model, report } = await setup();
  const all: EmojiRow[] = readFileSync(layout(root).manifest('zeroshot'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const rows = ofStyles(all, ['openmoji', 'fluent']);
  const by = (g: string, m: string) => report.zeroshot!.results.find((r) => r.granularity === g && r.method === m)!;

  const labels = emojiClasses(all, 'label').classes;
  const index = new Map(labels.map((c, i) => [c, i]));
  const ez = await evalZeroShot(model, { classes: labels, samples: rows.map((r) => ({ input: r.image, label: index.get(r.label)! })) }, { templates: TEMPLATES });
  assert.equal(ez.counts.evaluated, 11);
  assert.equal(by('label', 'names').pooled.top1, ez.accuracy.top1);
  assert.equal(by('label', 'names').pooled.top5, ez.accuracy.top5);

  const groups = emojiClasses(all, 'group').classes;
  const gIndex = new Map(groups.map((c, i) => [c, i]));
  const gNames = groups.map((g) => all.find((r) => r.group === g)!.groupName);
  const eg = await evalZeroShot(model, { classes: gNames, samples: rows.map((r) => ({ input: r.image, label: gIndex.get(r.group)! })) }, { templates: TEMPLATES });
  assert.equal(by('group', 'names').pooled.top1, eg.accuracy.top1);

  // members, computed here with plain JS dot products: mean of the member labels' prompt-ensembled embeddings.
  const labelEmb = await classEmbeddings(model, labels, TEMPLATES);
  const groupEmb = groups.map((g) => {
    const m = new Float32Array(labelEmb[0]!.length);
    for (const l of new Set(all.filter((r) => r.group === g).map((r) => r.label))) labelEmb[index.get(l)!]!.forEach((x, d) => (m[d]! += x));
    return l2normalize(m);
  });
  const imgs = await model.encodeImages(rows.map((r) => r.image));
  let hits = 0;
  let n = 0;
  imgs.forEach((res, i) => {
    if (!res.embedding) return;
    n++;
    const s = groupEmb.map((w) => w.reduce((acc, x, d) => acc + x * res.embedding![d]!, 0));
    const best = s.indexOf(Math.max(...s));
    if (best === gIndex.get(rows[i]!.group)) hits++;
  });
  assert.equal(n, 11);
  assert.ok(Math.abs(by('group', 'members').pooled.top1! - hits / n) < 1e-12, `members top-1 ${by('group', 'members').pooled.top1} vs ${hits}/${n}`);
});

test('Tux Paint retrieval: identical captions are one text, chance levels exact', { skip: SKIP_FIXTURES }, async () => {
  const { report } = await setup();
  const t = report.tuxpaint!;
  assert.deepEqual(t.counts, { images: 4, captions: 4, uniqueCaptions: 3, failedImages: 0, imageQueries: 4, textQueries: 3 });
  for (const dir of ['imageToText', 'textToImage'] as const) {
    for (const k of ['R@1', 'R@5', 'R@10']) assert.ok(inUnit(t[dir][k]!), `${dir} ${k}`);
    assert.ok(t[dir]['R@5']! >= t[dir]['R@1']!);
    assert.equal(t[dir]['R@10'], 1, 'k at least the pool size finds everything');
  }
  // image→text: 1 positive of 3 texts; text→image: "A frog." has 2 of 4 images, the others 1.
  assert.ok(Math.abs(t.chance.imageToText['R@1']! - 1 / 3) < 1e-12);
  assert.equal(t.chance.imageToText['R@5'], 1);
  assert.ok(Math.abs(t.chance.textToImage['R@1']! - (0.5 + 0.25 + 0.25) / 3) < 1e-12);
  assert.equal(t.chance.textToImage['R@10'], 1);
  const six = [...Object.values(t.imageToText), ...Object.values(t.textToImage)] as number[];
  assert.ok(Math.abs(t.mean! - six.reduce((a, b) => a + b) / 6) < 1e-12);
});

test('chanceRecall matches the hypergeometric formula', () => {
  assert.ok(Math.abs(chanceRecall(10, 1, 1) - 0.1) < 1e-12);
  assert.ok(Math.abs(chanceRecall(10, 2, 3) - (1 - (8 * 7 * 6) / (10 * 9 * 8))) < 1e-12);
  assert.equal(chanceRecall(5, 1, 10), 1);
  assert.equal(chanceRecall(5, 5, 1), 1);
});

test('Fashion-MNIST: both class-text variants, per-class subsampling', { skip: SKIP_FIXTURES }, async () => {
  const { report, root, model } = await setup();
  const f = report.fashion!;
  assert.deepEqual(f.counts, { images: 6, evaluated: 6, failed: 0, perClass: { 'Ankle boot': 2, Trouser: 2, Bag: 2 } });
  assert.deepEqual(f.classes.map((c) => c.fashionClass), [1, 8, 9]);
  assert.deepEqual(f.classes.map((c) => c.label), ['jeans', 'handbag', "woman's boot"]);
  assert.equal(f.k, 3);
  assert.ok(Math.abs(f.chance.top1 - 1 / 3) < 1e-12);
  for (const s of [f.label, f.fashionName]) {
    checkScore(s, 'fashion');
    assert.equal(s.top5, 1, 'top-3 of 3 classes');
  }
  const sub = await runEmojiBenchmark(model, { root, parts: ['fashion-mnist'], fashionPerClass: 1 });
  assert.equal(sub.zeroshot, null);
  assert.equal(sub.tuxpaint, null);
  assert.deepEqual(sub.fashion!.counts.perClass, { 'Ankle boot': 1, Trouser: 1, Bag: 1 });
});

test('bad options are refused before any work', { skip: SKIP_FIXTURES }, async () => {
  const { root, model } = await setup();
  await assert.rejects(runEmojiBenchmark(model, { root, styles: ['noto'] }), /style\(s\) noto not in the zeroshot split/);
  await assert.rejects(runEmojiBenchmark(model, { root, parts: ['icons' as never] }), /unknown benchmark part/);
  await assert.rejects(runEmojiBenchmark(model, { root: join(root, 'nope'), parts: ['tuxpaint'] }), /npm run data/);
});

test('markdown table: rows per metric, columns per style, both and seen', { skip: SKIP_FIXTURES }, async () => {
  const { report } = await setup();
  const md = emojiBenchmarkTable(report);
  const lines = md.split('\n');
  const header = lines.find((l) => l.startsWith('| zero-shot'))!;
  assert.deepEqual(header.split('|').map((s) => s.trim()).filter(Boolean), ['zero-shot', 'classes', 'openmoji', 'fluent', 'both', 'seen (google, twitter)', 'chance']);
  const zRows = lines.filter((l) => /^\| (group|subgroup|label)/.test(l));
  assert.equal(zRows.length, 10);
  assert.ok(lines.some((l) => l.startsWith('| label top-1 ') && l.includes('16.67%')), 'label chance 1/6');
  assert.ok(lines.some((l) => l.startsWith('| Tux Paint text→image R@10 ') && l.includes('100.00%')));
  assert.ok(lines.some((l) => l.startsWith('| Fashion-MNIST top-1 (Fashion-MNIST name)')));
  // Every table row has as many cells as its header.
  for (const l of lines.filter((x) => x.startsWith('|'))) assert.ok([5, 9].includes(l.split('|').length), l);
});

test('clip eval emoji: JSON, report file, markdown file, partial exit code', { skip: SKIP_FIXTURES }, async () => {
  const { root } = await setup();
  const dir = mkdtempSync(join(tmpdir(), 'clip-emoji-cli-'));
  tmp.push(dir);
  const r = spawnSync(process.execPath, [CLIP_BIN, 'eval', 'emoji', '--model', fixture('hf-clip-tiny'), '--root', root,
    '--styles', 'fluent', '--seen-styles', 'none', '--only', 'zeroshot,tuxpaint', '--json', '--out', join(dir, 'r.json'), '--markdown', join(dir, 'r.md')], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr); // fluent's unreadable rocket: a partial result
  assert.match(r.stderr, /1f680\.png/);
  const out = JSON.parse(r.stdout) as EmojiBenchmarkReport;
  assert.deepEqual(out.styles, ['fluent']);
  assert.deepEqual(out.seenStyles, []);
  assert.equal(out.fashion, null);
  assert.deepEqual([out.zeroshot!.counts.images, out.zeroshot!.counts.failed], [6, 1]);
  assert.equal(out.zeroshot!.results[0]!.seen, null);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')).styles, ['fluent']);
  const md = readFileSync(join(dir, 'r.md'), 'utf8');
  assert.match(md, /\| zero-shot +\| classes +\| fluent +\| chance +\|/);
});

// ---- training curve ----------------------------------------------------------------------------------------

function syntheticRun(withSteps: boolean, withVal: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'clip-curve-'));
  tmp.push(dir);
  const perEpoch = 100;
  const epochs = [1, 2, 3].map((e) => ({
    type: 'epoch', epoch: e, step: e * perEpoch, trainLoss: 4 / e, lr: 5e-4 * (1 - e / 4), samples: 800, seconds: 10, samplesPerSec: 80,
    ...(withVal ? { val: { imageToText: {}, textToImage: {}, mean: 0.1 * e, images: 10, texts: 10, failedImages: 0 } } : {}),
    checkpoint: join(dir, `checkpoint-${e * perEpoch}`),
  }));
  writeFileSync(join(dir, 'train_log.jsonl'), epochs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  if (withSteps) {
    const lines: string[] = [];
    for (let s = 1; s <= 3 * perEpoch; s++) {
      const loss = s === 50 ? null : 4.2 * Math.exp(-s / 120) + 0.5 + 0.3 * Math.sin(s * 1.7);
      lines.push(JSON.stringify({ step: s, loss, lr: s < 20 ? (5e-4 * s) / 20 : 5e-4 * Math.cos((s / 300) * Math.PI / 2) }));
    }
    writeFileSync(join(dir, 'train_steps.jsonl'), lines.join('\n') + '\n');
  }
  return dir;
}

/** Pixels of the PNG that are not (near) white, and those close to an RGB colour. */
async function pixelCounts(file: string, rgb: [number, number, number]): Promise<{ ink: number; colour: number; total: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let ink = 0;
  let colour = 0;
  for (let p = 0; p < info.width * info.height; p++) {
    const [r, g, b] = [data[p * 3]!, data[p * 3 + 1]!, data[p * 3 + 2]!];
    if (r < 240 || g < 240 || b < 240) ink++;
    if (Math.abs(r - rgb[0]) < 30 && Math.abs(g - rgb[1]) < 30 && Math.abs(b - rgb[2]) < 30) colour++;
  }
  return { ink, colour, total: info.width * info.height };
}

test('training curve: PNG of the requested size with the smoothed loss, lr and validation drawn', async () => {
  const dir = syntheticRun(true, true);
  const log = readTrainingLog(dir);
  assert.equal(log.steps.length, 300);
  assert.equal(log.epochs.length, 3);
  const out = join(dir, 'curve.png');
  const r = await renderTrainingCurve(dir, out, { width: 900, height: 640 });
  assert.deepEqual(r, { width: 900, height: 640, steps: 300, epochs: 3 });
  const meta = await sharp(out).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 900, 640]);
  const smoothBlue = await pixelCounts(out, [0x08, 0x51, 0x9c]);
  const ink = smoothBlue.ink / smoothBlue.total;
  assert.ok(ink > 0.02 && ink < 0.5, `ink fraction ${ink}`);
  assert.ok(smoothBlue.colour > 300, `smoothed loss line: ${smoothBlue.colour} pixels`);
  assert.ok((await pixelCounts(out, [0x31, 0xa3, 0x54])).colour > 200, 'learning-rate line');
  assert.ok((await pixelCounts(out, [0x75, 0x6b, 0xb1])).colour > 50, 'validation recall');
  const svg = trainingCurveSvg(log);
  assert.match(svg, /validation mean recall/);
  assert.match(svg, />learning rate</);
  assert.match(svg, />5e-4</, 'lr tick labels in exponent form');
});

test('training curve: epochs only (no train_steps.jsonl, no validation), and errors', async () => {
  const dir = syntheticRun(false, false);
  const out = join(dir, 'curve.png');
  const r = await renderTrainingCurve(dir, out);
  assert.deepEqual(r, { width: 1000, height: 720, steps: 0, epochs: 3 });
  assert.ok((await pixelCounts(out, [0xe6, 0x55, 0x0d])).colour > 100, 'epoch loss drawn');
  assert.doesNotMatch(trainingCurveSvg(readTrainingLog(dir)), /validation mean recall/);
  const empty = mkdtempSync(join(tmpdir(), 'clip-curve-empty-'));
  tmp.push(empty);
  assert.throws(() => readTrainingLog(empty), /no training log/);
  assert.throws(() => trainingCurveSvg(readTrainingLog(dir), { width: 100, height: 100 }), /too small/);
});

test('clip train-curve writes OUT/training-curve.png', () => {
  const dir = syntheticRun(true, false);
  const r = spawnSync(process.execPath, [CLIP_BIN, 'train-curve', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'training-curve.png')));
  assert.match(r.stdout, /1000x720, 300 steps, 3 epochs/);
});

test('axis helpers: nice ticks, labels, smoothing', () => {
  assert.deepEqual(niceTicks(0, 1), { ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], step: 0.2 });
  assert.deepEqual(niceTicks(0.37, 0.83).ticks, [0.4, 0.5, 0.6, 0.7, 0.8]);
  assert.deepEqual(niceTicks(0, 300, 8), { ticks: [0, 50, 100, 150, 200, 250, 300], step: 50 });
  assert.equal(tickLabel(0.4, 0.2), '0.4');
  assert.equal(tickLabel(250, 50), '250');
  assert.equal(tickLabel(1.5e-4, 5e-5), '1.5e-4');
  assert.equal(tickLabel(3e-4, 1e-4), '3e-4');
  assert.deepEqual(smooth([1, 2, 3, 4, 5], 3), [1.5, 2, 3, 4, 4.5]);
  assert.deepEqual(smooth([2, 4], 1), [2, 4]);
});
