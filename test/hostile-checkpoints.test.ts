// Hostile checkpoint files: each is generated here (a few KB to a few MB), opened and read in a child
// process, and must end quickly with an error that names the file and says what is wrong, without the
// process growing to hundreds of MB. The child keeps a bad case from hanging or exhausting the test
// runner itself, and its peak RSS is the measurement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflatedRepeat, moduleObj, op, tensorOps, writeZip } from './hostile/zip-writer.js';

const tmp = mkdtempSync(join(tmpdir(), 'hostile-ckpt-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const MAX_MS = 5000;
const MAX_RSS_MB = 300; // peak of the whole child, Node itself included (~50 MB)
const IO = new URL('../src/io/', import.meta.url).href;

// Opens the file as the model loader would and reads every tensor; prints what happened as one JSON line.
const CHILD = `
const [kind, path, io] = process.argv.slice(1);
const t0 = performance.now();
let r;
try {
  const src = kind === 'safetensors'
    ? new (await import(io + 'safetensors.js')).SafetensorsFile(path)
    : (await import(io + 'torch.js')).loadTorchCheckpoint(path);
  for (const k of src.keys()) src.get(k);
  r = { ok: true, keys: src.keys() };
  src.close();
} catch (e) {
  r = { ok: false, error: String(e && e.message || e) };
}
r.ms = performance.now() - t0;
r.rssMB = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify(r));
`;

interface Outcome { ok: boolean; error?: string; keys?: string[]; ms: number; rssMB: number }
const worst = { ms: 0, rssMB: 0, msCase: '', rssCase: '' };

function open(kind: 'safetensors' | 'torch', path: string): Outcome {
  // The old code hung for hours or grew to gigabytes on some of these: a kill time and a heap cap turn
  // that into a quick failure instead of a stalled or swapping test machine.
  const p = spawnSync(process.execPath, ['--max-old-space-size=1024', '--input-type=module', '-e', CHILD, kind, path, IO], { encoding: 'utf8', timeout: 60_000 });
  assert.ok(p.status === 0 && p.stdout.trim(), `${path}: child ${p.signal ? `killed (${p.signal}, timed out?)` : `exited ${p.status}`}: ${p.stderr.slice(-500)}`);
  const r = JSON.parse(p.stdout.trim().split('\n').pop()!) as Outcome;
  if (r.ms > worst.ms) Object.assign(worst, { ms: r.ms, msCase: path });
  if (r.rssMB > worst.rssMB) Object.assign(worst, { rssMB: r.rssMB, rssCase: path });
  assert.ok(r.ms < MAX_MS, `${path}: took ${r.ms.toFixed(0)} ms`);
  assert.ok(r.rssMB < MAX_RSS_MB, `${path}: peak RSS ${r.rssMB.toFixed(0)} MB`);
  return r;
}

/** Refused, with a message that names the file and matches `why`. */
function refused(kind: 'safetensors' | 'torch', path: string, why: RegExp): void {
  const r = open(kind, path);
  assert.equal(r.ok, false, `${path}: was accepted (tensors ${r.keys?.join(', ').slice(0, 200)})`);
  assert.ok(r.error!.includes(path), `error does not name the file: ${r.error}`);
  assert.match(r.error!, why);
}

process.on('exit', () => {
  if (worst.msCase) console.log(`# hostile checkpoints: worst time ${worst.ms.toFixed(0)} ms (${worst.msCase}), worst peak RSS ${worst.rssMB.toFixed(0)} MB (${worst.rssCase})`);
});

// ---------------------------------------------------------------- safetensors

/** A safetensors file with the given header (object or raw text) and data bytes. */
function st(name: string, header: unknown, data: Uint8Array | number = 0, headerLen?: bigint): string {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(text.length));
  const path = join(tmp, name);
  writeFileSync(path, Buffer.concat([len, text, typeof data === 'number' ? Buffer.alloc(data) : data]));
  return path;
}
const t = (shape: unknown, data_offsets: unknown, dtype: unknown = 'F32') => ({ dtype, shape, data_offsets });

test('safetensors: bad data_offsets are refused, naming the tensor (they used to read header bytes as weights)', () => {
  refused('safetensors', st('negative.safetensors', { w: t([1], [-4, 0]) }, 4), /tensor "w": data_offsets \[-4,0\] are not two non-negative integers/);
  refused('safetensors', st('decreasing.safetensors', { w: t([0], [10, 4]) }, 16), /tensor "w": data_offsets \[10, 4\] are not increasing/);
  refused('safetensors', st('overlap.safetensors', { a: t([2], [0, 8]), b: t([2], [4, 12]) }, 12), /tensor "b": data_offsets \[4, 12\] overlap tensor "a", which ends at 8/);
  refused('safetensors', st('past-end.safetensors', { w: t([1000], [0, 4000]) }, 16), /tensor "w": data_offsets \[0, 4000\] reach past the 16-byte data section/);
  refused('safetensors', st('gap.safetensors', { a: t([1], [0, 4]), b: t([1], [8, 12]) }, 12), /tensor "b": data_offsets \[8, 12\] leave a gap of 4 bytes after tensor "a"/);
  refused('safetensors', st('offsets-not-pair.safetensors', { w: t([1], [0, 4, 8]) }, 8), /tensor "w": data_offsets \[0,4,8\] are not two/);
  refused('safetensors', st('wrong-length.safetensors', { w: t([3], [0, 8]) }, 8), /tensor "w": data_offsets \[0, 8\] span 8 bytes, but shape \[3\] of F32 needs 12/);
  refused('safetensors', st('trailing.safetensors', { w: t([1], [0, 4]) }, 12), /8 bytes follow the last tensor's data/);
});

test('safetensors: null, non-object and malformed entries say what is wrong instead of a TypeError', () => {
  refused('safetensors', st('null-header.safetensors', 'null'), /header is not a safetensors header: it does not start with "\{"/);
  refused('safetensors', st('list-header.safetensors', '[1,2]'), /does not start with "\{"/);
  refused('safetensors', st('null-entry.safetensors', { w: null }), /tensor "w": entry is null, not an object/);
  refused('safetensors', st('null-metadata.safetensors', { __metadata__: null }), /__metadata__ is null, not an object/);
  refused('safetensors', st('metadata-number.safetensors', { __metadata__: { a: 1 } }), /__metadata__ entry "a" is number 1, not a string/);
  refused('safetensors', st('negative-shape.safetensors', { w: t([-1], [0, 4]) }, 4), /tensor "w": shape \[-1\] is not a list of non-negative integers/);
  refused('safetensors', st('fraction-shape.safetensors', { w: t([1.5], [0, 4]) }, 4), /tensor "w": shape \[1.5\] is not a list/);
  refused('safetensors', st('string-shape.safetensors', { w: t('12', [0, 4]) }, 4), /tensor "w": shape "12" is not a list/);
  refused('safetensors', st('huge-shape.safetensors', { w: t([2 ** 40, 2 ** 40], [0, 4]) }, 4), /tensor "w": data_offsets \[0, 4\] span 4 bytes, but shape \[1099511627776, 1099511627776\]/);
  refused('safetensors', st('unknown-dtype.safetensors', { w: t([1], [0, 1], 'F8_E4M3') }, 1), /tensor "w": unsupported dtype "F8_E4M3" \(supported: F32/);
  refused('safetensors', st('null-dtype.safetensors', { w: t([1], [0, 1], null) }, 1), /tensor "w": dtype is null, not a string/);
  refused('safetensors', st('not-json.safetensors', '{"w": '), /header is not valid JSON/);
});

test('safetensors: headers that would cost gigabytes to parse are refused before JSON.parse', () => {
  refused('safetensors', st('huge-header-length.safetensors', {}, 0, 2n ** 40n), /header length 1099511627776 is more than the limit of 100000000 bytes/);
  refused('safetensors', st('header-past-end.safetensors', {}, 0, 5000n), /header length 5000 does not fit in a \d+-byte file/);
  const n = 2_000_000;
  refused('safetensors', st('deep.safetensors', `{"w":${'['.repeat(n)}${']'.repeat(n)}}`), /values nest deeper than 3 levels/);
  refused('safetensors', st('long-list.safetensors', `{"w":{"dtype":"F32","shape":[${'1,'.repeat(n)}1],"data_offsets":[0,4]}}`, 4), /more than 1024 items/);
  // 250k one-byte tensors: a 16 MB header that JSON.parse would turn into ~1 GB of objects.
  const tiny = Array.from({ length: 250_000 }, (_, i) => `"${i}":{"dtype":"U8","shape":[],"data_offsets":[${i},${i + 1}]}`);
  refused('safetensors', st('many-tensors.safetensors', `{${tiny.join(',')}}`, tiny.length), /header is not a safetensors header: it holds more than 2000000 values/);
  // A legitimate header still parses, whatever strings (with brackets and escapes) it holds.
  const ok = open('safetensors', st('ok.safetensors', { __metadata__: { note: 'a [[[ {"x"} \\" ]' }, 'w[0]': t([2], [0, 8]), e: t([0], [8, 8]) }, 8));
  assert.deepEqual(ok.keys, ['w[0]', 'e']);
});

// ---------------------------------------------------------------- torch zips

const f32 = (xs: number[]): Uint8Array => new Uint8Array(new Float32Array(xs).buffer);
const stateDict = (entries: [string, Buffer][]): Buffer =>
  Buffer.concat([op.proto(2), op.emptyDict, op.mark, ...entries.flatMap(([k, v]) => [op.str(k), v]), op.setitems, op.stop]);

test('TorchScript code: declarations are scanned in linear time (2M blank lines used to hang for hours); oversized code is refused', () => {
  const pkl = Buffer.concat([op.proto(2), moduleObj('m', 'M', [
    op.str('w'), tensorOps('0', 'FloatStorage', 2, 0, [2], [1]),
    op.str('mask'), tensorOps('0', 'FloatStorage', 2, 0, [1], [1]),
  ]), op.stop]);
  const code = (body: string): string => `class M(Module):\n${body}  __parameters__ = ["w", ]\n  __buffers__ = []\n`;
  const archive = (name: string, source: string): string => {
    const path = join(tmp, name);
    writeZip(path, [
      { name: 'a/data.pkl', data: pkl },
      { name: 'a/code/__torch__/m.py', data: Buffer.from(source), deflate: true },
      { name: 'a/constants.pkl', data: Buffer.from([0x80, 0x02, 0x29, 0x2e]) },
      { name: 'a/data/0', data: f32([1, 2]) },
    ]);
    return path;
  };
  // Loads, and the declaration after the blank lines still decides what is state ('mask' is not).
  const blank = open('torch', archive('blank-lines.pt', code(' \n'.repeat(2_000_000))));
  assert.deepEqual(blank, { ...blank, ok: true, keys: ['w'] });
  refused('torch', archive('big-code.pt', code('#'.repeat(17 * 2 ** 20) + '\n')), /the 1 TorchScript source files under a\/code\/ declare \d+ bytes, more than the limit of 16777216/);
});

test('TorchScript: deeply nested modules get a depth error, not a stack overflow', () => {
  const nested = (name: string, depth: number): string => {
    // M(sub=M(sub=...M(w=tensor))) written without recursion: open every level, then close them all.
    const open1 = Buffer.concat([op.binget(0), op.emptyTuple, op.newobj, op.emptyDict, op.mark, op.shortStr('sub')]);
    const close1 = Buffer.concat([op.setitems, op.build]);
    const pkl = Buffer.concat([
      op.proto(2), op.global('__torch__.m', 'M'), Buffer.from([0x71, 0]), op.pop, // memo[0] = the class
      Buffer.alloc(open1.length * depth, open1),
      op.binget(0), op.emptyTuple, op.newobj, op.emptyDict, op.shortStr('w'), tensorOps('0', 'FloatStorage', 1, 0, [1], [1]), op.setitem, op.build,
      Buffer.alloc(close1.length * depth, close1), op.stop,
    ]);
    const path = join(tmp, name);
    writeZip(path, [
      { name: 'n/data.pkl', data: pkl, deflate: true },
      { name: 'n/constants.pkl', data: Buffer.from([0x80, 0x02, 0x29, 0x2e]) },
      { name: 'n/data/0', data: f32([1]) },
    ]);
    return path;
  };
  refused('torch', nested('nested-2k.pt', 2000), /TorchScript modules nest deeper than 1000 levels \(at "sub\.sub\.sub/);
  // 200k levels ("Maximum call stack size exceeded" before) already cost more values than a pickle may build.
  refused('torch', nested('nested-200k.pt', 200_000), /cannot read n\/data\.pkl: pickle builds more than 2000000 values/);
  assert.equal(open('torch', nested('nested-10.pt', 10)).ok, true);
});

test('tensor views are checked against their storage at load, before anything is allocated', () => {
  const archive = (name: string, pkl: Buffer, storage: Uint8Array): string => {
    const path = join(tmp, name);
    writeZip(path, [{ name: 'v/data.pkl', data: pkl }, { name: 'v/data/0', data: storage }]);
    return path;
  };
  // A 1-element storage expanded to 16384 x 16384 (stride 0): 36 s and 2.2 GB before.
  refused('torch', archive('expand.pt', stateDict([['visual.proj', tensorOps('0', 'FloatStorage', 1, 0, [16384, 16384], [0, 0])]]), f32([1])),
    /tensor "visual\.proj" \(size \[16384, 16384\], stride \[0, 0\], offset 0\) repeats its 1-element storage into 268435456 elements, more than the limit of 1048576/);
  refused('torch', archive('past.pt', stateDict([['w', tensorOps('0', 'FloatStorage', 4, 3, [2, 2], [2, 1])]]), f32([1, 2, 3, 4])),
    /tensor "w" \(size \[2, 2\], stride \[2, 1\], offset 3\) reaches past its 4-element storage \(v\/data\/0\)/);
  refused('torch', archive('huge-stride.pt', stateDict([['w', tensorOps('0', 'FloatStorage', 4, 0, [2, 2], [2 ** 30, 1])]]), f32([1, 2, 3, 4])),
    /tensor "w" .* reaches past its 4-element storage/);
  refused('torch', archive('negative-size.pt', stateDict([['w', tensorOps('0', 'FloatStorage', 4, 0, [-1], [1])]]), f32([1, 2, 3, 4])),
    /cannot read v\/data\.pkl: tensor size a 1-tuple, not a tuple of non-negative ints|tensor size .* not a tuple of non-negative ints/);
  refused('torch', archive('short-storage.pt', stateDict([['w', tensorOps('0', 'FloatStorage', 1000, 0, [1000], [1])]]), f32([1, 2, 3, 4])),
    /storage 0 has 16 bytes, fewer than its 1000 float32 elements need/);
  // A small broadcast (expand of a bias) is still fine, and a big contiguous view reads as one block.
  const n = 1 << 20;
  const big = new Float32Array(n).map((_, i) => i);
  const ok = open('torch', archive('fine.pt', stateDict([
    ['b', tensorOps('0', 'FloatStorage', n, 5, [4, 3], [0, 1])],
    ['w', tensorOps('0', 'FloatStorage', n, 0, [1024, 1024], [1024, 1])],
  ]), new Uint8Array(big.buffer)));
  assert.deepEqual(ok.keys, ['b', 'w']);
});

test('zip bombs: entries are capped by their declared size and their role before inflating', () => {
  const tensor = stateDict([['w', tensorOps('0', 'FloatStorage', 1, 0, [1], [1])]]);
  // ~1 MB of deflate that inflates to 1 GiB of zeros.
  const bomb = deflatedRepeat(0, 16 * 2 ** 20, 64);
  assert.ok(bomb.length < 1.2e6);
  const write = (name: string, items: Parameters<typeof writeZip>[1]): string => {
    const path = join(tmp, name);
    writeZip(path, items);
    return path;
  };
  // data.pkl that honestly declares 1 GiB: refused for its role, nothing inflated.
  refused('torch', write('pkl-honest.pt', [{ name: 'z/data.pkl', data: bomb, predeflated: true, declaredSize: 2 ** 30 }]),
    /entry "z\/data\.pkl" declares 1073741824 bytes, more than the 67108864-byte limit for a pickle/);
  // data.pkl that claims 1000 bytes (2.2 GB RSS before): inflation stops just past the claim.
  refused('torch', write('pkl-lying.pt', [{ name: 'z/data.pkl', data: bomb, predeflated: true, declaredSize: 1000 }]),
    /entry "z\/data\.pkl" inflates past its declared 1000 bytes \(corrupt archive or zip bomb\)/);
  // A deflated storage declaring 1 GiB (torch never compresses storages).
  refused('torch', write('storage.pt', [
    { name: 'z/data.pkl', data: stateDict([['w', tensorOps('0', 'FloatStorage', 2 ** 28, 0, [2 ** 28], [1])]]) },
    { name: 'z/data/0', data: bomb, predeflated: true, declaredSize: 2 ** 30 },
  ]), /deflated entry "z\/data\/0" declares 1073741824 bytes, more than the 134217728-byte limit for a compressed entry/);
  // TorchScript code that lies about its size.
  refused('torch', write('code.pt', [
    { name: 'z/data.pkl', data: Buffer.concat([op.proto(2), moduleObj('m', 'M', [op.str('w'), tensorOps('0', 'FloatStorage', 1, 0, [1], [1])]), op.stop]) },
    { name: 'z/code/__torch__/m.py', data: bomb, predeflated: true, declaredSize: 4096 },
    { name: 'z/data/0', data: f32([1]) },
  ]), /entry "z\/code\/__torch__\/m\.py" inflates past its declared 4096 bytes/);
  // Twenty code files, each a 1 MB bomb that honestly declares 1 MB: together past the code limit.
  refused('torch', write('many-code.pt', [
    { name: 'z/data.pkl', data: Buffer.concat([op.proto(2), moduleObj('m', 'M', [op.str('w'), tensorOps('0', 'FloatStorage', 1, 0, [1], [1])]), op.stop]) },
    ...Array.from({ length: 20 }, (_, i) => ({ name: `z/code/__torch__/m${i}.py`, data: Buffer.alloc(2 ** 20, 0x20), deflate: true })),
    { name: 'z/data/0', data: f32([1]) },
  ]), /the 20 TorchScript source files under z\/code\/ declare 20971520 bytes, more than the limit of 16777216/);
  // 2000 one-element tensors over one deflated 64 MiB storage: each read used to inflate all of it again.
  const views = Array.from({ length: 2000 }, (_, i): [string, Buffer] => [`t${i}`, tensorOps('0', 'FloatStorage', 2 ** 24, i, [1], [1])]);
  refused('torch', write('reinflate.pt', [
    { name: 'z/data.pkl', data: stateDict(views) },
    { name: 'z/data/0', data: Buffer.alloc(2 ** 26), deflate: true },
  ]), /inflating entry "z\/data\/0" would bring what this \d+-byte archive inflated to over \d+ bytes/);
  // A valid archive for the central-directory cases below.
  const good = write('good.pt', [{ name: 'z/data.pkl', data: tensor, deflate: true }, { name: 'z/data/0', data: f32([1]) }]);
  assert.equal(open('torch', good).ok, true);
  const bytes = readFileSync(good);
  const eocd = bytes.length - 22;
  const cd = bytes.readUInt32LE(eocd + 16);
  const patched = (name: string, patch: (b: Buffer) => void): string => {
    const b = Buffer.from(bytes);
    patch(b);
    writeFileSync(join(tmp, name), b);
    return join(tmp, name);
  };
  refused('torch', patched('count.pt', (b) => { b.writeUInt16LE(0xfffe, eocd + 8); b.writeUInt16LE(0xfffe, eocd + 10); }),
    /central directory of \d+ bytes cannot hold the 65534 entries it claims/);
  refused('torch', patched('offset.pt', (b) => b.writeUInt32LE(0x7fff0000, cd + 42)), /entry "z\/data\.pkl" claims \d+ bytes at offset 2147418112, past the start of the central directory/);
  refused('torch', patched('csize.pt', (b) => b.writeUInt32LE(0x7fff0000, cd + 20)), /entry "z\/data\.pkl" claims 2147418112 bytes/);
  refused('torch', patched('name.pt', (b) => b.writeUInt16LE(0xffff, cd + 28)), /central directory entry 0 (has a 65535-byte name|is corrupt)/);
});

test('pickle bombs: values, memo and big integers are bounded', () => {
  const archive = (name: string, pkl: Buffer): string => {
    const path = join(tmp, name);
    writeZip(path, [{ name: 'p/data.pkl', data: pkl, deflate: true }, { name: 'p/data/0', data: f32([1]) }]);
    return path;
  };
  // 20M empty dicts: 1 byte each in the pickle, ~200 bytes each in memory.
  refused('torch', archive('dicts.pt', Buffer.concat([op.proto(2), Buffer.alloc(20_000_000, op.emptyDict), op.stop])), /pickle builds more than 2000000 values/);
  // 20M MARKs: each opens a new stack.
  refused('torch', archive('marks.pt', Buffer.concat([op.proto(2), Buffer.alloc(20_000_000, op.mark), op.stop])), /pickle builds more than 2000000 values/);
  // One list holding a reference 20M times.
  const appendRefs = Buffer.concat([op.mark, Buffer.alloc(2000, op.binget(0)), Buffer.from('e')]);
  refused('torch', archive('appends.pt', Buffer.concat([op.proto(2), op.emptyList, Buffer.from([0x71, 0]), Buffer.alloc(appendRefs.length * 10_000, appendRefs), op.stop])),
    /pickle builds more than 2000000 values/);
  // A 1 MB integer: decoding it took quadratic time.
  const long4 = Buffer.alloc(5); long4[0] = 0x8b; long4.writeInt32LE(1 << 20, 1);
  refused('torch', archive('long.pt', Buffer.concat([op.proto(2), long4, Buffer.alloc(1 << 20, 0x7f), op.stop])), /integer of 1048576 bytes at offset \d+, more than the limit of 1024/);
  refused('torch', archive('text-int.pt', Buffer.concat([op.proto(2), Buffer.from('I'), Buffer.alloc(1 << 20, 0x31), Buffer.from('\n'), op.stop])), /integer of 1048576 digits/);
});
