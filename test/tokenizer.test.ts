// Tokenizers against the Python reference ids (HF CLIPTokenizer, OpenAI SimpleTokenizer, BERT-Chinese WordPiece).
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  batchRow, bpeVocabFromOpenAIMerges, htmlUnescape, openaiCleanText, OpenAIClipTokenizer,
  tokenizerFromJson, type TextTokenizer,
} from '../src/text/index.js';
// A model directory's tokenizer as its family uses it (the public `loadTokenizer`).
import { loadTokenizer } from '../src/models/tokenizer.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

interface ClipCase { text: string; hf_input_ids: number[]; openai_ids: number[]; hf_padded_77: number[]; decoded: string }
interface ZhCase { text: string; input_ids: number[]; padded_52: number[] }

const readJson = <T>(...p: string[]): T => JSON.parse(readFileSync(fixture(...p), 'utf8')) as T;

/** Minimal safetensors reader for the int64 goldens: 8-byte header length, JSON header, raw little-endian data. */
function readI64(file: string, name: string): { shape: number[]; rows: number[][] } {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const t = header[name];
  if (!t || t.dtype !== 'I64') throw new Error(`${file}: no I64 tensor ${name}`);
  const [b, len] = t.shape as [number, number];
  const base = 8 + n + t.data_offsets[0];
  const rows: number[][] = [];
  for (let i = 0; i < b; i++) {
    const row: number[] = [];
    for (let j = 0; j < len; j++) row.push(Number(buf.readBigInt64LE(base + (i * len + j) * 8)));
    rows.push(row);
  }
  return { shape: t.shape, rows };
}

const full = (tok: TextTokenizer, text: string) => [tok.startId!, ...tok.tokenize(text), tok.endId!];

/** Checks every case, collecting failures so one message reports the pass count and the first mismatches. */
function expectAll<C extends { text: string }>(cases: C[], label: string, got: (c: C) => unknown, want: (c: C) => unknown): number {
  const bad: string[] = [];
  for (const c of cases) {
    const g = got(c);
    const w = want(c);
    if (JSON.stringify(g) !== JSON.stringify(w)) bad.push(`${JSON.stringify(c.text).slice(0, 80)}: got ${JSON.stringify(g).slice(0, 200)} want ${JSON.stringify(w).slice(0, 200)}`);
  }
  assert.equal(bad.length, 0, `${label}: ${cases.length - bad.length}/${cases.length} match; first mismatches:\n${bad.slice(0, 5).join('\n')}`);
  return cases.length;
}

describe('CLIP BPE, HF mode', { skip: SKIP_FIXTURES }, () => {
  const cases = SKIP_FIXTURES ? [] : readJson<ClipCase[]>('common', 'tokens-clip.json');
  const tok = SKIP_FIXTURES ? undefined! : loadTokenizer(fixture('common', 'tokenizer-clip'));

  it('is a 77-token BPE tokenizer padding with EOT', () => {
    assert.equal(cases.length, 254);
    assert.equal(tok.kind, 'clip-bpe');
    assert.equal(tok.contextLength, 77);
    assert.deepEqual([tok.startId, tok.endId, tok.padId, tok.vocabSize], [49406, 49407, 49407, 49408]);
  });

  it('matches hf_input_ids on all texts (untruncated)', () => {
    expectAll(cases, 'hf_input_ids', (c) => full(tok, c.text), (c) => c.hf_input_ids);
  });

  it('matches hf_padded_77 on all texts (truncation keeps EOT last, padding with EOT)', () => {
    const b = tok.encodeBatch(cases.map((c) => c.text));
    assert.deepEqual(b.dims, [254, 77]);
    expectAll(cases.map((c, i) => ({ ...c, i })), 'hf_padded_77', (c) => batchRow(b, c.i), (c) => c.hf_padded_77);
    cases.forEach((c, i) => {
      const n = Math.min(c.hf_input_ids.length, 77);
      assert.equal(b.lengths[i], n);
      assert.deepEqual(batchRow(b, i, 'attentionMask'), Array.from({ length: 77 }, (_, j) => (j < n ? 1 : 0)));
      assert.equal(b.eotIndex[i], n - 1);
      assert.deepEqual(tok.encode(c.text), c.hf_padded_77.slice(0, n));
    });
    assert.ok(cases.some((c) => c.hf_input_ids.length > 77), 'fixtures include a text longer than the context');
  });

  it('decodes to the fixture text', () => {
    expectAll(cases, 'decoded', (c) => tok.decode(c.hf_input_ids), (c) => c.decoded);
  });

  it('matches the hf-clip-tiny golden batch', () => {
    const golden = JSON.parse(readFileSync(fixture('hf-clip-tiny', 'golden.json'), 'utf8')) as { captions: string[] };
    const ids = readI64(fixture('hf-clip-tiny', 'golden.safetensors'), 'input_ids');
    const mask = readI64(fixture('hf-clip-tiny', 'golden.safetensors'), 'attention_mask');
    const model = loadTokenizer(fixture('hf-clip-tiny'));
    assert.equal(model.contextLength, 77);
    const b = model.encodeBatch(golden.captions);
    golden.captions.forEach((_, i) => {
      assert.deepEqual(batchRow(b, i), ids.rows[i]);
      assert.deepEqual(batchRow(b, i, 'attentionMask'), mask.rows[i]);
    });
  });
});

