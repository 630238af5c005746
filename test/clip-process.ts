// `clip` as a child process for multi-process tests (workers, enqueuers): its output collected, a way to wait
// for a line on stderr, and a registry so a test's `after` can kill what is still running, by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { CLIP_BIN } from './fixtures.js';

export interface ClipRun {
  child: ChildProcess;
  out: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Resolves once stderr matches `re` (rejects if the process exits first). */
  lines(re: RegExp): Promise<void>;
  /** stderr so far. */
  stderr(): string;
}

export class ClipProcesses {
  private readonly children: ChildProcess[] = [];

  run(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): ClipRun {
    const child = spawn(process.execPath, [CLIP_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    this.children.push(child);
    let stdout = '';
    let stderr = '';
    const waiters: { re: RegExp; resolve: () => void }[] = [];
    child.stdout!.on('data', (d: Buffer) => { stdout += d; });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      for (const w of [...waiters]) if (w.re.test(stderr)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    });
    const out = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
    return {
      child, out,
      stderr: () => stderr,
      lines: (re) => new Promise((resolve, reject) => {
        if (re.test(stderr)) return resolve();
        waiters.push({ re, resolve });
        out.then((o) => reject(new Error(`clip ${args[0]} exited (${o.code}) before ${re}: ${o.stderr}`)));
      }),
    };
  }

  /** SIGKILL whatever is still running. */
  killAll(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
  }
}

export interface ClipExit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Run `clip` to its end; with `killWhen`, SIGKILL it as soon as its stderr matches (a crash mid-run). */
export function runClip(args: string[], killWhen?: RegExp): Promise<ClipExit> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [CLIP_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (killWhen?.test(stderr)) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}
