// Runs the real `clip` command on a hostile input with a hard time limit and reports its time and peak memory.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLIP_BIN, REPO_ROOT } from '../fixtures.js';

export interface CliRun { code: number | null; signal: string | null; stdout: string; stderr: string; ms: number; rssMb: number; timedOut: boolean }

const PROBE = pathToFileURL(join(REPO_ROOT, 'dist', 'test', 'hostile', 'rss-probe.js')).href;

export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): Promise<CliRun> {
  const scratch = mkdtempSync(join(tmpdir(), 'clip-rss-'));
  const probe = join(scratch, 'rss');
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', PROBE, CLIP_BIN, ...args], {
      cwd: opts.cwd, env: { ...process.env, CLIP_RSS_PROBE: probe, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { if (stderr.length < 1 << 20) stderr += d; });
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 30_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let rssKb = 0;
      try {
        rssKb = Math.max(0, ...readFileSync(probe, 'utf8').trim().split('\n').map(Number));
      } catch { /* killed before exit: no probe line */ }
      rmSync(scratch, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, rssMb: rssKb / 1024, timedOut });
    });
  });
}
