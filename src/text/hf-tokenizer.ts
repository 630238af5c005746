// Shared wrapper over @huggingface/tokenizers for tokenizer.json files: the library does normalization,
// pre-tokenization and the model (BPE / WordPiece); this class adds HF's truncation, padding and batching.
import { Tokenizer as LibTokenizer } from '@huggingface/tokenizers';
import { checkContextLength, checkTokenizerJson } from './validate.js';
import { buildBatch, wrapAndTruncate, type EncodeBatchOptions, type TextTokenizer, type TokenBatch, type TokenizerKind } from './types.js';

/**
 * The part of @huggingface/tokenizers' Tokenizer used here. Its bundled .d.ts files use extensionless relative
 * re-exports that NodeNext cannot follow, so the import arrives untyped; this keeps our side strictly typed.
 */
export interface HfLibTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[]; tokens: string[]; attention_mask: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}
const Tokenizer = LibTokenizer as unknown as new (json: object, config: object) => HfLibTokenizer;

/** tokenizer.json as parsed JSON; only the fields this module reads are typed. */
export interface TokenizerJson {
  model: { type: string; vocab?: Record<string, number> | unknown; merges?: unknown; [k: string]: unknown };
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
  post_processor?: PostProcessorJson | null;
  padding?: { pad_id?: number } | null;
  [k: string]: unknown;
}

/** tokenizer_config.json as parsed JSON. */
export interface TokenizerConfigJson {
  pad_token?: string | { content: string } | null;
  model_max_length?: number;
  tokenizer_class?: string;
  [k: string]: unknown;
}

type PostProcessorJson = {
  type: string;
  cls?: [string, number];
  sep?: [string, number];
  single?: Array<{ SpecialToken?: { id: string } } | { Sequence?: { id: string } }>;
  special_tokens?: Record<string, { ids: number[] }>;
  processors?: PostProcessorJson[];
};

/** Special ids the post-processor puts before and after a single sequence. */
export function specialTokensOf(pp: PostProcessorJson | null | undefined): { prefix: number[]; suffix: number[] } {
  if (!pp) return { prefix: [], suffix: [] };
  switch (pp.type) {
    case 'RobertaProcessing':
    case 'BertProcessing':
      if (!pp.cls || !pp.sep) throw new Error(`${pp.type} post-processor lacks cls/sep`);
      return { prefix: [pp.cls[1]], suffix: [pp.sep[1]] };
    case 'TemplateProcessing': {
      const prefix: number[] = [];
      const suffix: number[] = [];
      let seen = false;
      for (const item of pp.single ?? []) {
        if ('Sequence' in item && item.Sequence) { seen = true; continue; }
        const name = 'SpecialToken' in item && item.SpecialToken ? item.SpecialToken.id : undefined;
        const ids = name === undefined ? undefined : pp.special_tokens?.[name]?.ids;
        if (!ids) throw new Error(`TemplateProcessing names special token ${JSON.stringify(name)} without ids`);
        (seen ? suffix : prefix).push(...ids);
      }
      return { prefix, suffix };
    }
    case 'Sequence': {
      const prefix: number[] = [];
      const suffix: number[] = [];
      for (const p of pp.processors ?? []) {
        const s = specialTokensOf(p);
        prefix.push(...s.prefix);
        suffix.unshift(...s.suffix);
      }
      return { prefix, suffix };
    }
    default:
      // ByteLevel and friends adjust offsets only.
      return { prefix: [], suffix: [] };
  }
}

export interface HfTokenizerOptions {
  contextLength: number;
  kind: TokenizerKind;
  /** The file the JSON came from, for messages (default "tokenizer.json"). */
  source?: string;
  /** The text tower's vocab_size, when known: every id must be below it. */
  vocabSize?: number;
}

export class HfTextTokenizer implements TextTokenizer {
  readonly kind: TokenizerKind;
  readonly contextLength: number;
  readonly padId: number;
  readonly startId: number | undefined;
  readonly endId: number | undefined;
  readonly vocabSize: number;
  /** The underlying @huggingface/tokenizers instance, for callers that need more than ids. */
  readonly tokenizer: HfLibTokenizer;
  protected readonly prefix: number[];
  protected readonly suffix: number[];
  protected readonly specialIds: Set<number>;

  constructor(json: TokenizerJson, config: TokenizerConfigJson, opts: HfTokenizerOptions) {
    const source = opts.source ?? 'tokenizer.json';
    // Ids and sizes first: the library allocates by the largest id.
    checkTokenizerJson(json, { file: source, vocabSize: opts.vocabSize });
    this.kind = opts.kind;
    this.contextLength = checkContextLength(opts.contextLength, source);
    this.tokenizer = new Tokenizer(json, config);
    const { prefix, suffix } = specialTokensOf(json.post_processor);
    if (opts.contextLength < prefix.length + suffix.length + 1) throw new Error(`context length ${opts.contextLength} leaves no room for text`);
    this.prefix = prefix;
    this.suffix = suffix;
    this.startId = prefix[0];
    this.endId = suffix[suffix.length - 1];
    // Cross-check our reading of the post-processor against the library's own output.
    const probe = this.tokenizer.encode('', { add_special_tokens: true }).ids;
    if (probe.join(',') !== [...prefix, ...suffix].join(',')) {
      throw new Error(`unsupported post_processor ${json.post_processor?.type}: expected specials [${[...prefix, ...suffix]}], library gives [${probe}]`);
    }
    this.specialIds = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
    this.padId = resolvePadId(this.tokenizer, json, config);
    this.vocabSize = this.tokenizer.get_vocab(true).size;
  }

  tokenize(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  encode(text: string): number[] {
    // HF truncation (truncation=True, max_length=contextLength) trims the content before the specials are added.
    return wrapAndTruncate(this.tokenize(text), this.prefix, this.suffix, this.contextLength);
  }

  encodeBatch(texts: readonly string[], opts: EncodeBatchOptions = {}): TokenBatch {
    const rows = texts.map((t) => this.encode(t));
    return this.pad(rows, opts);
  }

  pad(rows: readonly number[][], opts: EncodeBatchOptions = {}): TokenBatch {
    return buildBatch(rows, { contextLength: this.contextLength, padId: this.padId, endId: this.endId, pad: opts.pad });
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids.filter((id) => !this.specialIds.has(id)), { skip_special_tokens: true });
  }
}

function resolvePadId(tok: HfLibTokenizer, json: TokenizerJson, config: TokenizerConfigJson): number {
  const pad = config.pad_token;
  const name = typeof pad === 'string' ? pad : pad?.content;
  if (name !== undefined) {
    const id = tok.token_to_id(name);
    if (id === undefined) throw new Error(`tokenizer_config.json: pad_token ${JSON.stringify(name)} is not in the vocabulary`);
    return id;
  }
  return json.padding?.pad_id ?? 0;
}
