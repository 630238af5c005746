// The offline benchmark builder (src/data): key normalization, the joins and captions on small inline
// samples, file formats, atomic steps; and, only where `npm run data` has been run, the prepared counts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { buildCaptions, cleanText, keywords } from '../src/data/captions.js';
import { buildConcepts, type EmojibaseEntry } from '../src/data/emoji.js';
import { FASHION_CLASSES } from '../src/data/fashion.js';
import { iconSvg, joinFluent, type IconifyJson } from '../src/data/fluent.js';
import { idxImage, parseIdx } from '../src/data/idx.js';
import { conceptKey, emojiFromKey, keyFromEmoji, slug } from '../src/data/keys.js';
import { asLabeledDataset, dataReady, emojiClasses, parseJsonl, readManifest, readSummary, toJsonl, type EmojiRow } from '../src/data/manifests.js';
import { clipCacheRoot, dataRoot } from '../src/data/paths.js';
import { sizedSvg, svgToPng } from '../src/data/raster.js';
import { imageName, sharedConcepts } from '../src/data/rows.js';
import { SOURCES } from '../src/data/sources.js';
import { step } from '../src/data/steps.js';
import { englishDescription } from '../src/data/tuxpaint.js';
import { datasourceImages, emojioneImages, openmojiImages } from '../src/data/vendors.js';
import { clipartCaptions, clipartMetadata, thumbnail, tuxDuplicates, usableTitle } from '../src/data/openclipart.js';
import { TUX_DUPLICATE_THRESHOLD } from '../src/data/build.js';

const tmp = mkdtempSync(join(tmpdir(), 'clip-data-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('concept keys: lower-case hex, FE0F dropped, any spelling of the same sequence agrees', () => {
  assert.equal(conceptKey('0023-FE0F-20E3'), '0023-20e3');
  assert.equal(conceptKey('1F600'), '1f600');
  assert.equal(conceptKey('1f468_200d_1f469'), '1f468-200d-1f469');
  assert.equal(conceptKey('U+2764 U+FE0F'), '2764');
  assert.equal(conceptKey('23-20e3'), '0023-20e3', 'short hex is padded to four digits');
  assert.equal(keyFromEmoji('❤️'), '2764');
  assert.equal(keyFromEmoji('#️⃣'), conceptKey('0023-FE0F-20E3'));
  assert.equal(keyFromEmoji('👩‍🚀'), '1f469-200d-1f680');
  assert.equal(emojiFromKey('1f469-200d-1f680'), '👩‍🚀');
  assert.throws(() => conceptKey('1F60G'), /not a codepoint sequence/);
  assert.throws(() => conceptKey(' '), /empty/);
});

test('slugs fold accents and typographic quotes', () => {
  assert.equal(slug('Japanese “here” button'), 'japanese-here-button');
  assert.equal(slug('piñata'), 'pinata');
  assert.equal(slug('woman’s sandal'), 'womans-sandal');
  assert.equal(slug('keycap: #'), 'keycap');
  assert.equal(slug('artist: medium-dark skin tone'), 'artist-medium-dark-skin-tone');
});

test('keywords and captions: emojilib first, then tags; emoticons and repeats dropped', () => {
  assert.equal(cleanText('woman’s  “hat” 1–2'), 'woman\'s "hat" 1-2');
  const kw = keywords('grinning face', ['grinning_face', 'face', 'smile', ':D', 'happy'], ['face', 'grin', '+1', 'Smile', 'grinning face']);
  assert.deepEqual(kw, ['face', 'smile', 'happy', 'grin']);
  assert.deepEqual(buildCaptions({ label: 'woman’s boot', keywords: kw, groupName: 'objects', subgroupName: 'clothing' }), [
    "woman's boot", "an emoji of woman's boot", "woman's boot: face, smile, happy, grin", "woman's boot (objects, clothing)",
  ]);
  assert.equal(buildCaptions({ label: 'x', keywords: [], groupName: 'g', subgroupName: 's' }).length, 3, 'no keyword caption without keywords');
});

