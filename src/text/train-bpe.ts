// Trains a CLIP-style byte-level BPE tokenizer from scratch and emits it as HF tokenizer files, so a model trained
// here ships a vocabulary built by our own code. The output has OpenAI CLIP's semantics and vocabulary layout, so both
// ClipTokenizer (HF tokenizer.json through @huggingface/tokenizers) and OpenAIClipTokenizer read it to the same ids.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenizerConfigJson, TokenizerJson } from './hf-tokenizer.js';
import { byteCharsInVocabOrder, bytesToUnicode, EOT_TOKEN, SOT_TOKEN, WHITE_SPACE } from './openai-bpe.js';

export interface TrainClipBpeOptions {
  /** Total vocabulary: 512 byte tokens + one per merge + the two special tokens. At least 514. */
  vocabSize: number;
  /** A pair is merged only if it occurs at least this often (default 2). */
  minFrequency?: number;
  /** model_max_length written to tokenizer_config.json (default 77). */
  contextLength?: number;
}

export interface TrainClipBpeResult {
  /** tokenizer.json contents; model.merges are [a, b] pairs, as the HF CLIP files store them. */
  tokenizerJson: TokenizerJson;
  tokenizerConfigJson: TokenizerConfigJson;
  specialTokensMapJson: Record<string, string>;
  stats: { words: number; merges: number; vocab: number };
}

const EOW = '</w>';

// CLIP's pre-tokenizer regex, as tokenizer.json stores it (HF's Split, invert + Removed keeps only the matches).
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";
// The normalizer's \s+ is Rust regex's \s, Unicode White_Space, not JS's \s.
const WS_RUN = new RegExp(`[${WHITE_SPACE}]+`, 'gu');
const WORD = new RegExp(CLIP_SPLIT.replace('[^\\s', `[^${WHITE_SPACE}`), 'gu');

/** The tokenizer's normalizer: NFC, whitespace runs to one space, lowercase. */
export function clipNormalize(text: string): string {
  return text.normalize('NFC').replace(WS_RUN, ' ').toLowerCase();
}

/** The pre-tokens (words) the tokenizer will see for a text, before the byte-level mapping. */
export function clipWords(text: string): string[] {
  return clipNormalize(text).match(WORD) ?? [];
}

/** The tokenizer.json skeleton: CLIP's normalizer, pre-tokenizer, post-processor and decoder, as HF writes them. */
function tokenizerJsonFor(vocab: Record<string, number>, merges: Array<[string, string]>, sotId: number, eotId: number): TokenizerJson {
  const added = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  // Asserted: TokenizerJson types only the fields our loaders read, not every key HF writes.
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(sotId, SOT_TOKEN), added(eotId, EOT_TOKEN)],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: [EOT_TOKEN, eotId], cls: [SOT_TOKEN, sotId], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOT_TOKEN,
      continuing_subword_prefix: '',
      end_of_word_suffix: EOW,
      fuse_unk: false,
      byte_fallback: false,
      // CLIP always applies merges, even to whole words that are in the vocabulary (OpenAI mode does the same).
      ignore_merges: false,
      vocab,
      merges,
    },
  } as TokenizerJson;
}

/** Max-heap of candidate pairs: higher count first, ties by the smaller "a b" string, for deterministic merges. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];
  private readonly names: string[] = [];

  get size(): number { return this.keys.length; }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci !== cj ? ci > cj : this.names[i]! < this.names[j]!;
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!; this.counts[i] = this.counts[j]!; this.counts[j] = c;
    const k = this.keys[i]!; this.keys[i] = this.keys[j]!; this.keys[j] = k;
    const n = this.names[i]!; this.names[i] = this.names[j]!; this.names[j] = n;
  }

  push(count: number, key: number, name: string): void {
    let i = this.keys.length;
    this.counts.push(count); this.keys.push(key); this.names.push(name);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): { count: number; key: number } | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    this.swap(0, n - 1);
    this.counts.pop(); this.keys.pop(); this.names.pop();
    const m = n - 1;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < m && this.before(l, best)) best = l;
      if (r < m && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

// Symbol ids stay far below 2^21, so a pair packs into one exact double.
const PAIR_SHIFT = 2 ** 21;
const pairKey = (a: number, b: number) => a * PAIR_SHIFT + b;

/**
 * Learns CLIP BPE merges from texts. Words are counted once up front; each step merges the most frequent adjacent
 * pair (ties: smallest "a b"), touching only the words that contain it (a pair -> words index), until the vocabulary
 * is full or no pair occurs minFrequency times. Vocabulary layout is CLIP's: 256 byte characters, the same with
 * '</w>', one token per merge in merge order, then <|startoftext|> and <|endoftext|>.
 */
