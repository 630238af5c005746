// Evaluation inputs without a model: CSV parsing, dataset readers, prompt templates, label mapping, heat map.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { parseCsv } from '../src/tasks/csv.js';
import { readLabeledCsv, readLabeledFolder, readRetrievalCsv, readRetrievalJsonl, readRetrievalTsv, sortClassNames } from '../src/tasks/datasets.js';
import { loadTemplates } from '../src/tasks/templates.js';
import { mapLabelsToClasses, withClasses } from '../src/tasks/eval-zeroshot.js';
import { dotMatrix } from '../src/tasks/score-matrix.js';
import { confusionChartLayout, confusionChartPng, confusionPixels, confusionPng, heatColor, NO_DATA_RGB } from '../src/tasks/confusion-png.js';

const tmp = mkdtempSync(join(tmpdir(), 'clip-eval-data-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, text: string) => { const p = join(tmp, name); writeFileSync(p, text); return p; };

test('CSV: quotes, doubled quotes, embedded newlines, CRLF, BOM, blank lines', () => {
  const rows = parseCsv('\ufeffpath,label\r\n"a, b.jpg","say ""hi"""\r\n\r\nc.png,"two\nlines"\nd.png,x', 't.csv');
  assert.deepEqual(rows.map((r) => r.fields), [['path', 'label'], ['a, b.jpg', 'say "hi"'], ['c.png', 'two\nlines'], ['d.png', 'x']]);
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 4, 6]);
  assert.deepEqual(parseCsv('filepath\ttitle\nx.jpg\ta, b', 't.tsv').map((r) => r.fields), [['filepath', 'title'], ['x.jpg', 'a, b']]);
  assert.throws(() => parseCsv('a,b\n"open,c', 'bad.csv'), /bad\.csv:2: unterminated quoted field/);
});

test('labeled CSV and folder readers: header, relative paths, class order', () => {
  mkdirSync(join(tmp, 'sub'), { recursive: true });
  const csv = write('sub/labels.csv', 'path,label\nimgs/1.jpg,dog\n/abs/2.png,cat\nimgs/3.jpg,dog\n');
  const ds = readLabeledCsv(csv);
  assert.deepEqual(ds.classes, ['cat', 'dog']);
  assert.deepEqual(ds.samples, [
    { input: join(tmp, 'sub', 'imgs', '1.jpg'), label: 1 }, { input: '/abs/2.png', label: 0 }, { input: join(tmp, 'sub', 'imgs', '3.jpg'), label: 1 },
  ]);
  assert.equal(readLabeledCsv(write('nohead.csv', 'a.jpg,x\nb.jpg,y\n')).samples.length, 2, 'no header: every row is data');
  assert.throws(() => readLabeledCsv(write('short.csv', 'path,label\na.jpg,x\nb.jpg\n')), /short\.csv:3: expected an image path and a label/);
  assert.throws(() => readLabeledCsv(join(tmp, 'missing.csv')), /labels CSV .*missing\.csv: no such file/);

  assert.deepEqual(sortClassNames(['10', '2', '1', '2']), ['1', '2', '10']);
  assert.deepEqual(sortClassNames(['b', 'B', 'a']), ['B', 'a', 'b']);
  for (const [c, files] of [['10', ['x.png', 'notes.txt']], ['2', ['deep/y.JPG']], ['empty', []]] as const) {
    mkdirSync(join(tmp, 'folder', c, 'deep'), { recursive: true });
    for (const f of files) writeFileSync(join(tmp, 'folder', c, f), '');
  }
  const folder = readLabeledFolder(join(tmp, 'folder'));
  assert.deepEqual(folder.classes, ['10', '2', 'empty'], 'not all integers: code-point order');
  assert.deepEqual(folder.samples.map((s) => [s.input.slice(tmp.length), s.label]), [['/folder/10/x.png', 0], ['/folder/2/deep/y.JPG', 1]]);
  assert.throws(() => readLabeledFolder(join(tmp, 'nope')), /nope: no such directory/);
});

