// Our CLIP BPE trainer: the files it writes must load in both tokenizer modes (HF library and our OpenAI port) and
// give identical ids, with CLIP's vocabulary layout.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bytesToUnicode, loadTokenizer, tokenizerFromJson, trainClipBpe, writeClipBpe, type TextTokenizer, type TokenizerJson } from '../src/text/index.js';
import { clipWords } from '../src/text/train-bpe.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

// A deterministic caption corpus: seeded LCG over small word lists (very frequent words) plus made-up words drawn
// with a skewed distribution (a long tail, so there are enough pairs to fill the vocabulary).
function corpus(n: number, seed = 1): string[] {
  let s = seed >>> 0;
  const rnd = (k: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s >>> 8) % k; };
  const syl = ['ka', 'lo', 'mi', 'ran', 'te', 'zu', 'ver', 'po', 'shi', 'gle', 'an', 'dor', 'bi', 'sta', 'qua', 'ne'];
  const made = Array.from({ length: 1500 }, () => Array.from({ length: 2 + rnd(3) }, () => syl[rnd(syl.length)]).join(''));
  const rare = () => made[Math.min(rnd(made.length), rnd(made.length), rnd(made.length))]!;
  const adj = ['red', 'small', 'fluffy', 'bright', 'old', 'wooden', 'shiny', 'dark'];
  const noun = ['cat', 'dog', 'house', 'car', 'tree', 'flower', 'bicycle', 'mountain', 'photograph', 'painting'];
  const tmpl = [
    (a: string, b: string) => `a photo of a ${a} ${b}`,
    (a: string, b: string) => `A ${a.toUpperCase()} ${b}, in the garden.`,
    (a: string, b: string) => `the ${b}'s ${a} colour (${rnd(10)})`,
    (a: string, b: string) => `an illustration of   the ${b} -- ${a}!`,
    (a: string, b: string) => `${b}: ${a}, café & crème`,
  ];
  return Array.from({ length: n }, () => `${tmpl[rnd(tmpl.length)]!(adj[rnd(adj.length)]!, noun[rnd(noun.length)]!)} ${rare()} ${rare()}`);
}

/** Reference BPE training, slow and obvious: recount all pairs, take the best (ties: smallest "a b"), merge everywhere. */
function naiveMerges(texts: string[], maxMerges: number, minFrequency: number): Array<[string, string]> {
  const freq = new Map<string, number>();
  for (const t of texts) for (const w of clipWords(t)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const words = [...freq].map(([w, f]) => {
    const syms = Array.from(new TextEncoder().encode(w), (b) => byteChars[b]!);
    syms[syms.length - 1] += '</w>';
    return { syms, f };
  });
  const merges: Array<[string, string]> = [];
  while (merges.length < maxMerges) {
    const counts = new Map<string, number>();
    for (const { syms, f } of words) for (let i = 0; i + 1 < syms.length; i++) counts.set(`${syms[i]} ${syms[i + 1]}`, (counts.get(`${syms[i]} ${syms[i + 1]}`) ?? 0) + f);
    let best = '';
    let bestCount = 0;
    for (const [p, c] of counts) if (c > bestCount || (c === bestCount && p < best)) { best = p; bestCount = c; }
    if (bestCount < minFrequency) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    for (const w of words) {
      const next: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) { next.push(a + b); i++; } else next.push(w.syms[i]!);
      }
      w.syms = next;
    }
  }
  return merges;
}

const PROBES = [
  'a photo of a cat',
  'A PHOTO of a Dog.',
  "the dog's ball isn't here, they're gone; we'll see what you'd do",
  'Numbers: 12345 and 3.14159 and 1,000,000!!!',
  'café crème brûlée naïve Ångström Zoë',
  'emoji 😀🐈‍⬛ 🦄 and ❤️ hearts',
  'unknownwordxyz qqqzzz supercalifragilistic',
  '日本語のテキスト 中文 한국어 Ελληνικά русский',
  'tabs\tand\nnewlines   and  spaces ',
  '"quotes" (parens) [brackets] {braces} <angles> @#$%^&*_+=|\\/~`',
  '<|startoftext|> inline specials <|endoftext|>',
  '',
];

const full = (tok: TextTokenizer, t: string) => tok.encode(t);
// A word's final BPE token string: its UTF-8 bytes through the byte alphabet, plus '</w>'.
const byteChars = bytesToUnicode();
const wordToken = (w: string) => Array.from(new TextEncoder().encode(w), (b) => byteChars[b]).join('') + '</w>';

