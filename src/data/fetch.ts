// Fetch one pinned package and extract the members the build reads. npm packages come through
// `npm pack` (the registry client, honouring the user's npm config); Debian packages through
// `apt-get download`, falling back to the archive pool over HTTPS where apt is unavailable.
// Either way the archive's checksum must match the pin before anything is extracted.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEBIAN_MIRROR, type DebSource, type NpmSource, type Source } from './sources.js';

/** Run a command; resolve with stdout, reject with the tail of stderr. `pipeTo` feeds stdout to a second command. */
function run(cmd: string, args: string[], cwd: string, pipeTo?: [string, string[]]): Promise<string> {
  return new Promise((resolve, reject) => {
    const a = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const b = pipeTo ? spawn(pipeTo[0], pipeTo[1], { cwd, stdio: ['pipe', 'ignore', 'pipe'] }) : undefined;
    let out = '';
    let err = '';
    if (b) a.stdout.pipe(b.stdin!);
    else a.stdout.on('data', (d: Buffer) => { out += d; });
    a.stderr.on('data', (d: Buffer) => { err += d; });
    b?.stderr!.on('data', (d: Buffer) => { err += d; });
    const wait = (p: ReturnType<typeof spawn>, name: string) => new Promise<void>((res, rej) => {
      p.on('error', (e) => rej(new Error(`${name}: ${e.message}`)));
      p.on('close', (code) => (code === 0 ? res() : rej(new Error(`${name} exited with ${code}: ${err.trim().split('\n').slice(-5).join('\n')}`))));
    });
    Promise.all([wait(a, cmd), b ? wait(b, pipeTo![0]) : Promise.resolve()]).then(() => resolve(out), reject);
  });
}

async function digest(path: string, algo: 'sha512' | 'sha256', enc: 'base64' | 'hex'): Promise<string> {
  const h = createHash(algo);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest(enc);
}

const onlyFile = (dir: string, ext: string): string => {
  const f = readdirSync(dir).filter((n) => n.endsWith(ext));
  if (f.length !== 1) throw new Error(`expected one ${ext} in ${dir}, found ${f.length}`);
  return join(dir, f[0]!);
};

async function downloadNpm(s: NpmSource, dl: string): Promise<string> {
  await run('npm', ['pack', `${s.name}@${s.version}`, '--pack-destination', dl, '--ignore-scripts', '--silent'], dl);
  const file = onlyFile(dl, '.tgz');
  const got = `sha512-${await digest(file, 'sha512', 'base64')}`;
  if (got !== s.integrity) throw new Error(`${s.name}@${s.version}: integrity ${got} does not match the pinned ${s.integrity}`);
  return file;
}

async function downloadDeb(s: DebSource, dl: string, log: (m: string) => void): Promise<string> {
  const spec = `${s.name}=${s.version}`;
  try {
    await run('apt-get', ['download', spec], dl);
  } catch (first) {
    // Missing package lists are the usual cause; refreshing them needs root.
    let ok = false;
    if (process.getuid?.() === 0) {
      log(`apt-get download failed (${(first as Error).message.split('\n')[0]}); running apt-get update`);
      try {
        await run('apt-get', ['update'], dl);
        await run('apt-get', ['download', spec], dl);
        ok = true;
      } catch { /* fall through to the pool */ }
    }
    if (!ok) {
      const url = `${DEBIAN_MIRROR}/${s.pool}`;
      log(`apt-get download unavailable; fetching ${url}`);
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      writeFileSync(join(dl, s.pool.split('/').pop()!), new Uint8Array(await res.arrayBuffer()));
    }
  }
  const file = onlyFile(dl, '.deb');
  const got = await digest(file, 'sha256', 'hex');
  if (got !== s.sha256) throw new Error(`${spec}: sha256 ${got} does not match the pinned ${s.sha256}`);
  return file;
}

/** Download, verify and extract `s` into `dir` (npm: `dir/package/...`; deb: `dir/usr/...`). */
export async function fetchSource(s: Source, dir: string, log: (m: string) => void): Promise<void> {
  const dl = join(dir, '.download');
  mkdirSync(dl, { recursive: true });
  const tarArgs = ['-x', '-C', dir, '--no-same-owner', '--wildcards'];
  if (s.kind === 'npm') {
    const file = await downloadNpm(s, dl);
    await run('tar', [...tarArgs, '-z', '-f', file, ...s.members], dir);
  } else {
    const file = await downloadDeb(s, dl, log);
    await run('dpkg-deb', ['--fsys-tarfile', file], dir, ['tar', [...tarArgs, '-f', '-', ...s.members]]);
  }
  rmSync(dl, { recursive: true, force: true });
}