// A miniature emojibase: two concepts (one with skin tones), a component and a regional indicator.
const groups = { groups: { 0: 'smileys-emotion', 1: 'people-body', 2: 'component', 8: 'symbols' }, subgroups: { 0: 'face-smiling', 16: 'hand-fingers-open', 32: 'skin-tone', 94: 'keycap' } };
const messages = {
  groups: [{ key: 'smileys-emotion', message: 'smileys & emotion' }, { key: 'people-body', message: 'people & body' }],
  subgroups: [{ key: 'face-smiling', message: 'smiling' }, { key: 'hand-fingers-open', message: 'hand fingers open' }],
};
const data: EmojibaseEntry[] = [
  { label: 'regional indicator A', hexcode: '1F1E6', emoji: '🇦' },
  { label: 'waving hand', hexcode: '1F44B', emoji: '👋', tags: ['hello', 'wave'], group: 1, subgroup: 16, order: 188,
    skins: [{ label: 'waving hand: dark skin tone', hexcode: '1F44B-1F3FF', group: 1, subgroup: 16, tone: 5 }] },
  { label: 'grinning face', hexcode: '1F600', emoji: '😀', tags: ['face', 'grin'], group: 0, subgroup: 0, order: 1 },
  { label: 'dark skin tone', hexcode: '1F3FF', emoji: '🏿', group: 2, subgroup: 32, order: 5000 },
  { label: 'keycap: #', hexcode: '0023-FE0F-20E3', emoji: '#️⃣', tags: ['keycap'], group: 8, subgroup: 94, order: 4838 },
];
const emojilib = { '😀': ['grinning_face', 'smile', 'happy'], '#️⃣': ['keycap_number_sign', 'symbol'], '🦄': ['unicorn'] };
const table = buildConcepts(data, groups, messages, emojilib, [{ '1F600': 'grinning', '0023-FE0F-20E3': ['hash', 'number_sign'], '1F44B': 'hand_wave' }]);

test('concept table: base emojis only, in emojibase order, joined with emojilib and shortcodes by key', () => {
  assert.deepEqual(table.concepts.map((c) => c.key), ['1f600', '1f44b', '0023-20e3']);
  const hash = table.byKey.get('0023-20e3')!;
  assert.deepEqual(hash.keywords, ['symbol', 'keycap'], 'emojilib lists its snake_case name first: skipped');
  assert.deepEqual(hash.shortcodes, ['hash', 'number_sign']);
  assert.equal(hash.groupName, 'symbols', 'missing display names fall back to the slug in words');
  assert.equal(table.byKey.get('1f600')!.captions[2], 'grinning face: smile, happy, face, grin');
  assert.deepEqual(table.variants.get('1f44b-1f3ff'), { label: 'waving hand: dark skin tone', base: '1f44b', tone: 5 });
  assert.equal(table.emojilibMatched, 2);
  assert.equal(table.emojilibTotal, 3);
});

test('vendor image maps: has_img flag and file presence, keys normalized', () => {
  const files = new Set(['/g/0023-fe0f-20e3.png', '/g/1f600.png', '/o/0023-FE0F-20E3.svg']);
  const exists = (p: string) => files.has(p);
  const g = datasourceImages([
    { unified: '0023-FE0F-20E3', image: '0023-fe0f-20e3.png', has_img_google: true },
    { unified: '1F600', image: '1f600.png', has_img_google: false },
    { unified: '1F44B', image: '1f44b.png', has_img_google: true },
  ], 'google', '/g', exists);
  assert.deepEqual([...g], [['0023-20e3', '/g/0023-fe0f-20e3.png']]);
  const o = openmojiImages([{ hexcode: '0023-FE0F-20E3' }, { hexcode: '1F600' }], '/o', exists);
  assert.deepEqual([...o.keys()], ['0023-20e3']);
  assert.deepEqual(sharedConcepts(table, [g, o]).map((c) => c.key), ['0023-20e3']);
  assert.equal(imageName('animals/birds/blue jay'), 'animals__birds__blue_jay.png');
  // EmojiOne: by file name; FE0F and case normalized, the first of two spellings kept, other files skipped.
  const e = emojioneImages(['0023-20e3.png', '0023-fe0f-20e3.png', '1F600.png', 'sprite.png', '1f44b.svg'], '/e', '.png');
  assert.deepEqual([...e], [['0023-20e3', '/e/0023-20e3.png'], ['1f600', '/e/1F600.png']]);
});