test('retrieval readers: captions grouped by image; bad lines named', async () => {
  const csv = readRetrievalCsv(write('caps.csv', 'image,caption\na.jpg,one\nb.jpg,two\na.jpg,"three, with comma"\n'));
  assert.deepEqual(csv.images.map((i) => i.name), [join(tmp, 'a.jpg'), join(tmp, 'b.jpg')]);
  assert.deepEqual(csv.texts, [{ text: 'one', image: 0 }, { text: 'two', image: 1 }, { text: 'three, with comma', image: 0 }]);

  const jl = await readRetrievalJsonl(write('caps.jsonl', [
    '{"image": "a.jpg", "captions": ["x", "y"]}', '', '{"filepath": "b.jpg", "sentences": [{"raw": "z"}]}', '{"image": "c.jpg", "captions": []}',
  ].join('\n')));
  assert.deepEqual(jl.texts.map((t) => [t.text, t.image]), [['x', 0], ['y', 0], ['z', 1]]);
  assert.equal(jl.images.length, 3, 'an image without captions stays as a distractor');
  await assert.rejects(readRetrievalJsonl(write('bad.jsonl', '{"image":"a.jpg","caption":"x"}\n{oops}\n')), /bad\.jsonl:2: not valid JSON/);
  await assert.rejects(readRetrievalJsonl(write('nocap.jsonl', '{"image":"a.jpg"}\n')), /nocap\.jsonl:1: expected an object/);

  // Column order is detected from the image signature; identical bytes merge unless dedupe is off.
  const png = (await sharp({ create: { width: 2, height: 2, channels: 3, background: '#f00' } }).png().toBuffer()).toString('base64');
  const tsv = write('swap.tsv', `${png}\tfirst\n${png}\tsecond\n`);
  const merged = await readRetrievalTsv(tsv);
  assert.deepEqual(merged.texts, [{ text: 'first', image: 0 }, { text: 'second', image: 0 }]);
  assert.equal(merged.images[0]!.name, 'swap.tsv:1');
  assert.equal((await readRetrievalTsv(tsv, { dedupe: false })).images.length, 2);
  await assert.rejects(readRetrievalTsv(write('three.tsv', `a\tb\tc\n`)), /three\.tsv:1: expected 2 tab-separated fields/);
});

test('templates: built-ins, text files, prompts JSON with --dataset, clear errors', () => {
  assert.deepEqual(loadTemplates().templates, ['{}']);
  assert.deepEqual(loadTemplates('photo').templates, ['a photo of a {}.']);
  assert.deepEqual(loadTemplates(write('t.txt', '# comment\na {} here\n\n  the {}  \n')).templates, ['a {} here', 'the {}']);
  assert.throws(() => loadTemplates(write('bad.txt', 'a {} here\nno slot\n')), /bad\.txt: template 2 "no slot" has no \{\}/);
  const json = write('p.json', JSON.stringify({ Pets: { classes: ['cat', 'golden retriever'], templates: ['a {} pet'] }, Cars: { templates: ['a {} car'] } }));
  assert.throws(() => loadTemplates(json), /holds 2 prompt sets; pick one with --dataset NAME \(Pets, Cars\)/);
  assert.deepEqual(loadTemplates(json, 'pets'), { source: `${json} [Pets]`, templates: ['a {} pet'], classes: ['cat', 'golden retriever'] });
  assert.throws(() => loadTemplates(json, 'Boats'), /--dataset Boats: not in .*\(it has Pets, Cars\)/);
  assert.throws(() => loadTemplates('nope'), /--templates nope: no such file, and not a built-in set/);
});

