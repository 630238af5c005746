// Text tokenizers: pick the right one for a model directory or for already-parsed tokenizer JSON.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { bertTokenizerJsonFromVocab } from './bert-vocab.js';
import { BertTokenizer } from './bert-tokenizer.js';
import { ClipTokenizer } from './clip-tokenizer.js';
import { HfTextTokenizer, type TokenizerConfigJson, type TokenizerJson } from './hf-tokenizer.js';
import { bpeVocabFromOpenAIMerges, OpenAIClipTokenizer, type BpeVocab } from './openai-bpe.js';
import { withTextClean, type TextTokenizer } from './types.js';
import { parseSentencePieceModel, type SentencePieceModel } from './sentencepiece.js';
import { checkTokenizerFile, checkVocab, MAX_TOKENIZER_FILE_BYTES, MAX_VOCAB_SIZE, readTokenizerFile } from './validate.js';

export { BertTokenizer, type BertTokenizerOptions } from './bert-tokenizer.js';
export { ClipTokenizer, type ClipTokenizerOptions } from './clip-tokenizer.js';
export { HfTextTokenizer, specialTokensOf, type TokenizerConfigJson, type TokenizerJson } from './hf-tokenizer.js';
export { htmlUnescape } from './html-unescape.js';
export { bertTokenizerJsonFromVocab } from './bert-vocab.js';
export {
  bpeVocabFromOpenAIMerges, bytesToUnicode, EOT_TOKEN, OpenAIClipTokenizer, openaiCleanText, SOT_TOKEN,
  type BpeVocab, type OpenAIClipTokenizerOptions,
} from './openai-bpe.js';
export { trainClipBpe, writeClipBpe, type TrainClipBpeOptions, type TrainClipBpeResult } from './train-bpe.js';
export { batchRow, buildBatch, wrapAndTruncate, type EncodeBatchOptions, type TextTokenizer, type TokenBatch, type TokenizerKind } from './types.js';

export type TokenizerMode = 'hf' | 'openai';

export interface TokenizerOptions {
  /** 'hf' (default): HF tokenizer.json semantics. 'openai': OpenAI's SimpleTokenizer (for OpenAI / open_clip checkpoints); CLIP BPE only. */
  mode?: TokenizerMode;
  /** Row length including special tokens. Default: from the model's config files, else 77 (BPE) / 52 (WordPiece). */
  contextLength?: number;
  /** The text tower's vocab_size: every token id must be below it. Default: from the directory's config.json. */
  vocabSize?: number;
  /** Where parsed JSON came from, for messages (tokenizerFromJson). */
  source?: string;
  /**
   * How a directory with a sentencepiece spiece.model and no tokenizer.json is read: the text rules of the
   * model's tokenizer around the pieces (a family's, given by its descriptor). Absent: spiece.model is not read.
   */
  sentencepiece?: SentencePieceRules;
  /**
   * The text rules of the model's tokenizer over a shipped tokenizer.json, where the file does not carry them all
   * (a family's, given by its descriptor: SigLIP 2 lower-cases before Gemma's pieces). Absent: the file as it is.
   */
  tokenizerJson?: TokenizerJsonRules;
  /**
   * Text rules applied before the tokenizer, where the reference applies them outside the tokenizer files (a
   * family's, from the checkpoint: open_clip cleans HTML entities and whitespace before a Hugging Face tokenizer).
   */
  clean?: (text: string) => string;
}

/** A parsed tokenizer.json -> the tokenizer.json the model's text rules amount to; errors name `file`. */
export type TokenizerJsonRules = (json: TokenizerJson, file: string) => TokenizerJson;

/** A sentencepiece model and the end token -> the tokenizer.json its tokenizer amounts to; errors name `file`. */
export type SentencePieceRules = (model: SentencePieceModel, eos: string, file: string) => TokenizerJson;

/** Vocabulary + merges of a CLIP BPE tokenizer.json, for OpenAI mode. */
export function bpeVocabFromTokenizerJson(json: TokenizerJson): BpeVocab {
  const m = json?.model;
  if (m?.type !== 'BPE') throw new Error(`OpenAI mode needs a BPE tokenizer.json, got model type ${JSON.stringify(m?.type)}`);
  const vocab = m.vocab as Record<string, number> | undefined;
  const merges = m.merges as BpeVocab['merges'] | undefined;
  if (!vocab || typeof vocab !== 'object' || !Array.isArray(merges)) throw new Error('tokenizer.json: BPE model lacks vocab or merges');
  return { vocab, merges };
}

/** Builds the tokenizer a parsed tokenizer.json (+ tokenizer_config.json) describes: CLIP BPE, BERT WordPiece or Unigram. */
export function tokenizerFromJson(json: TokenizerJson, config: TokenizerConfigJson = {}, opts: TokenizerOptions = {}): TextTokenizer {
  const tok = tokenizerOfType(json, config, opts);
  return opts.clean ? withTextClean(tok, opts.clean) : tok;
}

