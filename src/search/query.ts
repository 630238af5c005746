// Query algebra as in rclip: `"beach" + "sunset" - "people"`. Each term is embedded and L2-normalized, the
// signed terms are summed and the sum renormalized, so "- people" pushes results away from people.
import { existsSync, statSync } from 'node:fs';
import { l2normalize } from '../runtime/vectors.js';
import { isImagePath } from './walk.js';

export interface QueryTerm {
  sign: 1 | -1;
  kind: 'text' | 'image';
  value: string;
}

type Token = { op: '+' | '-' } | { word: string; quoted: boolean };

/** Split one argument: quoted strings, standalone + / - (a hyphen inside a word stays), bare words. */
function tokenize(arg: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const isSpace = (c: string | undefined) => c === undefined || /\s/.test(c);
  while (i < arg.length) {
    const c = arg[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if ((c === '+' || c === '-') && (isSpace(arg[i + 1]) || arg[i + 1] === '"' || arg[i + 1] === "'")) {
      out.push({ op: c });
      i++;
    } else if (c === '"' || c === "'") {
      const end = arg.indexOf(c, i + 1);
      if (end < 0) throw new Error(`query: unclosed ${c} in ${JSON.stringify(arg)}`);
      out.push({ word: arg.slice(i + 1, end), quoted: true });
      i = end + 1;
    } else {
      let j = i;
      while (j < arg.length && !/\s/.test(arg[j]!) && arg[j] !== '"' && arg[j] !== "'") j++;
      out.push({ word: arg.slice(i, j), quoted: false });
      i = j;
    }
  }
  return out;
}

/** A term names an image when it is an existing image file (rclip's rule); everything else is text. */
function classify(value: string): 'text' | 'image' {
  try {
    return isImagePath(value) && existsSync(value) && statSync(value).isFile() ? 'image' : 'text';
  } catch {
    return 'text';
  }
}

/**
 * Parse the query arguments. Shell words and quoted parts both work: `beach + "sunset" - people`,
 * or the single argument `"beach" + "sunset" - "people"`. Bare words between operators form one term
 * (`a red car - night`), two terms with no operator between them are added.
 */
export function parseQuery(args: string[]): QueryTerm[] {
  const tokens = args.flatMap((a) => (a === '+' || a === '-' ? [{ op: a } as Token] : tokenize(a)));
  const terms: QueryTerm[] = [];
  let sign: 1 | -1 | undefined;
  let bare: string[] = [];
  const flush = () => {
    if (!bare.length) return;
    push(bare.join(' '));
    bare = [];
  };
  const push = (value: string) => {
    if (!value.trim()) throw new Error('query: empty term');
    terms.push({ sign: sign ?? 1, kind: classify(value), value });
    sign = undefined;
  };
  for (const t of tokens) {
    if ('op' in t) {
      flush();
      if (sign !== undefined) throw new Error(`query: two operators in a row near "${t.op}"`);
      sign = t.op === '-' ? -1 : 1;
    } else if (t.quoted) {
      flush();
      push(t.word);
    } else {
      bare.push(t.word);
    }
  }
  flush();
  if (sign !== undefined) throw new Error('query: ends with an operator');
  return terms;
}

/** The two encoders a query needs (ClipModel has both). */
export interface QueryEncoder {
  encodeTexts(texts: string[]): Promise<Float32Array[]>;
  encodeImages(inputs: string[]): Promise<{ embedding?: Float32Array; error?: string }[]>;
}

/** Embed every term, sum with signs, renormalize. */
export async function embedQuery(model: QueryEncoder, terms: QueryTerm[]): Promise<Float32Array> {
  if (!terms.length) throw new Error('query: nothing to search for (give a text or --image)');
  const texts = terms.filter((t) => t.kind === 'text');
  const images = terms.filter((t) => t.kind === 'image');
  const textEmb = texts.length ? await model.encodeTexts(texts.map((t) => t.value)) : [];
  const imageRes = images.length ? await model.encodeImages(images.map((t) => t.value)) : [];
  const bad = imageRes.find((r) => !r.embedding);
  if (bad) throw new Error(`query image: ${bad.error}`);
  const parts = [...texts.map((t, i) => [t.sign, textEmb[i]!] as const), ...images.map((t, i) => [t.sign, imageRes[i]!.embedding!] as const)];
  const sum = new Float32Array(parts[0]![1].length);
  for (const [s, e] of parts) {
    const u = l2normalize(e);
    for (let i = 0; i < sum.length; i++) sum[i] += s * u[i]!;
  }
  let norm = 0;
  for (const x of sum) norm += x * x;
  if (Math.sqrt(norm) < 1e-6) throw new Error('query: the terms cancel out');
  return l2normalize(sum);
}
