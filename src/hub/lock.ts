// A cross-process lock per blob, so two `clip` runs never append to the same .incomplete file. Node has no
// flock, so the lock is an O_EXCL file holding our pid; a lock whose pid is gone (crash) is stale and taken over.
// It lives where huggingface_hub puts its (flock) locks; those are left behind empty and count as stale here.
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stale(path: string): Promise<boolean> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    if (Number.isInteger(pid) && pid > 0) return !alive(pid);
    // Empty: either a foreign (Python) lock file or one being written this instant; only old ones are stale.
    return Date.now() - (await stat(path)).mtimeMs > 2000;
  } catch {
    return false; // vanished meanwhile: just try again
  }
}

export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 60 * 60_000): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const start = Date.now();
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (await stale(path)) await rm(path, { force: true });
      else if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${path} (another download of this file is running)`);
      else await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