function tokenizerOfType(json: TokenizerJson, config: TokenizerConfigJson, opts: TokenizerOptions): TextTokenizer {
  const type = json?.model?.type;
  const o = { contextLength: opts.contextLength, source: opts.source, vocabSize: opts.vocabSize };
  if (opts.mode === 'openai') return new OpenAIClipTokenizer(bpeVocabFromTokenizerJson(json), o);
  // A sentencepiece BPE converted to tokenizer.json (Gemma's, SigLIP 2's): byte fallback instead of CLIP's byte-level
  // alphabet, "▁" for spaces; the file's normalizer, model and post-processor say it all, as for Unigram.
  if (type === 'BPE' && json.model.byte_fallback === true) {
    return new HfTextTokenizer(json, config, { kind: 'sentencepiece-bpe', contextLength: o.contextLength ?? 64, source: o.source, vocabSize: o.vocabSize });
  }
  if (type === 'BPE') return new ClipTokenizer(json, config, o);
  if (type === 'WordPiece') return new BertTokenizer(json, config, o);
  // SentencePiece Unigram (SigLIP, T5-style vocabularies): the tokenizer.json's normalizer and post-processor say it all.
  if (type === 'Unigram') return new HfTextTokenizer(json, config, { kind: 'unigram', contextLength: o.contextLength ?? 64, source: o.source, vocabSize: o.vocabSize });
  throw new Error(`unsupported tokenizer model type ${JSON.stringify(type)} (expected BPE, WordPiece or Unigram)`);
}

const readText = readTokenizerFile;

function readJson<T>(path: string, what: string): T {
  const text = readText(path, what);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`invalid JSON in ${path}: ${(e as Error).message}`);
  }
}

function readJsonIfExists(path: string): Record<string, any> | undefined {
  return existsSync(path) ? readJson<Record<string, any>>(path, 'config') : undefined;
}

/** vocab_size from a directory's config.json (CLIP/Chinese-CLIP text_config, or a BERT config), if it is sane. */
function vocabSizeFor(modelDir: string): number | undefined {
  const cfg = readJsonIfExists(join(modelDir, 'config.json'));
  const v = cfg?.text_config?.vocab_size ?? cfg?.vocab_size;
  return Number.isInteger(v) && v > 0 && v <= MAX_VOCAB_SIZE ? v : undefined;
}

// model_max_length is a 1e30 sentinel when the checkpoint sets no limit.
const saneLength = (n: unknown): number | undefined => (typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 100_000 ? n : undefined);

/** Context length a model directory implies, or undefined to use the tokenizer's default. */
function contextLengthFor(modelDir: string, tokConfig: TokenizerConfigJson | undefined): number | undefined {
  // A length the family fixes beyond its files (Chinese-CLIP's 52) comes from its descriptor: models/tokenizer.ts.
  const cfg = readJsonIfExists(join(modelDir, 'config.json'));
  const fromTok = saneLength(tokConfig?.model_max_length);
  if (fromTok !== undefined) return fromTok;
  if (cfg) {
    const fromCfg = saneLength(cfg.text_config?.max_position_embeddings) ?? saneLength(cfg.max_position_embeddings);
    if (fromCfg !== undefined) return fromCfg;
  }
  const oc = readJsonIfExists(join(modelDir, 'open_clip_config.json'));
  return saneLength(oc?.model_cfg?.text_cfg?.context_length);
}

const OPENAI_MERGES_FILES = ['bpe_simple_vocab_16e6.txt.gz', 'bpe_simple_vocab_16e6.txt'];

/** OpenAI-mode vocabulary from a directory: tokenizer.json, else HF merges.txt (+ vocab.json), else OpenAI's merges file. */
function loadOpenAIVocab(modelDir: string): { bpe: BpeVocab; source: string } {
  const tj = join(modelDir, 'tokenizer.json');
  if (existsSync(tj)) return { bpe: bpeVocabFromTokenizerJson(readJson<TokenizerJson>(tj, 'tokenizer.json')), source: tj };
  const mergesTxt = join(modelDir, 'merges.txt');
  if (existsSync(mergesTxt)) {
    const fromMerges = bpeVocabFromOpenAIMerges(readText(mergesTxt, 'merges.txt'));
    const vj = join(modelDir, 'vocab.json');
    if (!existsSync(vj)) return { bpe: fromMerges, source: mergesTxt };
    return { bpe: { vocab: checkVocab(readJson(vj, 'vocab.json'), 'vocab', { file: vj }), merges: fromMerges.merges }, source: vj };
  }
  for (const name of OPENAI_MERGES_FILES) {
    const p = join(modelDir, name);
    if (!existsSync(p)) continue;
    let text: string;
    if (name.endsWith('.gz')) {
      checkTokenizerFile(p, name);
      // Capped inflate: a small .gz must not expand into gigabytes (OpenAI's file inflates to 1.4 MB).
      try {
        text = gunzipSync(readFileSync(p), { maxOutputLength: MAX_TOKENIZER_FILE_BYTES }).toString('utf8');
      } catch (e) {
        throw new Error(`${p}: cannot inflate (${(e as Error).message}; the limit is ${MAX_TOKENIZER_FILE_BYTES / 2 ** 20} MiB)`);
      }
    } else text = readText(p, name);
    return { bpe: bpeVocabFromOpenAIMerges(text), source: p };
  }
  throw new Error(`no CLIP BPE vocabulary in ${modelDir}: looked for tokenizer.json, merges.txt, ${OPENAI_MERGES_FILES.join(', ')}` +
    (existsSync(join(modelDir, 'open_clip_config.json')) ? ' (open_clip checkpoints ship none: point at a directory that has one)' : ''));
}

