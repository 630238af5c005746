// SentencePiece model files (`spiece.model`, a protobuf ModelProto) read without a protobuf library, and the
// tokenizer.json that SigLIP's tokenizer amounts to: google/siglip-* checkpoints ship only spiece.model and
// SiglipTokenizer (transformers' slow tokenizer) applies its text rules in Python around sentencepiece.
// The file is untrusted: every length and count is bounded before anything is allocated from it.
import { MAX_VOCAB_SIZE } from './validate.js';
import type { TokenizerJson } from './hf-tokenizer.js';

export interface SentencePiece {
  piece: string;
  score: number;
  /** sentencepiece's ModelProto.SentencePiece.Type: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte. */
  type: number;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  /** TrainerSpec.model_type: 1 unigram (the default), 2 BPE, 3 word, 4 char. */
  modelType: number;
  byteFallback: boolean;
}

const UNKNOWN = 2;
const CONTROL = 3;

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array, private readonly end: number, private readonly file: string) {}

  done(): boolean {
    return this.pos >= this.end;
  }

  fail(msg: string): never {
    throw new Error(`${this.file}: not a sentencepiece model (${msg} at byte ${this.pos})`);
  }

  varint(): number {
    let v = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      // Values past 2^53 only occur in fields we skip; their exact value does not matter.
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return this.fail('varint longer than 10 bytes');
  }

  bytes(): { start: number; end: number } {
    const n = this.varint();
    if (n > this.end - this.pos) this.fail(`field length ${n} past the end`);
    const start = this.pos;
    this.pos += n;
    return { start, end: this.pos };
  }

  float(): number {
    if (this.end - this.pos < 4) this.fail('truncated float');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else this.fail(`unsupported wire type ${wire}`);
    if (this.pos > this.end) this.fail('field past the end');
  }

  sub(r: { start: number; end: number }): Reader {
    const s = new Reader(this.buf, r.end, this.file);
    s.pos = r.start;
    return s;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses the parts of a ModelProto a tokenizer needs: the pieces, the model type and byte fallback. */
export function parseSentencePieceModel(buf: Uint8Array, file = 'spiece.model'): SentencePieceModel {
  const top = new Reader(buf, buf.length, file);
  const pieces: SentencePiece[] = [];
  let modelType = 1;
  let byteFallback = false;
  while (!top.done()) {
    const key = top.varint();
    const [field, wire] = [Math.floor(key / 8), key & 7];
    if (field === 1 && wire === 2) {
      if (pieces.length >= MAX_VOCAB_SIZE) top.fail(`more than ${MAX_VOCAB_SIZE} pieces`);
      const r = top.sub(top.bytes());
      const p: SentencePiece = { piece: '', score: 0, type: 1 };
      while (!r.done()) {
        const k = r.varint();
        const [f, w] = [Math.floor(k / 8), k & 7];
        if (f === 1 && w === 2) {
          const b = r.bytes();
          try {
            p.piece = utf8.decode(buf.subarray(b.start, b.end));
          } catch {
            r.fail('a piece that is not UTF-8');
          }
        } else if (f === 2 && w === 5) p.score = r.float();
        else if (f === 3 && w === 0) p.type = r.varint();
        else r.skip(w);
      }
      if (!Number.isFinite(p.score)) top.fail(`piece ${pieces.length} has a non-finite score`);
      pieces.push(p);
    } else if (field === 2 && wire === 2) {
      const r = top.sub(top.bytes());
      while (!r.done()) {
        const k = r.varint();
        const [f, w] = [Math.floor(k / 8), k & 7];
        if (f === 3 && w === 0) modelType = r.varint();
        else if (f === 35 && w === 0) byteFallback = r.varint() !== 0;
        else r.skip(w);
      }
    } else top.skip(wire);
  }
  if (!pieces.length) top.fail('no pieces');
  return { pieces, modelType, byteFallback };
}

/** ASCII punctuation, Python's string.punctuation, as a regex class. */
const PUNCTUATION = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~]";

/**
 * tokenizer.json for SiglipTokenizer over a Unigram sentencepiece model: lower-case, drop ASCII punctuation,
 * collapse and strip whitespace, prefix "▁" (SiglipTokenizer encodes with add_dummy_prefix off after adding
 * it), NFKC (sentencepiece's nmt_nfkc), the Unigram pieces with their scores, and `eos` appended.
 */
export function siglipTokenizerJson(model: SentencePieceModel, eos = '</s>', file = 'spiece.model'): TokenizerJson {
  if (model.modelType !== 1) throw new Error(`${file}: a SigLIP tokenizer needs a Unigram sentencepiece model, this one has model_type ${model.modelType}`);
  if (model.byteFallback) throw new Error(`${file}: byte-fallback sentencepiece models are not supported`);
  const unk = model.pieces.findIndex((p) => p.type === UNKNOWN);
  const eosId = model.pieces.findIndex((p) => p.piece === eos);
  if (unk < 0) throw new Error(`${file}: no unknown piece`);
  if (eosId < 0) throw new Error(`${file}: no end-of-text piece ${JSON.stringify(eos)}`);
  const special = model.pieces.flatMap((p, id) => (p.type === CONTROL || p.type === UNKNOWN
    ? [{ id, content: p.piece, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }] : []));
  return {
    version: '1.0',
    added_tokens: special,
    normalizer: {
      type: 'Sequence', normalizers: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'Lowercase' },
        { type: 'Replace', pattern: { Regex: PUNCTUATION }, content: '' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Strip', strip_left: true, strip_right: true },
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'NFKC' },
      ],
    },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'never', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: eos, type_id: 0 } }],
      special_tokens: { [eos]: { id: eos, ids: [eosId], tokens: [eos] } },
    },
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: unk, vocab: model.pieces.map((p) => [p.piece, p.score]), byte_fallback: false },
  } as unknown as TokenizerJson;
}