describe('CLIP BPE, OpenAI mode', { skip: SKIP_FIXTURES }, () => {
  const cases = SKIP_FIXTURES ? [] : readJson<ClipCase[]>('common', 'tokens-clip.json');
  const tok = SKIP_FIXTURES ? undefined! : loadTokenizer(fixture('common', 'tokenizer-clip'), { mode: 'openai' });

  it('matches openai_ids on all texts (untruncated)', () => {
    assert.equal(tok.kind, 'openai-bpe');
    assert.equal(tok.padId, 0);
    expectAll(cases, 'openai_ids', (c) => full(tok, c.text), (c) => c.openai_ids);
  });

  it('differs from HF exactly where the references do (NFC, double HTML unescape)', () => {
    const hf = loadTokenizer(fixture('common', 'tokenizer-clip'));
    const differ = cases.filter((c) => JSON.stringify(full(tok, c.text)) !== JSON.stringify(full(hf, c.text))).map((c) => c.text);
    assert.deepEqual(differ, cases.filter((c) => JSON.stringify(c.openai_ids) !== JSON.stringify(c.hf_input_ids)).map((c) => c.text));
    assert.equal(differ.length, 2);
  });

  it('pads with zeros and truncates like clip.tokenize(truncate=True)', () => {
    const b = tok.encodeBatch(cases.map((c) => c.text));
    cases.forEach((c, i) => {
      const ids = c.openai_ids.length > 77 ? [...c.openai_ids.slice(0, 76), 49407] : c.openai_ids;
      assert.deepEqual(batchRow(b, i), [...ids, ...new Array<number>(77 - ids.length).fill(0)]);
      assert.equal(b.eotIndex[i], ids.length - 1);
    });
  });

  it('matches the openai-vit-tiny and openai-rn-tiny golden tokens', () => {
    for (const model of ['openai-vit-tiny', 'openai-rn-tiny']) {
      const golden = JSON.parse(readFileSync(fixture(model, 'golden.json'), 'utf8')) as { captions: string[] };
      const want = readI64(fixture(model, 'golden.safetensors'), 'tokens');
      const b = tok.encodeBatch(golden.captions);
      golden.captions.forEach((_, i) => assert.deepEqual(batchRow(b, i), want.rows[i], `${model} row ${i}`));
    }
  });

  it('builds the same vocabulary from merges.txt alone (OpenAI bpe_simple_vocab layout)', () => {
    const fromMerges = bpeVocabFromOpenAIMerges(readFileSync(fixture('common', 'tokenizer-clip', 'merges.txt'), 'utf8'));
    const vocab = readJson<Record<string, number>>('common', 'tokenizer-clip', 'vocab.json');
    assert.deepEqual(fromMerges.vocab, vocab);
    const t2 = new OpenAIClipTokenizer(fromMerges);
    for (const c of cases.slice(0, 40)) assert.deepEqual(full(t2, c.text), c.openai_ids);
  });

  it('decodes like SimpleTokenizer.decode', () => {
    assert.equal(tok.decode(tok.tokenize("Don't stop: naïve café!")), "don 't stop : naïve café ! ");
  });
});