/**
 * Loads the tokenizer of a model directory. HF mode reads tokenizer.json + tokenizer_config.json and picks CLIP BPE
 * or BERT WordPiece from the model type. OpenAI mode (explicit, or implied by a directory holding only OpenAI's
 * bpe_simple_vocab file) reads the BPE vocabulary from whichever file the directory has.
 */
export function loadTokenizer(modelDir: string, opts: TokenizerOptions = {}): TextTokenizer {
  const tjPath = join(modelDir, 'tokenizer.json');
  const hasOpenAIMerges = OPENAI_MERGES_FILES.some((n) => existsSync(join(modelDir, n)));
  const mode = opts.mode ?? (!existsSync(tjPath) && hasOpenAIMerges ? 'openai' : 'hf');
  if (mode === 'openai') {
    const contextLength = opts.contextLength ?? contextLengthFor(modelDir, readJsonIfExists(join(modelDir, 'tokenizer_config.json')));
    const { bpe, source } = loadOpenAIVocab(modelDir);
    return new OpenAIClipTokenizer(bpe, { contextLength, source, vocabSize: opts.vocabSize ?? vocabSizeFor(modelDir) });
  }
  const vocabSize = opts.vocabSize ?? vocabSizeFor(modelDir);
  const vocabTxt = join(modelDir, 'vocab.txt');
  if (!existsSync(tjPath) && existsSync(vocabTxt)) {
    const config = readJsonIfExists(join(modelDir, 'tokenizer_config.json')) ?? {};
    const json = bertTokenizerJsonFromVocab(readText(vocabTxt, 'vocab.txt'), config, vocabTxt);
    return tokenizerFromJson(json, config, { mode, contextLength: opts.contextLength ?? contextLengthFor(modelDir, config), source: vocabTxt, vocabSize, clean: opts.clean });
  }
  // Some checkpoints (google/siglip-*) ship a sentencepiece spiece.model and no tokenizer.json; their family says its rules.
  const spiece = join(modelDir, 'spiece.model');
  if (!existsSync(tjPath) && existsSync(spiece) && opts.sentencepiece) {
    const config = readJsonIfExists(join(modelDir, 'tokenizer_config.json')) ?? {};
    checkTokenizerFile(spiece, 'spiece.model');
    const eos = typeof config.eos_token === 'string' ? config.eos_token : config.eos_token?.content ?? '</s>';
    const json = opts.sentencepiece(parseSentencePieceModel(readFileSync(spiece), spiece), eos, spiece);
    return tokenizerFromJson(json, { pad_token: eos, ...config }, { mode, contextLength: opts.contextLength ?? contextLengthFor(modelDir, config), source: spiece, vocabSize, clean: opts.clean });
  }
  if (!existsSync(tjPath)) {
    const hint = existsSync(join(modelDir, 'open_clip_config.json'))
      ? ' (an open_clip checkpoint: load an OpenAI-mode tokenizer from a directory with a CLIP vocabulary)'
      : existsSync(spiece) ? ' (its spiece.model is read only as part of a checkpoint whose family says its tokenizer rules)' : '';
    throw new Error(`tokenizer.json not found: ${tjPath}${hint}`);
  }
  const shipped = readJson<TokenizerJson>(tjPath, 'tokenizer.json');
  const json = opts.tokenizerJson ? opts.tokenizerJson(shipped, tjPath) : shipped;
  // tokenizer.json says it all; tokenizer_config.json only adds options (as in transformers, it may be absent).
  const config = (readJsonIfExists(join(modelDir, 'tokenizer_config.json')) ?? {}) as TokenizerConfigJson;
  const contextLength = opts.contextLength ?? contextLengthFor(modelDir, config);
  return tokenizerFromJson(json, config, { mode, contextLength, source: tjPath, vocabSize, clean: opts.clean });
}
