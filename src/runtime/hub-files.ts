// A checkpoint that names files of another hub repo it does not ship (models/family.ts: MissingHubFiles;
// open_clip's Hugging Face text tower needs config.json + tokenizer.json of `hf_model_name`): they are fetched
// once into the standard hub cache (HF_HOME / HF_HUB_CACHE / HF_ENDPOINT / HF_HUB_OFFLINE as for any model)
// and the checkpoint is opened again with that snapshot as its tokenizer directory.
import { dirname } from 'node:path';
import { hubConfig } from '../hub/config.js';
import { HubError } from '../hub/errors.js';
import { hubDownload, type ResolveOptions } from '../hub/resolve.js';
import { openCheckpoint, type Checkpoint, type OpenOptions } from '../models/checkpoint.js';
import { MissingHubFiles } from '../models/family.js';

async function fetchAll(need: MissingHubFiles, o: ResolveOptions): Promise<string> {
  let dir = '';
  for (const f of need.files) dir = dirname(await hubDownload(need.repo, f, o));
  return dir;
}

/** openCheckpoint, with the other repo's files a checkpoint asks for taken from the hub cache or the hub. */
export async function openWithHubFiles(path: string, opts: OpenOptions, hub: ResolveOptions = {}): Promise<Checkpoint> {
  let need: MissingHubFiles;
  try {
    return openCheckpoint(path, opts);
  } catch (e) {
    if (!(e instanceof MissingHubFiles)) throw e;
    need = e;
  }
  const cfg = hubConfig(hub);
  let dir: string;
  try {
    dir = await fetchAll(need, { ...hub, offline: true });
  } catch (e) {
    if (!(e instanceof HubError)) throw e;
    try {
      if (cfg.offline) throw new HubError('offline', 'offline');
      // One retry (not a model download's three): an unreachable hub should not hold up a load for long.
      dir = await fetchAll(need, { retries: 1, ...hub });
    } catch (e2) {
      if (!(e2 instanceof HubError)) throw e2;
      const why = e2.kind === 'offline' ? 'offline mode (HF_HUB_OFFLINE=1) forbids downloading them' : `the hub could not provide them (${e2.message})`;
      throw new Error(`${need.message}. They are not in the hub cache at ${cfg.cacheDir}; ${why}`);
    }
  }
  return openCheckpoint(path, { ...opts, tokenizerDir: dir });
}
