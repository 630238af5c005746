// OpenAI and open_clip checkpoints ship no tokenizer: OpenAI's loader carries CLIP's BPE vocabulary inside
// its package. We get it the way a user would: vocab.json + merges.txt of openai/clip-vit-base-patch32 from
// the Hugging Face hub, once, into the standard hub cache (HF_HOME / HF_HUB_CACHE / HF_ENDPOINT /
// HF_HUB_OFFLINE as for any model). Offline without it, the error says which file to put where.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { hubConfig } from '../hub/config.js';
import { HubError } from '../hub/errors.js';
import { hubDownload, type ResolveOptions } from '../hub/resolve.js';
import type { Checkpoint } from '../models/checkpoint.js';
import { bpeVocabFromOpenAIMerges, EOT_TOKEN, SOT_TOKEN } from '../text/openai-bpe.js';
import { checkTokenizerFile } from '../text/validate.js';

export const CLIP_VOCAB_REPO = 'openai/clip-vit-base-patch32';
/** merges.txt alone determines the vocabulary; vocab.json is fetched to check that the two agree. */
export const CLIP_VOCAB_FILES = ['merges.txt', 'vocab.json'] as const;
/** CLIP's BPE: 256 bytes, 256 end-of-word bytes, 48,894 merges, start and end of text. */
export const CLIP_VOCAB_SIZE = 49408;

const url = (f: string) => `https://huggingface.co/${CLIP_VOCAB_REPO}/resolve/main/${f}`;

/**
 * Check downloaded CLIP BPE files: merges.txt must give the 49,408-token vocabulary (SOT 49406, EOT 49407)
 * and vocab.json must list exactly that, token for token. A mirror serving another tokenizer is refused.
 */
export function checkClipVocabFiles(dir: string): void {
  const merges = join(dir, 'merges.txt');
  const vocabFile = join(dir, 'vocab.json');
  checkTokenizerFile(merges, 'merges.txt');
  checkTokenizerFile(vocabFile, 'vocab.json');
  const fromMerges = bpeVocabFromOpenAIMerges(readFileSync(merges, 'utf8'), CLIP_VOCAB_SIZE).vocab;
  let listed: Record<string, unknown>;
  try {
    listed = JSON.parse(readFileSync(vocabFile, 'utf8'));
  } catch (e) {
    throw new Error(`${vocabFile}: not valid JSON (${(e as Error).message})`);
  }
  const bad = (why: string) => new Error(`${dir}: merges.txt and vocab.json are not CLIP's BPE vocabulary (${why}); delete them to download them again`);
  if (!listed || typeof listed !== 'object' || Array.isArray(listed)) throw bad('vocab.json is not an object');
  const n = Object.keys(listed).length;
  if (n !== CLIP_VOCAB_SIZE || Object.keys(fromMerges).length !== CLIP_VOCAB_SIZE) throw bad(`vocab.json has ${n} tokens, CLIP has ${CLIP_VOCAB_SIZE}`);
  for (const [tok, id] of Object.entries(fromMerges)) {
    if (listed[tok] !== id) throw bad(`token ${JSON.stringify(tok)} is ${JSON.stringify(listed[tok])} in vocab.json, ${id} by merges.txt`);
  }
  if (fromMerges[SOT_TOKEN] !== 49406 || fromMerges[EOT_TOKEN] !== 49407) throw bad('start/end-of-text ids are not 49406/49407');
}

/**
 * The hub snapshot directory holding CLIP's BPE files (downloaded when missing, then checked). Errors name
 * the checkpoint (`model`) and say which file to place where for offline use: `modelDir`, its own directory.
 */
export async function clipVocabDir(model: string, modelDir: string, o: ResolveOptions = {}): Promise<string> {
  const cfg = hubConfig(o);
  const fetchAll = async (opts: ResolveOptions) => {
    let dir = '';
    for (const f of CLIP_VOCAB_FILES) dir = dirname(await hubDownload(CLIP_VOCAB_REPO, f, opts));
    return dir;
  };
  try {
    // In the cache already: checked when it was downloaded (and the cache verifies content against its hash).
    return await fetchAll({ ...o, offline: true });
  } catch (e) {
    if (!(e instanceof HubError && e.kind === 'offline')) throw e;
  }
  let dir: string;
  try {
    if (cfg.offline) throw new HubError('offline', 'offline');
    // One retry (not the model download's three): an unreachable hub should not hold up a load for long.
    dir = await fetchAll({ retries: 1, ...o });
  } catch (e) {
    if (!(e instanceof HubError)) throw e;
    const why = e.kind === 'offline' ? 'offline mode (HF_HUB_OFFLINE=1) forbids downloading it' : `the hub could not provide it (${e.message})`;
    throw new Error(`${model}: this OpenAI/open_clip checkpoint ships no tokenizer, and CLIP's BPE vocabulary (merges.txt and ` +
      `vocab.json of ${CLIP_VOCAB_REPO}) is not in the hub cache at ${cfg.cacheDir}; ${why}. Fix: run once online, or download ` +
      `${url('merges.txt')} and place it at ${join(resolve(modelDir), 'merges.txt')}, or pass --tokenizer DIR ` +
      '(a directory with a CLIP tokenizer.json or merges.txt)');
  }
  // Freshly downloaded: make sure it is CLIP's vocabulary before anything uses it (~0.5 s, once).
  checkClipVocabFiles(dir);
  return dir;
}

/** Does this checkpoint need CLIP's BPE from the hub (OpenAI tokenization, nothing local)? */
export const needsClipVocab = (ck: Checkpoint): boolean => ck.tokenizerMode === 'openai' && !ck.tokenizerDir;

/** The checkpoint with `tokenizerDir` pointing at CLIP's BPE when it needs one from the hub. */
export async function withClipVocab(ck: Checkpoint, o: ResolveOptions = {}): Promise<Checkpoint> {
  if (!needsClipVocab(ck)) return ck;
  // "Next to the checkpoint": its directory, or the directory of a bare .pt file.
  const modelDir = statSync(ck.path).isDirectory() ? ck.path : dirname(ck.path);
  return { ...ck, tokenizerDir: await clipVocabDir(ck.path, modelDir, o) };
}
