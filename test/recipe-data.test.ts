// The emoji recipe's training mix: every emoji row of the recipe's styles, plus a seeded share of the
// icons and whole icon categories, never an evaluation-style image; the tokenizer sees exactly the mix's
// captions.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { layout } from '../src/data/paths.js';
import { toJsonl } from '../src/data/manifests.js';
import { trainingData, trainingRows } from '../src/recipes/emoji-clip.js';

function fakeData(icons: number | null, styles = ['google', 'twitter', 'emojione']): string {
  const root = mkdtempSync(join(tmpdir(), 'recipe-data-'));
  const l = layout(root);
  mkdirSync(l.manifests, { recursive: true });
  const emoji = styles.flatMap((style) => [0, 1, 2].map((i) => ({ image: `/img/${style}/${i}.png`, style, groupName: 'objects', subgroupName: `kind ${i % 2}`, captions: [`thing ${i}`, `an emoji of thing ${i}`] })));
  writeFileSync(l.manifest('train'), toJsonl(emoji));
  if (icons !== null) {
    const rows = Array.from({ length: icons }, (_, i) => ({ image: `/img/mdi/${i}.png`, style: 'mdi', name: `icon-${i}`, category: i % 10 === 3 ? 'Letters' : '', keywords: [], captions: [`icon ${i}`] }));
    writeFileSync(l.manifest('icons'), toJsonl(rows));
  }
  return root;
}

