// One writer per index: a pid file next to the database. A writer killed with -9 leaves its file behind;
// the next writer sees that the pid is gone and takes over, so a crash never blocks the rerun.
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed writer stays a zombie until its parent reaps it, and signal 0 still reaches a zombie. On Linux,
  // /proc tells them apart (state Z/X); elsewhere assume alive.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat[stat.lastIndexOf(')') + 2];
    return state !== 'Z' && state !== 'X';
  } catch {
    return !existsSync('/proc/self/stat');
  }
}

/** Take the writer lock for `dbPath`; resolves to a release function. Throws if a live process holds it. */
export async function lockWriter(dbPath: string): Promise<() => Promise<void>> {
  const lock = `${dbPath}.lock`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      return () => rm(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await readFile(lock, 'utf8').catch(() => '');
    const pid = parseInt(text, 10);
    if (pid && pid !== process.pid && alive(pid)) throw new Error(`${dbPath} is being written by process ${pid} (lock ${lock})`);
    // Stale: move it aside (atomic, so of two racing takers only one gets this file) and check it was the
    // stale one we read, not a lock a racing writer created in between.
    const aside = `${lock}.stale-${process.pid}`;
    try {
      await rename(lock, aside);
    } catch {
      continue;
    }
    const moved = await readFile(aside, 'utf8').catch(() => '');
    await rm(aside, { force: true });
    if (moved !== text) throw new Error(`${dbPath}: another writer started at the same time; retry`);
  }
  throw new Error(`${dbPath}: could not take the writer lock ${lock}`);
}
