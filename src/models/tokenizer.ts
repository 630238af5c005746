// The tokenizer of a model directory as its family uses it: text/'s loader reads the tokenizer files, the
// family's descriptor adds what those files do not say (Chinese-CLIP's 52-token context, the text rules over a spiece.model).
import { existsSync } from 'node:fs';
import { loadTokenizer as loadTokenizerFiles, type TokenizerOptions } from '../text/index.js';
import type { TextTokenizer } from '../text/types.js';
import { locate } from './checkpoint.js';
import { detectFamily } from './families/index.js';

/** A context length the family of `dir` fixes, if `dir` is a checkpoint of a family that does. */
export function familyContextLength(dir: string): number | undefined {
  return familyOf(dir)?.tokenizer.contextLength;
}

const familyOf = (dir: string) => (existsSync(dir) ? detectFamily(locate(dir)) : undefined);

/**
 * Loads the tokenizer of a model directory (text/index.ts: tokenizer.json + tokenizer_config.json, a BERT
 * vocab.txt, or OpenAI's BPE files), with the context length its family fixes unless `opts` gives one.
 */
export function loadTokenizer(dir: string, opts: TokenizerOptions = {}): TextTokenizer {
  const family = familyOf(dir);
  return loadTokenizerFiles(dir, {
    ...opts, contextLength: opts.contextLength ?? family?.tokenizer.contextLength, sentencepiece: opts.sentencepiece ?? family?.tokenizer.sentencepiece,
    tokenizerJson: opts.tokenizerJson ?? family?.tokenizer.tokenizerJson,
  });
}
