// Idempotent build steps. A step's output is one directory, built under a temporary name and renamed
// into place only after it finished, with a `.step.json` stamp naming its inputs. A later run skips a
// step whose stamp matches; an interrupted run leaves only a temp dir (swept next time), never a
// half-filled directory that looks done; changed inputs (new pins, new code version) rebuild it.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const STAMP = '.step.json';
const TMP_MARK = '.tmp-';

export interface StepStamp<R> {
  inputs: string;
  result: R;
  seconds: number;
}

export const fingerprint = (inputs: unknown): string => createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);

/** The stored result of a finished step whose inputs still match, else undefined. */
export function finished<R>(dir: string, inputs: unknown): StepStamp<R> | undefined {
  const p = join(dir, STAMP);
  if (!existsSync(p)) return undefined;
  try {
    const s = JSON.parse(readFileSync(p, 'utf8')) as StepStamp<R>;
    return s.inputs === fingerprint(inputs) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Remove temp dirs/files that a killed run left beside `dir` (only dead processes' ones). */
function sweep(dir: string): void {
  const parent = dirname(dir);
  if (!existsSync(parent)) return;
  const prefix = basename(dir) + TMP_MARK;
  for (const n of readdirSync(parent)) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (pid !== process.pid && !alive(pid)) rmSync(join(parent, n), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StepReport {
  name: string;
  skipped: boolean;
  seconds: number;
}

/**
 * Run `build(tmpDir)` unless `dir` already holds a finished build of the same inputs; returns the
 * build's result (stored in the stamp, so a skipped step still reports its counts).
 */
export async function step<R>(
  name: string, dir: string, inputs: unknown, build: (tmp: string) => Promise<R>, reports?: StepReport[],
): Promise<R> {
  const done = finished<R>(dir, inputs);
  if (done) {
    reports?.push({ name, skipped: true, seconds: done.seconds });
    return done.result;
  }
  sweep(dir);
  const tmp = `${dir}${TMP_MARK}${process.pid}-${Date.now().toString(36)}`;
  mkdirSync(tmp, { recursive: true });
  const t0 = performance.now();
  try {
    const result = await build(tmp);
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    writeFileSync(join(tmp, STAMP), JSON.stringify({ inputs: fingerprint(inputs), result, seconds } satisfies StepStamp<R>));
    // The old (stale) output goes only once the new one is complete.
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    reports?.push({ name, skipped: false, seconds });
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Write a file through a temporary name so readers never see a partial one. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}${TMP_MARK}${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Map with at most `limit` calls in flight (keeps CPU use modest on shared machines). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>, onDone?: (n: number) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
      onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
