// OpenAI's CLIP SimpleTokenizer (clip/simple_tokenizer.py) reimplemented, with clip.tokenize's padding and truncation.
// OpenAI-family checkpoints were trained with these ids; they differ from HF's tokenizer on HTML entities
// (unescaped twice here) and Unicode normalization (HF applies NFC, OpenAI does not). ftfy.fix_text is not applied
// (the reference fixtures replace it by the identity too).
import { htmlUnescape } from './html-unescape.js';
import { checkContextLength, checkMerges, checkVocab } from './validate.js';
import { buildBatch, wrapAndTruncate, type EncodeBatchOptions, type TextTokenizer, type TokenBatch } from './types.js';

export const SOT_TOKEN = '<|startoftext|>';
export const EOT_TOKEN = '<|endoftext|>';

/** GPT-2's reversible byte -> printable character table: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep(b) ? b : 256 + extra++);
  return table;
}

/**
 * The 256 byte characters in CLIP's vocabulary order: Python lists the bytes_to_unicode dict with printable bytes
 * first, then the remapped ones (U+0100...), which is code point order.
 */
export function byteCharsInVocabOrder(): string[] {
  return bytesToUnicode().sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
}

/**
 * Unicode White_Space as a regex class body: Python `regex`'s and Rust regex's \s. JS \s differs: it adds
 * U+FEFF and lacks U+0085.
 */
