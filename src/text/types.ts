// The tokenizer interface shared by every text tower, and the batch layout handed to ONNX Runtime.
import { endianness } from 'node:os';

export type TokenizerKind = 'clip-bpe' | 'openai-bpe' | 'wordpiece' | 'unigram' | 'sentencepiece-bpe';

export interface EncodeBatchOptions {
  /** 'max' pads every row to contextLength (what the reference goldens use); 'longest' pads to the longest row of the batch (less work for the text tower). */
  pad?: 'max' | 'longest';
}

/**
 * A padded batch, row-major [batch, length], in the int64 layout ONNX Runtime wants for `input_ids` & co.
 * `eotIndex[i]` is the first position of the end token (EOT for CLIP, [SEP] for BERT) in row i: where CLIP text towers pool.
 */
export interface TokenBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  /** All zeros (single-sequence input); BERT towers take it as `token_type_ids`. */
  tokenTypeIds: BigInt64Array;
  batch: number;
  length: number;
  dims: [number, number];
  /** Real (unpadded) token count of each row, special tokens included. */
  lengths: number[];
  eotIndex: number[];
}

export interface TextTokenizer {
  readonly kind: TokenizerKind;
  /** Maximum row length including special tokens (77 for CLIP, 52 for Chinese-CLIP). */
  readonly contextLength: number;
  readonly padId: number;
  /** Start token ([SOT] / [CLS]); undefined when the tokenizer adds none. */
  readonly startId: number | undefined;
  /** End token (EOT / [SEP]); eotIndex points at it. */
  readonly endId: number | undefined;
  readonly vocabSize: number;
  /** Content token ids only: no special tokens, no truncation. */
  tokenize(text: string): number[];
  /** Special tokens added and truncated to contextLength with the end token kept last; not padded. */
  encode(text: string): number[];
  encodeBatch(texts: readonly string[], opts?: EncodeBatchOptions): TokenBatch;
  /** Pads rows already returned by encode() (saves tokenizing twice when the caller sorted or inspected them). */
  pad(rows: readonly number[][], opts?: EncodeBatchOptions): TokenBatch;
  decode(ids: readonly number[]): string;
}

/**
 * Wraps content ids in the special tokens, truncating the content so the row fits contextLength.
 * HF truncates the content to contextLength - #specials before adding them; OpenAI's clip.tokenize keeps the
 * first contextLength tokens and overwrites the last with EOT. With one start and one end token both give the same row.
 */
export function wrapAndTruncate(content: readonly number[], prefix: readonly number[], suffix: readonly number[], contextLength: number): number[] {
  const room = Math.max(0, contextLength - prefix.length - suffix.length);
  const body = content.length > room ? content.slice(0, room) : content;
  return [...prefix, ...body, ...suffix];
}

// Writing the low 32-bit half of each int64 through an Int32Array view avoids a BigInt allocation per token.
const LITTLE_ENDIAN = endianness() === 'LE';

// Ids are non-negative and the array starts zeroed, so the high halves can stay untouched.
function fillInt64(dst: BigInt64Array, low: Int32Array | undefined, offset: number, values: readonly number[]): void {
  if (low) {
    for (let j = 0; j < values.length; j++) low[(offset + j) * 2] = values[j]!;
  } else {
    for (let j = 0; j < values.length; j++) dst[offset + j] = BigInt(values[j]!);
  }
}

function fillConst(dst: BigInt64Array, offset: number, count: number, value: number): void {
  if (count > 0) dst.fill(BigInt(value), offset, offset + count);
}

/** Pads already-wrapped rows into a TokenBatch. Rows longer than the target length are an internal error. */
export function buildBatch(rows: readonly number[][], opts: { contextLength: number; padId: number; endId: number | undefined; pad?: 'max' | 'longest' }): TokenBatch {
  const batch = rows.length;
  let length = opts.contextLength;
  if (opts.pad === 'longest') {
    length = 0;
    for (const r of rows) if (r.length > length) length = r.length;
  }
  const inputIds = new BigInt64Array(batch * length);
  const attentionMask = new BigInt64Array(batch * length);
  const tokenTypeIds = new BigInt64Array(batch * length);
  const low = LITTLE_ENDIAN ? new Int32Array(inputIds.buffer, inputIds.byteOffset, inputIds.length * 2) : undefined;
  const lengths: number[] = new Array(batch);
  const eotIndex: number[] = new Array(batch);
  for (let i = 0; i < batch; i++) {
    const row = rows[i]!;
    if (row.length > length) throw new Error(`row ${i} has ${row.length} tokens, more than the batch length ${length}`);
    const off = i * length;
    fillInt64(inputIds, low, off, row);
    fillConst(inputIds, off + row.length, length - row.length, opts.padId);
    fillConst(attentionMask, off, row.length, 1);
    lengths[i] = row.length;
    // First occurrence, as the reference towers pool: HF `(ids == eos).argmax()`, OpenAI `ids.argmax()` (EOT is the largest id).
    const e = opts.endId === undefined ? -1 : row.indexOf(opts.endId);
    eotIndex[i] = e >= 0 ? e : Math.max(0, row.length - 1);
  }
  return { inputIds, attentionMask, tokenTypeIds, batch, length, dims: [batch, length], lengths, eotIndex };
}

/** Row i of a batch as plain numbers (tests, debugging). */
export function batchRow(b: TokenBatch, i: number, which: 'inputIds' | 'attentionMask' | 'tokenTypeIds' = 'inputIds'): number[] {
  return Array.from(b[which].subarray(i * b.length, (i + 1) * b.length), Number);
}

/**
 * `inner` with `clean` applied to every text before it is tokenized: text rules a model's reference applies outside
 * its tokenizer files (open_clip cleans HTML entities and whitespace before a Hugging Face tokenizer).
 */
export function withTextClean(inner: TextTokenizer, clean: (text: string) => string): TextTokenizer {
  return {
    kind: inner.kind, contextLength: inner.contextLength, padId: inner.padId, startId: inner.startId, endId: inner.endId,
    vocabSize: inner.vocabSize,
    tokenize: (text) => inner.tokenize(clean(text)),
    encode: (text) => inner.encode(clean(text)),
    encodeBatch: (texts, opts) => inner.pad(texts.map((t) => inner.encode(clean(t))), opts),
    pad: (rows, opts) => inner.pad(rows, opts),
    decode: (ids) => inner.decode(ids),
  };
}
