// Checks on tokenizer files before they are used: they come with downloaded checkpoints, and an id or a
// size is work (the tokenizer library allocates by the largest id: one id of 1e9 cost 56 s). Errors
// name the file and the field.
import { readFileSync, statSync } from 'node:fs';

/** Largest vocabulary accepted (the largest real tokenizers have ~262k entries; CLIP has 49408). */
export const MAX_VOCAB_SIZE = 1 << 20;
/** Largest tokenizer file read (CLIP's tokenizer.json is 2 MB; the largest real ones ~35 MB). */
export const MAX_TOKENIZER_FILE_BYTES = 64 * 2 ** 20;
/** Longest row a tokenizer pads to (CLIP: 77, BERT: 512). */
export const MAX_CONTEXT_LENGTH = 100_000;

/** Read a tokenizer file as text, refusing one larger than MAX_TOKENIZER_FILE_BYTES before reading it. */
/** Refuses a tokenizer file above MAX_TOKENIZER_FILE_BYTES (or not a file), before anything reads it. */
export function checkTokenizerFile(path: string, what: string): void {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error(`${what} ${path}: not a file`);
    size = st.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${what} not found: ${path}`);
    throw e;
  }
  if (size > MAX_TOKENIZER_FILE_BYTES) {
    throw new Error(`${path}: ${(size / 2 ** 20).toFixed(0)} MiB, larger than any tokenizer file should be (limit ${MAX_TOKENIZER_FILE_BYTES / 2 ** 20} MiB)`);
  }
}

export function readTokenizerFile(path: string, what: string): string {
  checkTokenizerFile(path, what);
  return readFileSync(path, 'utf8');
}

/** A token id: an integer in [0, limit). `limit` is the model's vocab_size when known, else MAX_VOCAB_SIZE. */
export function checkTokenId(v: unknown, where: string, limit = MAX_VOCAB_SIZE, limitWhat = 'the vocabulary limit'): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${where}: token id must be a non-negative integer, got ${JSON.stringify(v)}`);
  if (v >= limit) throw new Error(`${where}: token id ${v} is not below ${limitWhat} (${limit})`);
  return v;
}

export interface VocabCheck {
  /** The file, for messages. */
  file: string;
  /** The text tower's vocab_size: every id must be below it. */
  vocabSize?: number;
}

function limitOf(c: VocabCheck): [number, string] {
  const v = c.vocabSize;
  if (v !== undefined && Number.isInteger(v) && v > 0 && v <= MAX_VOCAB_SIZE) return [v, "the model's vocab_size"];
  return [MAX_VOCAB_SIZE, 'the vocabulary limit'];
}

/** A token -> id object: at most MAX_VOCAB_SIZE entries, every id in range. */
export function checkVocab(vocab: unknown, field: string, c: VocabCheck): Record<string, number> {
  if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new Error(`${c.file}: ${field} must be an object of token -> id`);
  const [limit, what] = limitOf(c);
  let n = 0;
  for (const k in vocab) {
    if (++n > MAX_VOCAB_SIZE) throw new Error(`${c.file}: ${field} has more than ${MAX_VOCAB_SIZE} entries`);
    checkTokenId((vocab as Record<string, unknown>)[k], `${c.file}: ${field}[${JSON.stringify(k.slice(0, 40))}]`, limit, what);
  }
  return vocab as Record<string, number>;
}

/** BPE merges: "a b" strings or [a, b] pairs, at most MAX_VOCAB_SIZE of them. */
export function checkMerges(merges: unknown, field: string, c: VocabCheck): void {
  if (!Array.isArray(merges)) throw new Error(`${c.file}: ${field} must be a list`);
  if (merges.length > MAX_VOCAB_SIZE) throw new Error(`${c.file}: ${field} has ${merges.length} entries, more than ${MAX_VOCAB_SIZE}`);
  for (let i = 0; i < merges.length; i++) {
    const m = merges[i];
    const ok = typeof m === 'string' ? m.includes(' ') : Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string';
    if (!ok) throw new Error(`${c.file}: ${field}[${i}] must be "a b" or ["a", "b"], got ${JSON.stringify(m)?.slice(0, 80)}`);
  }
}