describe('trainClipBpe', () => {
  const texts = corpus(3000);
  const result = trainClipBpe(texts, { vocabSize: 900 });
  const json = result.tokenizerJson;
  const model = json.model as { vocab: Record<string, number>; merges: Array<[string, string]> };
  const dir = mkdtempSync(join(tmpdir(), 'clip-bpe-'));
  writeClipBpe(dir, result);
  after(() => rmSync(dir, { recursive: true, force: true }));
  const hf = loadTokenizer(dir);
  const oa = loadTokenizer(dir, { mode: 'openai' });

  it('is deterministic and independent of input order', () => {
    const again = trainClipBpe(texts, { vocabSize: 900 });
    assert.equal(JSON.stringify(again), JSON.stringify(result));
    const reversed = trainClipBpe([...texts].reverse(), { vocabSize: 900 });
    assert.equal(JSON.stringify(reversed.tokenizerJson), JSON.stringify(result.tokenizerJson));
    const d2 = mkdtempSync(join(tmpdir(), 'clip-bpe-'));
    try {
      writeClipBpe(d2, again);
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
        assert.ok(readFileSync(join(d2, f)).equals(readFileSync(join(dir, f))), f);
      }
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });

  it('obeys vocabSize with CLIP layout: bytes, bytes+</w>, merges, SOT, EOT', () => {
    assert.deepEqual(result.stats.vocab, 900);
    const ids = Object.values(model.vocab).sort((a, b) => a - b);
    assert.deepEqual(ids, Array.from({ length: 900 }, (_, i) => i));
    assert.equal(model.vocab['<|startoftext|>'], 898);
    assert.equal(model.vocab['<|endoftext|>'], 899);
    assert.equal(model.merges.length, 900 - 514);
    assert.equal(result.stats.merges, model.merges.length);
    const byId: string[] = [];
    for (const [t, i] of Object.entries(model.vocab)) byId[i] = t;
    for (let i = 0; i < 256; i++) assert.equal(byId[256 + i], byId[i] + '</w>');
    model.merges.forEach(([a, b], i) => assert.equal(byId[512 + i], a + b, `merge ${i}`));
    assert.equal(hf.vocabSize, 900);
    assert.equal(oa.vocabSize, 900);
    assert.deepEqual([hf.startId, hf.endId, hf.padId, hf.contextLength], [898, 899, 899, 77]);
    assert.deepEqual([oa.startId, oa.endId, oa.contextLength], [898, 899, 77]);
    assert.throws(() => trainClipBpe(texts, { vocabSize: 513 }), /vocabSize/);
  });

  it('stops early when no pair reaches minFrequency', () => {
    const none = trainClipBpe(texts, { vocabSize: 5000, minFrequency: 1e9 });
    assert.deepEqual(none.stats, { words: result.stats.words, merges: 0, vocab: 514 });
    const some = trainClipBpe(texts, { vocabSize: 100_000, minFrequency: 50 });
    assert.ok(some.stats.vocab < 100_000 && some.stats.merges > 0, JSON.stringify(some.stats));
  });

  it('learns the same merges as a naive trainer that recounts every pair each step', () => {
    // The incremental pair counts and pair->words index must never drift from a full recount.
    const small = corpus(400, 7);
    const want = naiveMerges(small, 700 - 514, 2);
    assert.equal(want.length, 700 - 514);
    assert.deepEqual(trainClipBpe(small, { vocabSize: 700 }).tokenizerJson.model.merges, want);
    assert.deepEqual(trainClipBpe(small, { vocabSize: 100_000, minFrequency: 5 }).tokenizerJson.model.merges, naiveMerges(small, Infinity, 5));
  });

  it('breaks count ties by the smallest "a b" string', () => {
    const r = trainClipBpe(['cd ab'], { vocabSize: 515, minFrequency: 1 });
    assert.deepEqual(r.tokenizerJson.model.merges, [['a', 'b</w>']]);
  });

  it('gives identical ids in HF mode and OpenAI mode (from files and from JSON)', () => {
    const fromJson = tokenizerFromJson(json, result.tokenizerConfigJson);
    const fromJsonOa = tokenizerFromJson(json, {}, { mode: 'openai' });
    for (const t of [...PROBES, ...texts.slice(0, 300)]) {
      const want = full(hf, t);
      assert.deepEqual(full(oa, t), want, t);
      assert.deepEqual(full(fromJson, t), want, t);
      assert.deepEqual(full(fromJsonOa, t), want, t);
    }
  });

  it('makes frequent training words a single token', () => {
    const freq = new Map<string, number>();
    for (const t of texts) for (const w of clipWords(t)) freq.set(w, (freq.get(w) ?? 0) + 1);
    const frequent = [...freq].filter(([, n]) => n >= 100).map(([w]) => w);
    assert.ok(['photograph', 'bicycle', 'café'].every((w) => frequent.includes(w)) && frequent.length > 30, String(frequent.length));
    for (const w of frequent) {
      assert.deepEqual(hf.tokenize(w), [model.vocab[wordToken(w)]], w);
      assert.deepEqual(oa.tokenize(w), hf.tokenize(w), w);
    }
    // A frequent word also stays whole inside a sentence.
    assert.ok(hf.tokenize('a fluffy bicycle').includes(model.vocab['bicycle</w>']!));
  });

  it('decodes ids back to the normalized words', () => {
    for (const t of PROBES) {
      const words = clipWords(t).filter((w) => w !== '<|startoftext|>' && w !== '<|endoftext|>').join(' ');
      assert.equal(hf.decode(hf.encode(t)), words, t);
      // OpenAI's decode keeps special tokens; drop them as HF does.
      assert.equal(oa.decode(oa.tokenize(t).filter((id) => id !== oa.startId && id !== oa.endId)).trim(), words, t);
    }
  });

  it('encodes characters never seen in training through the byte alphabet', () => {
    const t = '日本 🦄 ∑ ß Ω';
    for (const w of clipWords(t)) assert.ok(!texts.some((x) => x.includes(w)), w);
    const ids = hf.tokenize(t);
    assert.ok(ids.length >= new TextEncoder().encode(t.replaceAll(' ', '')).length - 5);
    assert.ok(ids.every((id) => id >= 0 && id < 898), 'no special or unknown ids');
    assert.equal(hf.decode(ids), '日本 🦄 ∑ ß ω');
    assert.deepEqual(oa.tokenize(t), ids);
  });

  it('writes the configs CLIPTokenizer expects', () => {
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.deepEqual(cfg, {
      bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', model_max_length: 77,
      pad_token: '<|endoftext|>', tokenizer_class: 'CLIPTokenizer', unk_token: '<|endoftext|>',
    });
    const stm = JSON.parse(readFileSync(join(dir, 'special_tokens_map.json'), 'utf8'));
    assert.deepEqual(stm, { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' });
    const d2 = mkdtempSync(join(tmpdir(), 'clip-bpe-'));
    try {
      writeClipBpe(d2, trainClipBpe(texts, { vocabSize: 600, contextLength: 32 }));
      assert.equal(loadTokenizer(d2).contextLength, 32);
      assert.equal(loadTokenizer(d2, { mode: 'openai' }).contextLength, 32);
      assert.equal(loadTokenizer(d2).encode('a photo '.repeat(40)).length, 32);
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });
});

describe('trainClipBpe against the reference CLIP tokenizer files', { skip: SKIP_FIXTURES }, () => {
  interface ClipCase { text: string; hf_input_ids: number[]; openai_ids: number[] }
  const cases = SKIP_FIXTURES ? [] : JSON.parse(readFileSync(fixture('common', 'tokens-clip.json'), 'utf8')) as ClipCase[];
  const ref = SKIP_FIXTURES ? undefined! : JSON.parse(readFileSync(fixture('hf-clip-tiny', 'tokenizer.json'), 'utf8')) as TokenizerJson;

  it('has the structure of the HF CLIP tokenizer.json', () => {
    const r = trainClipBpe(corpus(500), { vocabSize: 700 });
    const j = r.tokenizerJson;
    assert.equal(r.stats.vocab, 700);
    for (const k of ['version', 'truncation', 'padding', 'normalizer', 'pre_tokenizer', 'decoder']) assert.deepEqual(j[k], ref[k], k);
    const swapIds = (x: unknown) => JSON.parse(JSON.stringify(x).replaceAll('49406', '698').replaceAll('49407', '699'));
    assert.deepEqual(j.post_processor, swapIds(ref.post_processor));
    assert.deepEqual(j.added_tokens, swapIds(ref.added_tokens));
    const { vocab: _v, merges: refMerges, ...refModel } = ref.model;
    const { vocab, merges, ...model } = j.model;
    assert.deepEqual(model, refModel);
    assert.ok(Array.isArray((refMerges as unknown[])[0]) && Array.isArray((merges as unknown[])[0]), 'merges as [a, b] pairs');
    // The 512 byte tokens keep CLIP's ids.
    const refVocab = ref.model.vocab as Record<string, number>;
    for (const [t, id] of Object.entries(vocab as Record<string, number>)) if (id < 512) assert.equal(refVocab[t], id, t);
  });

  it('trains on the reference captions (smoke corpus) and agrees across modes', () => {
    const t0 = performance.now();
    const r = trainClipBpe(cases.map((c) => c.text), { vocabSize: 2000, minFrequency: 1 });
    const ms = performance.now() - t0;
    assert.ok(r.stats.words > 100 && r.stats.merges > 100, JSON.stringify(r.stats));
    const json = r.tokenizerJson;
    const hf = tokenizerFromJson(json, r.tokenizerConfigJson);
    const oa = tokenizerFromJson(json, {}, { mode: 'openai' });
    // The references themselves differ between modes on a couple of texts (NFC, HTML entities); compare the rest.
    const agree = cases.filter((c) => JSON.stringify(c.hf_input_ids) === JSON.stringify(c.openai_ids));
    assert.ok(agree.length >= cases.length - 5);
    const bad = agree.filter((c) => JSON.stringify(hf.encode(c.text)) !== JSON.stringify(oa.encode(c.text))).map((c) => c.text);
    assert.deepEqual(bad, []);
    assert.ok(ms < 10_000, `training took ${ms} ms`);
  });
});

if (SKIP_FIXTURES) console.log(`train-bpe: skipping the reference-file checks: ${SKIP_FIXTURES}`);