describe('OpenAI text cleaning', () => {
  it('unescapes HTML like Python html.unescape', () => {
    // Expected values from Python 3.11 html.unescape.
    const cases: Array<[string, string]> = [
      ['&amp; &lt;b&gt;', '& <b>'], ['&amp;amp;', '&amp;'], ['&#65;&#x42;&#X43', 'ABC'], ['&#0;', '\ufffd'],
      ['&#128;&#x9f;', '\u20ac\u0178'], ['&#127;&#1;&#11;', ''], ['&#xD800;&#x110000;', '\ufffd\ufffd'], ['&#xFFFE;', ''],
      ['&ampfoo', '&foo'], ['&notit;', '\u00acit;'], ['&notin;', '\u2209'], ['&eacute&Eacute;', '\u00e9\u00c9'],
      ['&foo; & ;', '&foo; & ;'], ['&#x1F600;', '\u{1F600}'], ['&lang;&rang;', '\u27e8\u27e9'], ['&apos;&quot', '\'"'],
      ['&nbsp;&hellip;&mdash;&rsquo;', '\u00a0\u2026\u2014\u2019'], ['&ltri;', '\u25c3'], ['&AMP&COPY;', '&\u00a9'],
    ];
    for (const [input, want] of cases) assert.equal(htmlUnescape(input), want, input);
  });

  it('cleans whitespace like Python regex \\s and str.strip', () => {
    // U+0085 is whitespace for Python (not JS); U+FEFF is for JS (not Python); U+001C..U+001F only for str.strip().
    assert.equal(openaiCleanText('  A\u0085B\t\nC  '), 'a b c');
    assert.equal(openaiCleanText('a\ufeffb'), 'a\ufeffb');
    assert.equal(openaiCleanText('\x1ca\x1cb\x1c'), 'a\x1cb');
    assert.equal(openaiCleanText('&amp;lt;'), '<');
  });
});