export const WHITE_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${WHITE_SPACE}]+`, 'gu');
// str.strip() strips str.isspace() characters: White_Space plus the separators U+001C..U+001F.
const STRIP = new RegExp(`^[${WHITE_SPACE}\\x1c-\\x1f]+|[${WHITE_SPACE}\\x1c-\\x1f]+$`, 'gu');
// SimpleTokenizer.pat; the 'i' flag only matters for the contractions, and the text is lowercased anyway.
const PAT = new RegExp(`<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WHITE_SPACE}\\p{L}\\p{N}]+`, 'giu');

const pyStrip = (s: string) => s.replace(STRIP, '');

/** basic_clean (without ftfy) + whitespace_clean + lower, in SimpleTokenizer.encode's order. */
export function openaiCleanText(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(text)));
  return pyStrip(basic.replace(WS_RUN, ' ')).toLowerCase();
}

export interface BpeVocab {
  /** token string -> id (HF vocab.json / tokenizer.json model.vocab). */
  vocab: Record<string, number>;
  /** merges in rank order, "a b" or [a, b]. */
  merges: ReadonlyArray<string | readonly [string, string]>;
}

/**
 * Builds SimpleTokenizer's vocabulary from OpenAI's merges file (bpe_simple_vocab_16e6.txt): the 256 byte characters,
 * the same with '</w>', one token per merge, then SOT and EOT. The text's first line is a version header.
 */
export function bpeVocabFromOpenAIMerges(mergesText: string, vocabSize = 49408): BpeVocab {
  const lines = mergesText.split('\n');
  const nMerges = vocabSize - 512 - 2;
  const merges = lines.slice(1, 1 + nMerges).map((l) => {
    const [a, b] = l.split(' ');
    if (a === undefined || b === undefined) throw new Error(`malformed BPE merge line: ${JSON.stringify(l)}`);
    return [a, b] as const;
  });
  const chars = byteCharsInVocabOrder();
  const tokens = [...chars, ...chars.map((c) => c + '</w>'), ...merges.map(([a, b]) => a + b), SOT_TOKEN, EOT_TOKEN];
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => { vocab[t] = i; });
  return { vocab, merges };
}

export interface OpenAIClipTokenizerOptions {
  contextLength?: number;
  /** Cap on cached words; the cache is dropped when it grows past this (captions repeat few distinct words). */
  cacheSize?: number;
  /** Where the vocabulary came from, for messages. */
  source?: string;
  /**
   * Words with more symbols than this are merged through a heap (same result as the reference loop, which
   * rescans the word per merge: quadratic, 11 s for one 60k-letter word). Default 64; tests set it to compare.
   */
  longWord?: number;
  /** The text tower's vocab_size, when known: every id must be below it. */
  vocabSize?: number;
}

export class OpenAIClipTokenizer implements TextTokenizer {
  readonly kind = 'openai-bpe' as const;
  readonly contextLength: number;
  /** clip.tokenize pads with zeros. */
  readonly padId = 0;
  readonly startId: number;
  readonly endId: number;
  readonly vocabSize: number;

  private readonly encoder: Map<string, number>;
  private readonly decoder: string[];
  private readonly ranks: Map<string, number>;
  private readonly byteEncoder = bytesToUnicode();
  private readonly byteDecoder: Map<string, number>;
  private readonly utf8 = new TextEncoder();
  private readonly cache = new Map<string, number[]>();
  private readonly cacheSize: number;
  private readonly longWord: number;

  constructor(bpe: BpeVocab, opts: OpenAIClipTokenizerOptions = {}) {
    const check = { file: opts.source ?? 'BPE vocabulary', vocabSize: opts.vocabSize };
    this.contextLength = checkContextLength(opts.contextLength ?? 77, check.file);
    this.cacheSize = opts.cacheSize ?? 100_000;
    this.longWord = opts.longWord ?? 64;
    checkVocab(bpe.vocab, 'vocab', check);
    checkMerges(bpe.merges, 'merges', check);
    this.encoder = new Map(Object.entries(bpe.vocab));
    this.decoder = [];
    for (const [t, id] of this.encoder) this.decoder[id] = t;
    this.vocabSize = this.decoder.length;
    // Pairs are keyed "a b": symbols never contain a space, since byte 0x20 is encoded as 'Ġ'.
    this.ranks = new Map();
    bpe.merges.forEach((m, i) => {
      const key = typeof m === 'string' ? m : `${m[0]} ${m[1]}`;
      if (!this.ranks.has(key)) this.ranks.set(key, i);
    });
    const sot = this.encoder.get(SOT_TOKEN);
    const eot = this.encoder.get(EOT_TOKEN);
    if (sot === undefined || eot === undefined) throw new Error(`BPE vocabulary lacks ${SOT_TOKEN} or ${EOT_TOKEN}`);
    this.startId = sot;
    this.endId = eot;
    this.byteDecoder = new Map(this.byteEncoder.map((c, b) => [c, b]));
  }

  tokenize(text: string): number[] {
    const out: number[] = [];
    const cleaned = openaiCleanText(text);
    for (const m of cleaned.matchAll(PAT)) {
      const ids = this.wordIds(m[0]);
      for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    }
    return out;
  }

  encode(text: string): number[] {
    return wrapAndTruncate(this.tokenize(text), [this.startId], [this.endId], this.contextLength);
  }

  encodeBatch(texts: readonly string[], opts: EncodeBatchOptions = {}): TokenBatch {
    return this.pad(texts.map((t) => this.encode(t)), opts);
  }

  pad(rows: readonly number[][], opts: EncodeBatchOptions = {}): TokenBatch {
    return buildBatch(rows, { contextLength: this.contextLength, padId: this.padId, endId: this.endId, pad: opts.pad });
  }

  /** SimpleTokenizer.decode: byte-level decode with '</w>' as a space (special tokens included, as OpenAI does). */
  decode(ids: readonly number[]): string {
    const text = ids.map((id) => this.decoder[id] ?? '').join('');
    const bytes: number[] = [];
    for (const ch of text) {
      const b = this.byteDecoder.get(ch);
      if (b !== undefined) bytes.push(b);
      else for (const x of this.utf8.encode(ch)) bytes.push(x); // '</w>' and special-token characters are plain ASCII
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).replaceAll('</w>', ' ');
  }

  /** Ids of one pre-token (a regex match), memoized as SimpleTokenizer.cache does. */
  private wordIds(token: string): number[] {
    const hit = this.cache.get(token);
    if (hit !== undefined) return hit;
    let ids: number[];
    if (token === SOT_TOKEN) ids = [this.startId];
    else if (token === EOT_TOKEN) ids = [this.endId];
    else {
      let encoded = '';
      for (const b of this.utf8.encode(token)) encoded += this.byteEncoder[b]!;
      ids = this.bpe(encoded).map((sym) => {
        const id = this.encoder.get(sym);
        if (id === undefined) throw new Error(`BPE symbol ${JSON.stringify(sym)} is not in the vocabulary`);
        return id;
      });
    }
    if (this.cache.size >= this.cacheSize) this.cache.clear();
    this.cache.set(token, ids);
    return ids;
  }

  /** SimpleTokenizer.bpe: repeatedly merge the lowest-ranked adjacent pair; the last symbol carries '</w>'. */
  private bpe(token: string): string[] {
    let word = Array.from(token);
    word[word.length - 1] += '</w>';
    if (word.length > this.longWord) return this.bpeLong(word);
    while (word.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < best) { best = r; first = word[i]!; second = word[i + 1]!; }
      }
      if (best === Infinity) break;
      // Merge every non-overlapping occurrence left to right, as the Python loop does.
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) { next.push(first + second); i++; }
        else next.push(word[i]!);
      }
      word = next;
    }
    return word;
  }

  /**
   * The same merges as bpe() in O(n log n): pairs sit in a heap keyed (rank, position) over a linked list of
   * symbols. All occurrences of the lowest-ranked pair are merged left to right, as one pass of the reference
   * loop does; a merge never creates another occurrence of its own pair (the merged symbol is longer than
   * either part), so later pairs wait for the next round, as there. Stale heap entries are skipped.
   */
  private bpeLong(word: string[]): string[] {
    const n = word.length;
    const sym = word.slice();
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    const alive = new Uint8Array(n).fill(1);
    // Keys rank * 2^32 + position: ranks are below 2^20 (validated), positions below 2^32; exact in a double.
    const heap: number[] = [];
    const up = (k: number) => {
      const v = heap[k]!;
      while (k > 0) {
        const p = (k - 1) >> 1;
        if (heap[p]! <= v) break;
        heap[k] = heap[p]!;
        k = p;
      }
      heap[k] = v;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length) {
        let k = 0;
        for (;;) {
          const l = 2 * k + 1;
          if (l >= heap.length) break;
          const c = l + 1 < heap.length && heap[l + 1]! < heap[l]! ? l + 1 : l;
          if (heap[c]! >= last) break;
          heap[k] = heap[c]!;
          k = c;
        }
        heap[k] = last;
      }
      return top;
    };
    const rankAt = (i: number): number | undefined => (next[i]! < 0 ? undefined : this.ranks.get(sym[i] + ' ' + sym[next[i]!]));
    const push = (i: number) => {
      const r = rankAt(i);
      if (r !== undefined) { heap.push(r * 2 ** 32 + i); up(heap.length - 1); }
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    const batch: number[] = [];
    while (heap.length) {
      const rank = Math.floor(heap[0]! / 2 ** 32);
      batch.length = 0;
      while (heap.length && Math.floor(heap[0]! / 2 ** 32) === rank) batch.push(pop() % 2 ** 32);
      // Popped in key order, so positions ascend: left to right.
      for (const i of batch) {
        if (!alive[i] || rankAt(i) !== rank) continue;
        const j = next[i]!;
        sym[i] += sym[j]!;
        alive[j] = 0;
        next[i] = next[j]!;
        if (next[j]! >= 0) prev[next[j]!] = i;
        if (prev[i]! >= 0) push(prev[i]!);
        push(i);
      }
    }
    const out: string[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
    return out;
  }
}
