// SentencePiece model files (`spiece.model`, a protobuf ModelProto) read without a protobuf library. Some
// checkpoints ship only spiece.model; the text rules their tokenizer applies around sentencepiece are the
// family's (its descriptor turns the pieces into a tokenizer.json: TokenizerOptions.sentencepiece).
// The file is untrusted: every length and count is bounded before anything is allocated from it.
import { MAX_VOCAB_SIZE } from './validate.js';

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

/** Piece types a tokenizer.json lists as special tokens. */
export const SPM_UNKNOWN = 2;
export const SPM_CONTROL = 3;

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