describe('BERT WordPiece (Chinese-CLIP, Taiyi)', { skip: SKIP_FIXTURES }, () => {
  const cases = SKIP_FIXTURES ? [] : readJson<ZhCase[]>('common', 'tokens-zh.json');
  const tok = SKIP_FIXTURES ? undefined! : loadTokenizer(fixture('common', 'tokenizer-zh'));

  it('is a 52-token WordPiece tokenizer padding with [PAD]=0', () => {
    assert.equal(cases.length, 312);
    assert.equal(tok.kind, 'wordpiece');
    assert.equal(tok.contextLength, 52);
    assert.deepEqual([tok.startId, tok.endId, tok.padId, tok.vocabSize], [101, 102, 0, 21128]);
  });

  it('matches input_ids on all texts', () => {
    expectAll(cases, 'input_ids', (c) => tok.encode(c.text), (c) => c.input_ids);
  });

  it('matches padded_52 on all texts', () => {
    const b = tok.encodeBatch(cases.map((c) => c.text));
    assert.deepEqual(b.dims, [312, 52]);
    expectAll(cases.map((c, i) => ({ ...c, i })), 'padded_52', (c) => batchRow(b, c.i), (c) => c.padded_52);
    assert.ok(b.tokenTypeIds.every((v) => v === 0n));
  });

  it('truncates to 52 keeping [SEP] last', () => {
    const long = '一只猫'.repeat(40);
    const ids = tok.encode(long);
    assert.equal(ids.length, 52);
    assert.deepEqual([ids[0], ids[51]], [101, 102]);
    assert.deepEqual(ids.slice(1, 51), tok.tokenize(long).slice(0, 50));
  });

  it('matches the zh-clip-tiny golden batch (ids, mask, token types)', () => {
    const golden = JSON.parse(readFileSync(fixture('zh-clip-tiny', 'golden.json'), 'utf8')) as { captions: string[] };
    const file = fixture('zh-clip-tiny', 'golden.safetensors');
    const model = loadTokenizer(fixture('zh-clip-tiny'));
    assert.equal(model.contextLength, 52);
    const b = model.encodeBatch(golden.captions);
    for (const [name, key] of [['input_ids', 'inputIds'], ['attention_mask', 'attentionMask'], ['token_type_ids', 'tokenTypeIds']] as const) {
      const want = readI64(file, name);
      golden.captions.forEach((_, i) => assert.deepEqual(batchRow(b, i, key), want.rows[i], `${name} row ${i}`));
    }
  });

  it('matches the taiyi-text-tiny golden batch (padding to the longest)', () => {
    const golden = JSON.parse(readFileSync(fixture('taiyi-text-tiny', 'golden.json'), 'utf8')) as { labels: string[] };
    const file = fixture('taiyi-text-tiny', 'golden.safetensors');
    const model = loadTokenizer(fixture('taiyi-text-tiny'));
    assert.equal(model.contextLength, 512);
    const b = model.encodeBatch(golden.labels, { pad: 'longest' });
    const ids = readI64(file, 'input_ids');
    const mask = readI64(file, 'attention_mask');
    assert.deepEqual(b.dims, ids.shape);
    golden.labels.forEach((_, i) => {
      assert.deepEqual(batchRow(b, i), ids.rows[i]);
      assert.deepEqual(batchRow(b, i, 'attentionMask'), mask.rows[i]);
    });
  });
});