export function trainClipBpe(texts: Iterable<string>, opts: TrainClipBpeOptions): TrainClipBpeResult {
  const vocabSize = opts.vocabSize;
  const minFrequency = opts.minFrequency ?? 2;
  const contextLength = opts.contextLength ?? 77;
  if (!Number.isInteger(vocabSize) || vocabSize < 514) throw new Error(`vocabSize must be an integer >= 514 (512 byte tokens + 2 special), got ${vocabSize}`);
  if (vocabSize >= PAIR_SHIFT) throw new Error(`vocabSize ${vocabSize} is too large`);
  if (!(minFrequency >= 1)) throw new Error(`minFrequency must be >= 1, got ${minFrequency}`);
  if (!Number.isInteger(contextLength) || contextLength < 3) throw new Error(`contextLength must be an integer >= 3, got ${contextLength}`);

  // Word frequencies over exactly the pre-tokens the tokenizer will produce. Special-token strings typed in a
  // caption are matched as words by the regex but encoded as the special ids, so they teach nothing.
  const wordFreq = new Map<string, number>();
  for (const text of texts) {
    for (const w of clipWords(text)) {
      if (w === SOT_TOKEN || w === EOT_TOKEN) continue;
      wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1);
    }
  }

  // Base vocabulary, in CLIP's order.
  const chars = byteCharsInVocabOrder();
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  let vocabLen = 0;
  for (const c of chars) vocab[c] = vocabLen++;
  for (const c of chars) vocab[c + EOW] = vocabLen++;

  // Symbols are interned strings; equal strings share an id, so a token reached by two merge paths is one symbol.
  const symId = new Map<string, number>();
  const symStr: string[] = [];
  const intern = (s: string): number => {
    let id = symId.get(s);
    if (id === undefined) { id = symStr.length; symId.set(s, id); symStr.push(s); }
    return id;
  };

  // Words sorted so every later step (index order, heap pushes) is independent of the input's iteration order.
  const byteChar = bytesToUnicode();
  const utf8 = new TextEncoder();
  const entries = [...wordFreq].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [w, f] of entries) {
    const bytes = utf8.encode(w);
    const syms: number[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) syms[i] = intern(i === bytes.length - 1 ? byteChar[bytes[i]!]! + EOW : byteChar[bytes[i]!]!);
    words.push(syms);
    freqs.push(f);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPair = (key: number, w: number, delta: number) => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + delta);
    let set = pairWords.get(key);
    if (!set) { set = new Set(); pairWords.set(key, set); }
    set.add(w);
  };
  for (let w = 0; w < words.length; w++) {
    const syms = words[w]!;
    for (let i = 0; i + 1 < syms.length; i++) addPair(pairKey(syms[i]!, syms[i + 1]!), w, freqs[w]!);
  }
  const pairName = (key: number) => symStr[Math.floor(key / PAIR_SHIFT)]! + ' ' + symStr[key % PAIR_SHIFT]!;
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key, pairName(key));

  const merges: Array<[string, string]> = [];
  const changed = new Set<number>();
  while (vocabLen < vocabSize - 2) {
    // Lazy heap: every count change pushes a fresh entry, so an entry whose count is no longer current is stale.
    let top: { count: number; key: number } | undefined;
    while ((top = heap.pop()) !== undefined && pairCount.get(top.key) !== top.count);
    if (top === undefined || top.count < minFrequency) break;

    const a = Math.floor(top.key / PAIR_SHIFT);
    const b = top.key % PAIR_SHIFT;
    const merged = symStr[a]! + symStr[b]!;
    const ab = intern(merged);
    merges.push([symStr[a]!, symStr[b]!]);
    // A string reachable by two merge paths gets one vocab entry, as HF's trainer does; the merge is still needed.
    if (!(merged in vocab)) vocab[merged] = vocabLen++;

    changed.clear();
    for (const w of pairWords.get(top.key) ?? []) {
      const old = words[w]!;
      // Left-to-right non-overlapping replacement, as the encoder applies a merge.
      const next: number[] = [];
      for (let i = 0; i < old.length; i++) {
        if (i + 1 < old.length && old[i] === a && old[i + 1] === b) { next.push(ab); i++; }
        else next.push(old[i]!);
      }
      if (next.length === old.length) continue; // stale index entry: the pair left this word earlier
      const f = freqs[w]!;
      for (let i = 0; i + 1 < old.length; i++) {
        const k = pairKey(old[i]!, old[i + 1]!);
        pairCount.set(k, pairCount.get(k)! - f);
        changed.add(k);
      }
      for (let i = 0; i + 1 < next.length; i++) {
        const k = pairKey(next[i]!, next[i + 1]!);
        addPair(k, w, f);
        changed.add(k);
      }
      words[w] = next;
    }
    pairWords.delete(top.key);
    for (const k of changed) {
      const c = pairCount.get(k)!;
      if (c <= 0) { pairCount.delete(k); pairWords.delete(k); }
      else heap.push(c, k, pairName(k));
    }
  }

  const sotId = vocabLen;
  const eotId = vocabLen + 1;
  vocab[SOT_TOKEN] = sotId;
  vocab[EOT_TOKEN] = eotId;
  vocabLen += 2;

  return {
    tokenizerJson: tokenizerJsonFor({ ...vocab }, merges, sotId, eotId),
    tokenizerConfigJson: {
      bos_token: SOT_TOKEN,
      eos_token: EOT_TOKEN,
      model_max_length: contextLength,
      pad_token: EOT_TOKEN,
      tokenizer_class: 'CLIPTokenizer',
      unk_token: EOT_TOKEN,
    },
    specialTokensMapJson: { bos_token: SOT_TOKEN, eos_token: EOT_TOKEN, pad_token: EOT_TOKEN, unk_token: EOT_TOKEN },
    stats: { words: wordFreq.size, merges: merges.length, vocab: vocabLen },
  };
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into dir (created if missing). */
export function writeClipBpe(dir: string, result: Pick<TrainClipBpeResult, 'tokenizerJson' | 'tokenizerConfigJson' | 'specialTokensMapJson'>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(result.tokenizerJson, null, 2) + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(result.tokenizerConfigJson, null, 2) + '\n');
  writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify(result.specialTokensMapJson, null, 2) + '\n');
}