test('prompts fixture: CIFAR10 set, labels mapped by name or by index', { skip: SKIP_FIXTURES }, () => {
  const set = loadTemplates(fixture('common', 'zeroshot-prompts.json'), 'CIFAR10');
  assert.equal(set.classes!.length, 10);
  assert.equal(set.templates.length, 18);
  assert.deepEqual(mapLabelsToClasses(['cat', 'Horse', 'automobile'], set.classes!), [3, 7, 1]);
  assert.deepEqual(mapLabelsToClasses(['0', '9'], set.classes!), [0, 9], 'numbered folders are indices');
  assert.throws(() => mapLabelsToClasses(['cat', 'unicorn'], set.classes!), /not among the prompt set's classes: unicorn/);
  assert.deepEqual(mapLabelsToClasses(['golden_retriever'], ['cat', 'golden retriever']), [1]);
  const ds = withClasses({ classes: ['dog', 'cat'], samples: [{ input: 'a', label: 0 }, { input: 'b', label: 1 }] }, set.classes!);
  assert.deepEqual(ds.samples.map((s) => s.label), [5, 3]);
  assert.equal(ds.classes.length, 10);
});

test('confusion heat map: row-normalized colours, grey rows without samples, grid', async () => {
  assert.deepEqual(heatColor(0), [255, 255, 255]);
  assert.deepEqual(heatColor(1), [8, 48, 107]);
  const m = [[3, 1], [0, 0]];
  const { data, width, height } = confusionPixels(m, { cell: 6 });
  assert.equal(width, 2 * 6 + 3);
  assert.equal(height, width);
  const at = (x: number, y: number) => Array.from(data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3));
  assert.deepEqual(at(1 + 2, 1 + 2), heatColor(0.75), 'cell (0,0): 3 of 4');
  assert.deepEqual(at(8 + 2, 1 + 2), heatColor(0.25), 'cell (0,1): 1 of 4');
  assert.deepEqual(at(8 + 2, 8 + 2), [...NO_DATA_RGB]);
  assert.notDeepEqual(at(7, 3), heatColor(0.75), 'grid line between cells');
  const png = await confusionPng(m, { cell: 6 });
  const back = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(back.info.width, width);
  assert.deepEqual(new Uint8Array(back.data), data);
  assert.throws(() => confusionPixels([[1, 2]]), /row 0 has 2 cells, expected 1/);
});

test('confusion chart: axis titles and class names around the same heat map', async () => {
  const m = [[3, 1], [0, 0]];
  const frame = confusionChartLayout(['cat', 'a <dog>'], { cell: 20 });
  assert.ok(frame.names);
  for (const t of ['predicted class', 'true class', '>cat<', '>a &lt;dog&gt;<']) assert.ok(frame.svg.includes(t), t);
  const png = await confusionChartPng(m, ['cat', 'a <dog>'], { cell: 20 });
  const back = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(back.info.width, frame.width);
  const px = (x: number, y: number) => Array.from(back.data.subarray((y * frame.width + x) * 3, (y * frame.width + x) * 3 + 3));
  assert.deepEqual(px(frame.left + 1 + 10, frame.top + 1 + 10), heatColor(0.75), 'cell (0,0) sits at the offset');
  // Cells too small to read a name: the axes are marked by the first and last class index.
  const many = confusionChartLayout(Array.from({ length: 300 }, (_, i) => `class ${i}`));
  assert.equal(many.names, false);
  assert.ok(many.svg.includes('>299<') && !many.svg.includes('class 5'));
  await assert.rejects(confusionChartPng(m, ['only one']), /2 rows but 1 class names/);
});

test('dotMatrix equals plain dot products, in one run or row by row', async () => {
  const rows = (n: number, d: number, off: number) => Array.from({ length: n }, (_, i) => Float32Array.from({ length: d }, (_, k) => Math.sin(off + i * 7 + k)));
  const a = rows(5, 9, 0);
  const b = rows(3, 9, 100);
  const expected = a.map((x) => b.map((y) => x.reduce((s, v, k) => s + v * y[k]!, 0)));
  for (const chunkRows of [undefined, 1, 2]) {
    const got = await dotMatrix(a, b, { chunkRows });
    assert.equal(got.length, 5);
    got.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - expected[i]![j]!) < 1e-5, `(${i},${j}) chunk ${chunkRows}`)));
  }
  assert.deepEqual(await dotMatrix([], b), []);
  await assert.rejects(dotMatrix(a, [new Float32Array(9), new Float32Array(4)]), /right-hand row 1 has 4 dimensions, expected 9/);
});