test('Fluent names join by chars.json, then label, shortcode and tone; disagreements are reported', () => {
  const body = { body: '<path/>' };
  const json: IconifyJson = {
    prefix: 'fe', width: 32, height: 32,
    icons: { 'grinning-face': body, 'hash': body, 'hand-wave-dark': body, 'mystery': body, 'smile-thing': body, 'waving-hand': body, 'waving-hand-dark': body },
    aliases: { 'grinning-face-flipped': { parent: 'grinning-face', hFlip: true } },
  };
  // chars.json: one name its label confirms, one nothing can check, one its label contradicts.
  const j = joinFluent(json, { '1F600': 'grinning-face', '1F44B-FE0F': 'smile-thing', '0023-FE0F-20E3': 'waving-hand' }, table);
  assert.deepEqual(j.stats.byMethod, { chars: 3, label: 1, shortcode: 1, tone: 1 });
  assert.equal(j.stats.variants, 2, 'waving-hand-dark (label) and hand-wave-dark (shortcode "hand_wave" + tone)');
  assert.deepEqual(j.stats.unmatched, ['grinning-face-flipped', 'mystery']);
  assert.equal(j.stats.matched, 6);
  assert.deepEqual([j.stats.agree, j.stats.unchecked], [1, 1]);
  assert.deepEqual(j.stats.disagree, ['waving-hand: chars 0023-20e3, name 1f44b']);
  assert.deepEqual([...j.byKey].sort(), [['0023-20e3', 'hash'], ['1f44b', 'smile-thing'], ['1f600', 'grinning-face']]);
});

test('Iconify SVGs: alias flips become transforms; sized SVGs render white-backed RGB', async () => {
  const json: IconifyJson = { prefix: 'x', width: 32, height: 32, icons: { a: { body: '<rect width="16" height="32" fill="#f00"/>' } }, aliases: { b: { parent: 'a', hFlip: true } } };
  assert.match(iconSvg(json, 'b', 64), /width="64" height="64" viewBox="0 0 32 32"><g transform="translate\(32 0\) scale\(-1 1\)">/);
  assert.throws(() => iconSvg(json, 'nope', 64), /no icon or alias/);
  assert.equal(sizedSvg('<svg width="24" height="24" xmlns="http://www.w3.org/2000/svg"><g/></svg>', 64),
    '<svg width="64" height="64" viewBox="0 0 24 24" xmlns="http://www.w3.org/2000/svg"><g/></svg>');
  assert.match(sizedSvg('<svg id="emoji" viewBox="0 0 72 72"><g/></svg>', 64), /^<svg width="64" height="64" id="emoji" viewBox="0 0 72 72">/);
  const out = join(tmp, 'b.png');
  await svgToPng(iconSvg(json, 'b', 64), out, 64);
  const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [64, 64, 3]);
  const px = (x: number, y: number) => [...data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
  assert.deepEqual(px(2, 32), [255, 255, 255], 'left half: flipped away, white background');
  assert.deepEqual(px(60, 32), [255, 0, 0], 'right half: the flipped red rectangle');
});

test('Tux Paint descriptions: the untagged first line is English', () => {
  assert.equal(englishDescription('\ufeffAn Adelaide Rosella.\r\nfr.utf8=Une perruche.\n'), 'An Adelaide Rosella.');
  assert.equal(englishDescription('A calculator.  6x7=42\nde.utf8=Ein Taschenrechner.'), 'A calculator. 6x7=42');
  assert.equal(englishDescription('ca@valencia.utf8=Un periquito.\nen_GB.utf8=A parakeet.'), 'A parakeet.');
  assert.equal(englishDescription('fr.utf8=Un chat.\n'), undefined);
});

test('IDX reader: header, dims, gzip, and size checks', () => {
  const header = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
  const raw = Uint8Array.from([...header, ...Array.from({ length: 12 }, (_, i) => i)]);
  for (const bytes of [raw, new Uint8Array(gzipSync(raw))]) {
    const a = parseIdx(bytes);
    assert.deepEqual(a.dims, [2, 2, 3]);
    assert.deepEqual([...idxImage(a, 1)], [6, 7, 8, 9, 10, 11]);
  }
  assert.throws(() => parseIdx(raw.subarray(0, raw.length - 1)), /need 12/);
  assert.throws(() => parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 0])), /not supported/);
  assert.throws(() => parseIdx(Uint8Array.from([1, 2, 3, 4])), /bad magic/);
});