describe('batching and loading', { skip: SKIP_FIXTURES }, () => {
  it('pads to the longest row with the same ids and eotIndex as max padding', () => {
    const texts = ['a dog', 'a photo of a big red fire truck parked outside', '', 'cat'];
    for (const [dir, mode] of [['tokenizer-clip', 'hf'], ['tokenizer-clip', 'openai'], ['tokenizer-zh', 'hf']] as const) {
      const tok = loadTokenizer(fixture('common', dir), { mode });
      const max = tok.encodeBatch(texts);
      const longest = tok.encodeBatch(texts, { pad: 'longest' });
      const rows = texts.map((t) => tok.encode(t));
      assert.equal(longest.length, Math.max(...rows.map((r) => r.length)));
      assert.deepEqual(longest.eotIndex, max.eotIndex);
      assert.deepEqual(longest.lengths, max.lengths);
      texts.forEach((_, i) => {
        assert.deepEqual(batchRow(longest, i), batchRow(max, i).slice(0, longest.length));
        assert.deepEqual(batchRow(longest, i, 'attentionMask'), batchRow(max, i, 'attentionMask').slice(0, longest.length));
        assert.equal(batchRow(longest, i)[longest.eotIndex[i]!], tok.endId);
      });
      assert.deepEqual(tok.pad(rows, { pad: 'longest' }), longest);
    }
  });

  it('builds tokenizers from parsed JSON', () => {
    const json = readJson<any>('common', 'tokenizer-zh', 'tokenizer.json');
    const cfg = readJson<any>('common', 'tokenizer-zh', 'tokenizer_config.json');
    const tok = tokenizerFromJson(json, cfg, { contextLength: 8 });
    assert.equal(tok.kind, 'wordpiece');
    const ref = readJson<ZhCase[]>('common', 'tokens-zh.json').find((c) => c.text === '一只猫的照片')!.input_ids;
    assert.equal(ref.length, 8);
    assert.deepEqual(tok.encode('一只猫的照片一只猫的照片'), ref);
    const clip = tokenizerFromJson(readJson<any>('common', 'tokenizer-clip', 'tokenizer.json'), {}, { mode: 'openai' });
    assert.equal(clip.kind, 'openai-bpe');
  });

  it('names the missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
    try {
      assert.throws(() => loadTokenizer(dir), (e: Error) => e.message.includes(join(dir, 'tokenizer.json')));
      copyFileSync(fixture('common', 'tokenizer-clip', 'tokenizer.json'), join(dir, 'tokenizer.json'));
      // tokenizer_config.json is optional (as in transformers): tokenizer.json alone says how to tokenize.
      assert.deepEqual(loadTokenizer(dir).encode('a photo'), loadTokenizer(fixture('common', 'tokenizer-clip')).encode('a photo'));
      writeFileSync(join(dir, 'tokenizer_config.json'), '{ not json');
      assert.throws(() => loadTokenizer(dir), /invalid JSON/);
      assert.throws(() => loadTokenizer(fixture('openai-vit-tiny')), /tokenizer\.json not found.*open_clip/);
      assert.throws(() => loadTokenizer(fixture('openai-vit-tiny'), { mode: 'openai' }), /no CLIP BPE vocabulary/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('benchmarks 10k captions (printed, not asserted)', () => {
    const cases = readJson<ClipCase[]>('common', 'tokens-clip.json');
    // Unique captions (index appended) so per-word caches see realistic reuse rather than identical strings.
    const caps = Array.from({ length: 10_000 }, (_, i) => `${cases[i % cases.length]!.text} ${i}`);
    const zh = readJson<ZhCase[]>('common', 'tokens-zh.json');
    const zhCaps = Array.from({ length: 10_000 }, (_, i) => `${zh[i % zh.length]!.text}${i}`);
    const runs: Array<[string, TextTokenizer, string[]]> = [
      ['clip hf', loadTokenizer(fixture('common', 'tokenizer-clip')), caps],
      ['clip openai', loadTokenizer(fixture('common', 'tokenizer-clip'), { mode: 'openai' }), caps],
      ['bert zh', loadTokenizer(fixture('common', 'tokenizer-zh')), zhCaps],
    ];
    for (const [name, tok, texts] of runs) {
      for (const pass of ['cold', 'warm']) {
        const t0 = performance.now();
        const b = tok.encodeBatch(texts, { pad: 'longest' });
        const ms = performance.now() - t0;
        const n = b.lengths.reduce((a, x) => a + x, 0);
        console.log(`[bench] ${name} ${pass}: 10k captions, ${n} tokens in ${ms.toFixed(0)} ms = ${Math.round(n / (ms / 1000)).toLocaleString('en')} tokens/s`);
      }
    }
  });
});

it('a BERT directory with only vocab.txt tokenizes like its tokenizer.json (Chinese-CLIP hub layout)', { skip: SKIP_FIXTURES }, async () => {
  const { symlinkSync } = await import('node:fs');
  const { loadTokenizer: load } = await import('../src/text/index.js');
  const d = mkdtempSync(join(tmpdir(), 'clip-vocab-'));
  try {
    symlinkSync(fixture('common', 'tokenizer-zh', 'vocab.txt'), join(d, 'vocab.txt'));
    symlinkSync(fixture('common', 'tokenizer-zh', 'tokenizer_config.json'), join(d, 'tokenizer_config.json'));
    const fromVocab = load(d, { contextLength: 52 });
    const cases = JSON.parse(readFileSync(fixture('common', 'tokens-zh.json'), 'utf8')) as Array<{ text: string; input_ids: number[]; padded_52: number[] }>;
    for (const c of cases) if (c.input_ids.length <= 52) assert.deepEqual(fromVocab.encode(c.text), c.input_ids, c.text);
    const padded = fromVocab.encodeBatch(cases.map((c) => c.text));
    cases.forEach((c, i) => assert.deepEqual(Array.from(padded.inputIds.subarray(i * 52, (i + 1) * 52), Number), c.padded_52, c.text));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