/**
 * tokenizer.json: the model's vocab (and merges for BPE), added tokens, the post-processor's special ids and
 * the padding id. Model types we do not build (Unigram, ...) are left to tokenizerFromJson to refuse.
 */
export function checkTokenizerJson(json: unknown, c: VocabCheck): void {
  const f = c.file;
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${f}: expected a JSON object`);
  const j = json as Record<string, any>;
  if (!j.model || typeof j.model !== 'object') throw new Error(`${f}: missing "model"`);
  const [limit, what] = limitOf(c);
  const id = (v: unknown, field: string) => checkTokenId(v, `${f}: ${field}`, limit, what);
  if (j.model.type === 'BPE' || j.model.type === 'WordPiece') checkVocab(j.model.vocab, 'model.vocab', c);
  if (j.model.type === 'BPE') checkMerges(j.model.merges, 'model.merges', c);
  if (j.model.type === 'Unigram') checkUnigramVocab(j.model, c);
  if (j.added_tokens !== undefined && j.added_tokens !== null) {
    if (!Array.isArray(j.added_tokens)) throw new Error(`${f}: added_tokens must be a list`);
    if (j.added_tokens.length > MAX_VOCAB_SIZE) throw new Error(`${f}: added_tokens has more than ${MAX_VOCAB_SIZE} entries`);
    j.added_tokens.forEach((t: any, i: number) => {
      if (!t || typeof t !== 'object' || typeof t.content !== 'string') throw new Error(`${f}: added_tokens[${i}] must have a string "content"`);
      id(t.id, `added_tokens[${i}].id`);
    });
  }
  const pp = (p: any, at: string, depth: number): void => {
    if (!p || typeof p !== 'object') return;
    if (depth > 8) throw new Error(`${f}: ${at} nests too deep`);
    if (Array.isArray(p.cls)) id(p.cls[1], `${at}.cls[1]`);
    if (Array.isArray(p.sep)) id(p.sep[1], `${at}.sep[1]`);
    if (p.special_tokens && typeof p.special_tokens === 'object') {
      for (const [name, s] of Object.entries<any>(p.special_tokens)) {
        if (!s || !Array.isArray(s.ids) || s.ids.length > 16) throw new Error(`${f}: ${at}.special_tokens.${name}.ids must be a short list of ids`);
        s.ids.forEach((v: unknown, k: number) => id(v, `${at}.special_tokens.${name}.ids[${k}]`));
      }
    }
    if (Array.isArray(p.processors)) p.processors.forEach((q: unknown, k: number) => pp(q, `${at}.processors[${k}]`, depth + 1));
  };
  pp(j.post_processor, 'post_processor', 0);
  if (j.padding && typeof j.padding === 'object' && j.padding.pad_id !== undefined) id(j.padding.pad_id, 'padding.pad_id');
}

/**
 * A Unigram model: `vocab` a list of [piece, score] (ids are the positions, so its length is bounded by the
 * model's vocab_size) and `unk_id` one of them. The library scores every piece: a score must be finite.
 */
export function checkUnigramVocab(model: Record<string, any>, c: VocabCheck): void {
  const [limit, what] = limitOf(c);
  const v = model.vocab;
  if (!Array.isArray(v) || v.length === 0) throw new Error(`${c.file}: model.vocab of a Unigram model must be a non-empty list of [piece, score]`);
  if (v.length > limit) throw new Error(`${c.file}: model.vocab has ${v.length} entries, more than ${what} (${limit})`);
  for (let i = 0; i < v.length; i++) {
    const e = v[i];
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'number' || !Number.isFinite(e[1])) {
      throw new Error(`${c.file}: model.vocab[${i}] must be [piece, finite score], got ${JSON.stringify(e)?.slice(0, 80)}`);
    }
  }
  if (model.unk_id !== undefined && model.unk_id !== null) checkTokenId(model.unk_id, `${c.file}: model.unk_id`, v.length, 'the vocabulary size');
}

/** A row length: a positive integer no larger than MAX_CONTEXT_LENGTH. */
export function checkContextLength(n: unknown, where: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CONTEXT_LENGTH) {
    throw new Error(`${where}: context length must be an integer from 1 to ${MAX_CONTEXT_LENGTH}, got ${JSON.stringify(n)}`);
  }
  return n;
}
