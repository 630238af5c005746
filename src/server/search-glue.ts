// The only place the server touches src/search (built alongside): opening the `--db` index and turning a
// text query (with its algebra, `"beach" + "sunset" - "people"`) into one vector. Kept small so changes
// there need edits here only.
import { existsSync } from 'node:fs';
import { openStore } from '../search/open.js';
import { isPostgresUrl } from '../search/pg-store.js';
import { embedQuery, parseQuery } from '../search/query.js';
import { describeDamage, type VectorStore } from '../search/store.js';
import { HttpError } from './intake.js';

export async function openIndex(path: string): Promise<VectorStore> {
  // openStore would create an empty store at a missing path; a server should say the path is wrong instead.
  // (A postgres:// URL without our tables is refused by the store itself, with the URL's password hidden.)
  if (!isPostgresUrl(path) && !existsSync(path)) throw new Error(`--db ${path}: no index there (build one with \`clip index\`)`);
  const store = await openStore(path);
  if (store.damage) process.stderr.write(`clip serve: warning: ${describeDamage(path, store.damage)}; stop the server and run \`clip index --repair --db ${path}\` to clean it up\n`);
  return store;
}

/**
 * One unit-length query vector for a text query; malformed algebra is the client's fault (400), and so is a
 * query of more than maxTerms terms (each is a text to embed).
 */
export async function textQueryVector(query: string, embed: (texts: string[]) => Promise<Float32Array[]>, maxTerms: number): Promise<Float32Array> {
  let terms;
  try {
    // The CLI treats a term naming an existing image file as an image. Over HTTP that would let a client
    // make the server read any image on its disk, so every term is text here.
    terms = parseQuery([query]).map((t) => ({ ...t, kind: 'text' as const }));
  } catch (e) {
    throw new HttpError(400, `body/query: ${(e as Error).message.replace(/^query:\s*/, '')}`);
  }
  if (terms.length > maxTerms) throw new HttpError(400, `body/query has ${terms.length} terms; the limit is ${maxTerms}`);
  const encoder = {
    encodeTexts: embed,
    encodeImages: () => Promise.reject(new Error('image terms are not accepted over HTTP')),
  };
  try {
    return await embedQuery(encoder, terms);
  } catch (e) {
    // embedQuery's own complaints start with "query:" ("the terms cancel out"); anything else (queue full) passes.
    if ((e as Error).message.startsWith('query:')) throw new HttpError(400, `body/query: ${(e as Error).message.replace(/^query:\s*/, '')}`);
    throw e;
  }
}
