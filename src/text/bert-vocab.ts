// Chinese-CLIP and many BERT checkpoints ship only vocab.txt (no tokenizer.json). The slow BERT
// tokenizer they were trained with is exactly BertNormalizer + BertPreTokenizer + WordPiece + [CLS]/[SEP],
// so we describe that pipeline as a tokenizer.json object and hand it to the same library.
import type { TokenizerConfigJson, TokenizerJson } from './hf-tokenizer.js';
import { MAX_VOCAB_SIZE } from './validate.js';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

export function bertTokenizerJsonFromVocab(vocabTxt: string, config: TokenizerConfigJson = {}, source = 'vocab.txt'): TokenizerJson {
  const vocab: Record<string, number> = {};
  // A token's id is its line number: the line count is the vocabulary size (counted before splitting).
  let n = 0;
  for (let i = vocabTxt.indexOf('\n'); i >= 0; i = vocabTxt.indexOf('\n', i + 1)) {
    if (++n > MAX_VOCAB_SIZE) throw new Error(`${source}: more than ${MAX_VOCAB_SIZE} lines, the vocabulary limit`);
  }
  vocabTxt.split(/\r?\n/).forEach((line, i) => {
    // A trailing empty line is not a token; every other line is one, spaces included.
    if (line === '' && i > 0) return;
    if (!(line in vocab)) vocab[line] = i;
  });
  for (const s of ['[CLS]', '[SEP]', '[UNK]']) if (!(s in vocab)) throw new Error(`${source} has no ${s} token`);
  const cfg = config as Record<string, unknown>;
  const lowercase = cfg.do_lower_case !== false;
  const special = (id: string) => ({ SpecialToken: { id, type_id: 0 } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.filter((s) => s in vocab).map((content) => ({
      id: vocab[content]!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: {
      type: 'BertNormalizer', clean_text: true,
      handle_chinese_chars: cfg.tokenize_chinese_chars !== false,
      strip_accents: (cfg.strip_accents as boolean | null | undefined) ?? null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]')],
      pair: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]'), { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: Object.fromEntries(['[CLS]', '[SEP]'].map((s) => [s, { id: s, ids: [vocab[s]!], tokens: [s] }])),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  } as unknown as TokenizerJson;
}
