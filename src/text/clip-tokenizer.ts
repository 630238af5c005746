// HF-mode CLIP tokenizer (CLIPTokenizerFast semantics): NFC, whitespace collapse, lowercase, byte-level BPE with '</w>'.
import { bytesToUnicode } from './openai-bpe.js';
import { HfTextTokenizer, type TokenizerConfigJson, type TokenizerJson } from './hf-tokenizer.js';

export interface ClipTokenizerOptions {
  /** Defaults to 77, CLIP's text context. */
  contextLength?: number;
  /** The file the JSON came from, for messages. */
  source?: string;
  /** The text tower's vocab_size, when known: every id must be below it. */
  vocabSize?: number;
}

export class ClipTokenizer extends HfTextTokenizer {
  private readonly byteDecoder: Map<string, number>;
  private readonly suffixMarker: string;

  constructor(json: TokenizerJson, config: TokenizerConfigJson = {}, opts: ClipTokenizerOptions = {}) {
    if (json?.model?.type !== 'BPE') throw new Error(`ClipTokenizer needs a BPE tokenizer.json, got model type ${JSON.stringify(json?.model?.type)}`);
    super(json, config, { kind: 'clip-bpe', contextLength: opts.contextLength ?? 77, source: opts.source, vocabSize: opts.vocabSize });
    this.byteDecoder = new Map(bytesToUnicode().map((c, b) => [c, b]));
    const eow = json.model['end_of_word_suffix'];
    this.suffixMarker = typeof eow === 'string' ? eow : '</w>';
  }

  /**
   * CLIPTokenizer.decode as the reference fixtures record it: special tokens skipped, '</w>' read as a space,
   * no clean-up of spaces before punctuation ("a cat ."). The library's decode cleans those up, so do it here.
   */
  override decode(ids: readonly number[]): string {
    let text = '';
    for (const id of ids) {
      if (this.specialIds.has(id)) continue;
      text += this.tokenizer.id_to_token(id) ?? '';
    }
    text = text.replaceAll(this.suffixMarker, ' ');
    const bytes: number[] = [];
    const enc = new TextEncoder();
    for (const ch of text) {
      const b = this.byteDecoder.get(ch);
      if (b !== undefined) bytes.push(b);
      else for (const x of enc.encode(ch)) bytes.push(x); // the spaces inserted above
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).trim();
  }
}
