// The root of clip-ts's own caches (benchmark data, built ONNX towers, training runs). It lives in io,
// the lowest layer, so runtime can use it without importing from data/.
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$CLIP_CACHE`, else `$XDG_CACHE_HOME/clip-ts`, else `~/.cache/clip-ts` (the convention bench/ uses too). */
export function clipCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CLIP_CACHE) return env.CLIP_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'clip-ts');
  return join(homedir(), '.cache', 'clip-ts');
}
