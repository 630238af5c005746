// BERT WordPiece tokenizer (Chinese-CLIP, Taiyi): BertNormalizer (clean text, CJK characters split, lowercase,
// accents per config), BertPreTokenizer, '##' WordPiece with [UNK], [CLS] ... [SEP]; padded with [PAD] (id 0).
import { HfTextTokenizer, type TokenizerConfigJson, type TokenizerJson } from './hf-tokenizer.js';

export interface BertTokenizerOptions {
  /** Defaults to 52, Chinese-CLIP's text context; BERT towers accept up to their max_position_embeddings (512). */
  contextLength?: number;
  /** The file the JSON came from, for messages. */
  source?: string;
  /** The text tower's vocab_size, when known: every id must be below it. */
  vocabSize?: number;
}

export class BertTokenizer extends HfTextTokenizer {
  constructor(json: TokenizerJson, config: TokenizerConfigJson = {}, opts: BertTokenizerOptions = {}) {
    if (json?.model?.type !== 'WordPiece') throw new Error(`BertTokenizer needs a WordPiece tokenizer.json, got model type ${JSON.stringify(json?.model?.type)}`);
    super(json, config, { kind: 'wordpiece', contextLength: opts.contextLength ?? 52, source: opts.source, vocabSize: opts.vocabSize });
  }
}
