// A real Postgres (+ pgvector) for tests: PGlite (WASM Postgres) served over the wire protocol by
// @electric-sql/pglite-socket's `pglite-server`, started as a child process on a free loopback port and stopped
// by its PID. Its limits shape how tests use it: one session behind the socket (statements of all connections
// serialize), so a pool of 1 per process (PgvectorStore does this when it sees PGlite).
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export interface PgServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Start pglite-server with pgvector; resolves once it listens. `vector: false` starts one without the extension. */
export async function startPglite(opts: { vector?: boolean; maxConnections?: number } = {}): Promise<PgServer> {
  // The package exports no bin path; its entry point sits in dist/ beside scripts/server.js (the bin).
  const dist = dirname(require.resolve('@electric-sql/pglite-socket'));
  const args = [join(dist, 'scripts', 'server.js'), '--host', '127.0.0.1', '--port', '0', '--max-connections', String(opts.maxConnections ?? 8)];
  if (opts.vector !== false) args.push('--extensions', '@electric-sql/pglite-pgvector:vector');
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pglite-server did not start within 60 s:\n${log}`)), 60_000);
    const onData = (b: Buffer) => {
      log += b.toString();
      const m = /listening on (\{.*\})/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(JSON.parse(m[1]!).port);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => { log += b.toString(); });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pglite-server exited (${code}) before listening:\n${log}`));
    });
  });
  // Keep draining its output (one line per connection) so the pipe never fills and blocks it.
  child.stdout!.resume();
  child.stderr!.resume();
  const pid = child.pid!;
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    pid,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      process.kill(pid, 'SIGTERM');
    }),
  };
}
