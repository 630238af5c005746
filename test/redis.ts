// Debian's redis-server (scripts/ci-deps.sh installs it) for tests: started on a free loopback port in a
// directory of the test's, without persistence, and stopped by its PID.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export const HAVE_REDIS = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
export const SKIP_REDIS: string | false = HAVE_REDIS ? false : 'redis-server is not installed (scripts/ci-deps.sh installs it)';

export const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => {
    const port = (s.address() as { port: number }).port;
    s.close(() => resolve(port));
  });
});

export interface RedisServer {
  url: string;
  stop(): Promise<void>;
}

export async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  const redis: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    redis.stdout!.on('data', (d: Buffer) => {
      log += d;
      if (/Ready to accept connections/.test(log)) resolve();
    });
    redis.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log}`)));
  });
  redis.stdout!.resume();
  redis.stderr!.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (!redis.pid || redis.exitCode !== null || redis.signalCode !== null) return;
      const gone = new Promise((r) => redis.once('exit', r));
      process.kill(redis.pid, 'SIGTERM');
      await gone;
    },
  };
}
