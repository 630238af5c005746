// Where the hub is, who we are and where the cache lives: options first, then the environment variables
// huggingface_hub reads, so a cache shared with Python tools is found without extra setup.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface HubOptions {
  /** Hub URL (default HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** Access token sent as Bearer (default HF_TOKEN, else the token file `hf auth login` writes). */
  token?: string;
  /** Hub cache directory (default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Cache only, never touch the network (default HF_HUB_OFFLINE). */
  offline?: boolean;
  /**
   * Accept files the hub gives no way to check (an ETag that is neither a sha256 nor a git blob sha1, or no
   * size): default CLIP_HUB_ALLOW_UNVERIFIED. Off, such a download is refused before its body is read.
   */
  allowUnverified?: boolean;
  /** Environment to read instead of process.env (tests, embedding). */
  env?: Record<string, string | undefined>;
}

export interface HubConfig {
  endpoint: string;
  token?: string;
  cacheDir: string;
  offline: boolean;
  allowUnverified: boolean;
}

// The values huggingface_hub accepts as true for its boolean variables.
const TRUTHY = new Set(['1', 'true', 'yes', 'on']);
const truthy = (v: string | undefined) => TRUTHY.has((v ?? '').trim().toLowerCase());

function readToken(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function hubConfig(o: HubOptions = {}): HubConfig {
  const env = o.env ?? process.env;
  const hfHome = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  return {
    endpoint: (o.endpoint ?? (env.HF_ENDPOINT || 'https://huggingface.co')).replace(/\/+$/, ''),
    token: o.token ?? (env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || readToken(env.HF_TOKEN_PATH || join(hfHome, 'token'))),
    cacheDir: o.cacheDir ?? (env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome, 'hub')),
    offline: o.offline ?? truthy(env.HF_HUB_OFFLINE),
    allowUnverified: o.allowUnverified ?? truthy(env.CLIP_HUB_ALLOW_UNVERIFIED),
  };
}