test('steps: built under a temp name, skipped when done, rebuilt when inputs change, nothing left on failure', async () => {
  const dir = join(tmp, 'steps', 'out');
  let builds = 0;
  const build = async (t: string) => { builds++; return { n: readdirSync(t).length }; };
  assert.deepEqual(await step('s', dir, { v: 1 }, build), { n: 0 });
  assert.deepEqual(await step('s', dir, { v: 1 }, build), { n: 0 });
  assert.equal(builds, 1, 'second run skipped');
  await step('s', dir, { v: 2 }, build);
  assert.equal(builds, 2, 'changed inputs rebuild');
  const dir2 = join(tmp, 'steps', 'fails');
  await assert.rejects(step('f', dir2, {}, async () => { throw new Error('boom'); }), /boom/);
  assert.equal(existsSync(dir2), false);
  assert.deepEqual(readdirSync(join(tmp, 'steps')).sort(), ['out'], 'no temp dirs left behind');
});

test('manifest helpers: JSONL round trip, class lists in emojibase order, cache location', () => {
  const rows = [
    { image: '/a.png', label: 'b', group: 'g2', order: 5 }, { image: '/b.png', label: 'a', group: 'g1', order: 1 }, { image: '/c.png', label: 'b', group: 'g2', order: 5 },
  ] as EmojiRow[];
  assert.deepEqual(parseJsonl(toJsonl(rows), 'x.jsonl'), rows);
  assert.throws(() => parseJsonl('{"a":1}\n{oops\n', 'x.jsonl'), /x\.jsonl:2:/);
  assert.deepEqual(emojiClasses(rows, 'label'), { classes: ['a', 'b'], targets: [1, 0, 1] });
  assert.deepEqual(asLabeledDataset(rows, 'group').samples.map((s) => s.label), [1, 0, 1]);
  assert.equal(clipCacheRoot({ CLIP_CACHE: '/c', XDG_CACHE_HOME: '/x' }), '/c');
  assert.equal(clipCacheRoot({ XDG_CACHE_HOME: '/x' }), join('/x', 'clip-ts'));
  assert.equal(dataRoot({ CLIP_CACHE: '/c' }), join('/c', 'data'));
  assert.ok(SOURCES.every((s) => (s.kind === 'npm' ? /^sha512-/.test(s.integrity) : /^[0-9a-f]{64}$/.test(s.sha256))), 'every source is pinned by checksum');
  assert.equal(FASHION_CLASSES.filter((c) => c.key).length, 8);
});

const SKIP_DATA: string | false = dataReady() ? false : `prepared benchmark not found at ${dataRoot()} (run \`npm run data\`)`;

test('prepared benchmark: summary counts agree with the manifests', { skip: SKIP_DATA }, () => {
  const s = readSummary();
  const z = s.splits.zeroshot;
  assert.equal(z.groups, 9, 'every emojibase group except "component"');
  assert.ok(z.concepts > 1500 && z.subgroups > 90, `shared concepts ${z.concepts}, subgroups ${z.subgroups}`);
  assert.equal(z.labels, z.concepts, 'one label per concept');
  assert.equal(z.rows, 4 * z.concepts);
  assert.deepEqual(Object.values(z.perStyle), [z.concepts, z.concepts, z.concepts, z.concepts]);
  assert.ok(s.fluentJoin.matchRate > 0.95, `fluent match rate ${s.fluentJoin.matchRate}`);
  assert.deepEqual(s.fluentJoin.disagree, []);
  assert.equal(s.splits['fashion-mnist'].rows, 8000);
  const lines = (split: string) => readFileSync(join(s.root, 'manifests', `${split}.jsonl`), 'utf8').split('\n').filter(Boolean).length;
  assert.equal(lines('train'), s.splits.train.rows);
  const per = s.splits.train.perStyle;
  assert.deepEqual(Object.keys(per), ['google', 'twitter', 'emojione', 'emojione-bw'], 'Noto and Twemoji first, then EmojiOne');
  assert.ok(per.emojione! > 1300 && per['emojione-bw']! > 1300, JSON.stringify(per));
  assert.equal(lines('zeroshot'), z.rows);
  assert.equal(lines('tuxpaint'), s.splits.tuxpaint.pairs);
  const zs = readManifest('zeroshot');
  assert.equal(emojiClasses(zs, 'subgroup').classes.length, z.subgroups);
  for (const r of [zs[0]!, zs[zs.length - 1]!, readManifest('train')[0]!, readManifest('tuxpaint')[0]!]) assert.ok(existsSync(r.image), r.image);
});