test('no icons: the Noto and Twemoji rows of the train split, unless the recipe names other styles', () => {
  const root = fakeData(10);
  try {
    const out = join(root, 'out');
    mkdirSync(out);
    const d = trainingData({ icons: 0 }, out, root);
    assert.equal(d.path, join(out, 'train-mix.jsonl'), 'the split holds more styles than the recipe uses');
    assert.equal(d.images, 6);
    assert.deepEqual(d.corpus, trainingRows({ icons: 0 }, root).flatMap((r) => r.captions));
    assert.deepEqual(readFileSync(d.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l).image.split('/')[2]), ['google', 'google', 'google', 'twitter', 'twitter', 'twitter']);
    const three = trainingRows({ icons: 0, styles: ['google', 'twitter', 'emojione'] }, root);
    assert.equal(three.length, 9);
    assert.deepEqual(three.slice(0, 6), trainingRows({ icons: 0 }, root), 'the default styles first, in the same order');
    assert.equal(trainingRows({ icons: 0, styles: ['emojione'] }, root).length, 3);
    assert.throws(() => trainingRows({ icons: 0, styles: ['openmoji' as never] }, root), /unknown style openmoji/);
    assert.throws(() => trainingRows({ icons: 0, styles: ['emojione-bw'] }, root), /no emojione-bw images.*npm run data/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a share of the icons: seeded, the same subset every time, written next to the run', () => {
  const root = fakeData(40);
  try {
    const a = trainingRows({ icons: 0.5 }, root);
    const b = trainingRows({ icons: 0.5 }, root);
    assert.deepEqual(a, b);
    assert.equal(a.length, 6 + 20);
    assert.equal(a.filter((r) => r.image.includes('/mdi/')).length, 20);
    const picked = a.slice(6).map((r) => Number(r.image.match(/(\d+)\.png$/)![1]));
    assert.notDeepEqual(picked, Array.from({ length: 20 }, (_, i) => i), 'a random subset, not the first half');
    assert.equal(trainingRows({ icons: 1 }, root).length, 46);
    const out = join(root, 'out');
    mkdirSync(out);
    const d = trainingData({ icons: 0.5 }, out, root);
    assert.equal(d.path, join(out, 'train-mix.jsonl'));
    assert.equal(readFileSync(d.path, 'utf8').trim().split('\n').length, 26);
    assert.ok(d.corpus.includes(a[6]!.captions[0]!));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a share of the clip art: seeded, after the emoji and icons; none asked, none read', () => {
  const root = fakeData(10);
  try {
    assert.throws(() => trainingRows({ icons: 0, clipart: 0.5 }, root), /clip art but the data has none/);
    const rows = Array.from({ length: 20 }, (_, i) => ({ image: `/img/openclipart/${i}.png`, id: `x/${i}`, category: 'x', title: `t${i}`, keywords: [], captions: [`t${i}`] }));
    writeFileSync(layout(root).manifest('clipart'), toJsonl(rows));
    assert.deepEqual(trainingRows({ icons: 0 }, root), trainingRows({ icons: 0, clipart: 0 }, root));
    const a = trainingRows({ icons: 0.5, clipart: 0.25 }, root);
    assert.deepEqual(a, trainingRows({ icons: 0.5, clipart: 0.25 }, root));
    assert.equal(a.length, 6 + 5 + 5);
    assert.ok(a.slice(11).every((r) => r.image.includes('/openclipart/')) && a.slice(6, 11).every((r) => r.image.includes('/mdi/')));
    assert.equal(trainingRows({ icons: 0, clipart: 1 }, root).length, 26);
    assert.throws(() => trainingRows({ icons: 0, clipart: 2 }, root), /data.clipart must be a fraction/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('icon categories: every icon of them, on top of the share, none twice', () => {
  const root = fakeData(40);
  try {
    const rows = trainingRows({ icons: 0, iconCategories: ['Letters'] }, root);
    assert.deepEqual(rows.slice(6).map((r) => r.image), [3, 13, 23, 33].map((i) => `/img/mdi/${i}.png`));
    const both = trainingRows({ icons: 0.5, iconCategories: ['Letters'] }, root).slice(6).map((r) => r.image);
    assert.equal(new Set(both).size, both.length, 'an icon in the share and the category comes once');
    const share = trainingRows({ icons: 0.5 }, root).slice(6).map((r) => r.image);
    assert.equal(both.length, new Set([...share, ...rows.slice(6).map((r) => r.image)]).size);
    assert.throws(() => trainingRows({ icons: 0, iconCategories: ['Letters', 'Runes'] }, root), /no icon has the category "Runes"/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('name captions: each emoji also captioned by its subgroup and group name alone', () => {
  const root = fakeData(4);
  try {
    const rows = trainingRows({ icons: 0, nameCaptions: 1 }, root);
    assert.equal(rows.length, 6);
    assert.deepEqual(rows[1]!.captions, ['thing 1', 'an emoji of thing 1', 'kind 1', 'objects']);
    assert.deepEqual(trainingRows({ icons: 0.5, nameCaptions: 1 }, root).slice(6).map((r) => r.captions.length), [1, 1], 'icons keep their own captions');
    const out = join(root, 'out');
    mkdirSync(out);
    const d = trainingData({ icons: 0, nameCaptions: 1 }, out, root);
    assert.equal(d.path, join(out, 'train-mix.jsonl'), 'the changed captions are what clip train reads');
    assert.match(readFileSync(d.path, 'utf8'), /"kind 1","objects"/);
    // A share names a seeded subset: the same images every time, half of them here.
    const half = trainingRows({ icons: 0, nameCaptions: 0.5 }, root).map((r) => r.captions.length);
    assert.equal(half.filter((k) => k === 4).length, 3);
    assert.deepEqual(trainingRows({ icons: 0, nameCaptions: 0.5 }, root).map((r) => r.captions.length), half);
    assert.throws(() => trainingRows({ icons: 0, nameCaptions: 2 }, root), /nameCaptions must be a fraction/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('icons asked for but not prepared, or a share outside [0, 1]: an error that says what to do', () => {
  const root = fakeData(null);
  try {
    assert.throws(() => trainingRows({ icons: 0.5 }, root), /npm run data/);
    assert.throws(() => trainingRows({ icons: 1.5 }, root), /fraction in \[0, 1\]/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