test('prepared clip art: titled drawings with captions, none close to a Tux Paint stamp', { skip: SKIP_DATA || (readSummary().splits.clipart ? false : 'prepared without icons') }, async () => {
  const c = readSummary().splits.clipart!;
  const rows = readManifest('clipart');
  assert.equal(rows.length, c.rows);
  assert.ok(c.rows > 2500 && c.tuxDuplicates > 50, JSON.stringify(c));
  assert.ok(rows.every((r) => r.captions[0] === r.title.toLowerCase() && !r.id.startsWith('computer/icons/')));
  // Recomputed from the files: no kept drawing is within the threshold of a stamp.
  const stamps = await Promise.all(readManifest('tuxpaint').map((r) => thumbnail(r.image)));
  const kept = await Promise.all(rows.filter((_, i) => i % 10 === 0).map((r) => thumbnail(r.image)));
  assert.deepEqual(tuxDuplicates(kept, stamps, TUX_DUPLICATE_THRESHOLD), []);
});

test('Open Clip Art metadata: the work\'s title and keywords; theme and author titles refused; near-duplicates by pixels', async () => {
  const svg = `<svg><metadata><rdf:RDF><cc:Work rdf:about=""><dc:title>Red &amp; white_mushroom</dc:title><dc:subject><rdf:Bag>
    <rdf:li>hash</rdf:li><rdf:li>Fungus</rdf:li><rdf:li>red &amp; white mushroom</rdf:li><rdf:li>unsorted</rdf:li><rdf:li>fungus</rdf:li><rdf:li>42</rdf:li>
    </rdf:Bag></dc:subject></cc:Work><cc:Agent><dc:title>Open Clip Art Library</dc:title></cc:Agent></rdf:RDF></metadata></svg>`;
  assert.deepEqual(clipartMetadata(svg), { title: 'Red & white mushroom', keywords: ['fungus'] });
  assert.deepEqual(clipartCaptions({ title: 'Red & white mushroom', keywords: ['fungus'] }), ['red & white mushroom', 'a clip art of red & white mushroom', 'red & white mushroom: fungus']);
  assert.equal(clipartMetadata('<svg><cc:Agent><dc:title>Someone</dc:title></cc:Agent></svg>').title, undefined, 'only the work\'s own title');
  for (const t of ['lemon svg theme', 'part of the flat icon collection (wed aug 25 23:23:49 2004)', 'clipart by nicu buculei - fc23', 'etiquette icons']) assert.equal(usableTitle(t), undefined, t);
  assert.equal(usableTitle('06_waninggibbous_openclipart'), '06 waninggibbous');
  // Thumbnails: a stamp drawn larger, and as another file, still matches; an unrelated drawing and a blank do not.
  const dir = mkdtempSync(join(tmpdir(), 'clipart-'));
  try {
    const draw = (name: string, body: string, size: number) => svgToPng(`<svg viewBox="0 0 10 10">${body}</svg>`, join(dir, name), size).then(() => thumbnail(join(dir, name)));
    const apple = '<circle cx="5" cy="5" r="3.5" fill="red"/><rect x="4.6" y="0.5" width="0.8" height="2"/>';
    const stamp = await draw('stamp.png', apple, 224);
    const same = await draw('same.png', apple, 64);
    const other = await draw('other.png', '<path d="M0 10 L5 0 L10 10 Z" fill="green"/>', 64);
    const blank = await draw('blank.png', '', 64);
    assert.deepEqual(tuxDuplicates([other, same, blank], [stamp], TUX_DUPLICATE_THRESHOLD), [1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
