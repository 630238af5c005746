// PyTorch checkpoints (torch.save and torch.jit.save zips) read by the allowlisted unpickler:
// the real fixtures against their safetensors twins, the malicious one refused, and small
// hand-assembled archives for what the fixtures do not exercise (strides, offsets, wrappers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTorchCheckpoint } from '../src/io/torch.js';
import { PickleError, PickleGlobal, PickleRefusedError, unpickle } from '../src/io/pickle.js';
import { ZipReader } from '../src/io/zip.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { floatToHalf, toFloat32 } from '../src/io/tensor.js';
import { SKIP_FIXTURES, fixture } from './fixtures.js';
import { op, tensorOps, writeZip } from './hostile/zip-writer.js';

const tmp = mkdtempSync(join(tmpdir(), 'torch-ckpt-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const sorted = (xs: string[]): string[] => [...xs].sort();

// ---------------------------------------------------------------- real fixtures

test('HF pytorch_model.bin (torch.save, float32) equals model.safetensors bit for bit', { skip: SKIP_FIXTURES }, () => {
  const ckpt = loadTorchCheckpoint(fixture('pickles', 'hf-clip-tiny-pytorch_model.bin'));
  const st = new SafetensorsFile(fixture('hf-clip-tiny', 'model.safetensors'));
  try {
    assert.equal(ckpt.format, 'torch.save');
    assert.deepEqual(sorted(ckpt.keys()), sorted(st.keys()));
    for (const k of st.keys()) {
      const a = ckpt.get(k);
      const b = st.get(k);
      assert.equal(a.dtype, 'float32', k);
      assert.deepEqual(a.shape, b.shape, k);
      assert.ok(Buffer.from(a.bytes).equals(Buffer.from(b.bytes)), `${k} differs`);
    }
  } finally {
    ckpt.close();
    st.close();
  }
});

test('OpenAI float16 .bin keeps float16 and is exactly the fp32 weights rounded to half', { skip: SKIP_FIXTURES }, () => {
  const ckpt = loadTorchCheckpoint(fixture('pickles', 'openai-vit-tiny-fp16.bin'));
  const st = new SafetensorsFile(fixture('openai-vit-tiny', 'open_clip_model.safetensors'));
  try {
    assert.deepEqual(sorted(ckpt.keys()), sorted(st.keys()));
    let count = 0;
    for (const k of st.keys()) {
      const a = ckpt.get(k);
      assert.equal(a.dtype, 'float16', k);
      const ref = toFloat32(st.get(k));
      assert.deepEqual(a.shape, st.info(k)!.shape, k);
      const half = new Uint16Array(a.bytes.buffer, a.bytes.byteOffset, a.bytes.length / 2);
      const f = toFloat32(a);
      for (let i = 0; i < ref.length; i++) {
        // Measured: every element is the round-to-nearest-even half of the fp32 weight, so compare bits.
        if (half[i] !== floatToHalf(ref[i]!)) assert.fail(`${k}[${i}]: half 0x${half[i]!.toString(16)} is not round(${ref[i]})`);
        // And the value-level bound fp16 guarantees: half an ulp (2^-11 relative, 2^-25 absolute for subnormals).
        const tol = Math.max(Math.abs(ref[i]!) * 2 ** -11, 2 ** -25);
        if (Math.abs(f[i]! - ref[i]!) > tol) assert.fail(`${k}[${i}]: ${f[i]} vs ${ref[i]}`);
        count++;
      }
    }
    assert.ok(count > 1_000_000);
  } finally {
    ckpt.close();
    st.close();
  }
});

test('TorchScript .pt (torch.jit.save) yields the state dict with its dotted names', { skip: SKIP_FIXTURES }, () => {
  const ckpt = loadTorchCheckpoint(fixture('pickles', 'openai-vit-tiny-torchscript.pt'));
  const st = new SafetensorsFile(fixture('openai-vit-tiny', 'open_clip_model.safetensors'));
  try {
    assert.equal(ckpt.format, 'torchscript');
    assert.ok(ckpt.has('visual.conv1.weight'));
    assert.ok(ckpt.has('visual.transformer.resblocks.1.mlp.c_proj.weight'));
    assert.deepEqual(sorted(ckpt.keys()), sorted(st.keys()));
    for (const k of st.keys()) {
      const a = ckpt.get(k);
      const b = st.get(k);
      assert.equal(a.dtype, b.dtype, k);
      assert.deepEqual(a.shape, b.shape, k);
      assert.ok(Buffer.from(a.bytes).equals(Buffer.from(b.bytes)), `${k} differs`);
    }
  } finally {
    ckpt.close();
    st.close();
  }
});

test('malicious checkpoint is refused, naming the global, and nothing runs', { skip: SKIP_FIXTURES }, () => {
  const pwned = '/tmp/pwned';
  rmSync(pwned, { force: true });
  const path = fixture('pickles', 'malicious-pytorch_model.bin');
  assert.throws(() => loadTorchCheckpoint(path), (e: Error) => {
    assert.match(e.message, /^refusing to load /);
    assert.ok(e.message.includes(path), e.message);
    assert.match(e.message, /global posix\.system, which is not part of a tensor state dict/);
    assert.ok(e.cause instanceof PickleRefusedError);
    return true;
  });
  assert.equal(existsSync(pwned), false, '/tmp/pwned was created');
});

test('truncated checkpoint fails with a clear error', { skip: SKIP_FIXTURES }, () => {
  const whole = readFileSync(fixture('pickles', 'hf-clip-tiny-pytorch_model.bin'));
  const path = join(tmp, 'truncated.bin');
  writeFileSync(path, whole.subarray(0, Math.floor(whole.length / 2)));
  assert.throws(() => loadTorchCheckpoint(path), (e: Error) => e.message.includes(path) && /truncated/.test(e.message));
});

// ---------------------------------------------------------------- not a checkpoint

test('garbage, empty and legacy (non-zip) files are rejected with the reason', () => {
  const garbage = join(tmp, 'garbage.bin');
  writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff)));
  assert.throws(() => loadTorchCheckpoint(garbage), (e: Error) => e.message.startsWith(garbage) && /not a zip archive/.test(e.message));

  const empty = join(tmp, 'empty.bin');
  writeFileSync(empty, '');
  assert.throws(() => loadTorchCheckpoint(empty), /not a zip archive/);

  // Pre-1.6 torch.save: a bare pickle stream starting with the magic number.
  const legacy = join(tmp, 'legacy.bin');
  writeFileSync(legacy, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, ...new Array(40).fill(0)]));
  assert.throws(() => loadTorchCheckpoint(legacy), (e: Error) => /legacy .*not supported/.test(e.message) && /re-save/.test(e.message));

  const missing = join(tmp, 'does-not-exist.bin');
  assert.throws(() => loadTorchCheckpoint(missing), (e: Error) => e.message.includes(missing));

  // A valid zip that is not a torch archive.
  const other = join(tmp, 'other.zip');
  writeZip(other, [{ name: 'readme.txt', data: Buffer.from('hello') }]);
  assert.throws(() => loadTorchCheckpoint(other), /has no data\.pkl/);
});

// ---------------------------------------------------------------- hand-assembled archives

const f32 = (xs: number[], bigEndian = false): Uint8Array => {
  const b = Buffer.alloc(xs.length * 4);
  xs.forEach((x, i) => (bigEndian ? b.writeFloatBE(x, i * 4) : b.writeFloatLE(x, i * 4)));
  return b;
};
const f16 = (xs: number[]): Uint8Array => {
  const b = Buffer.alloc(xs.length * 2);
  xs.forEach((x, i) => b.writeUInt16LE(floatToHalf(x), i * 2));
  return b;
};
const values = (t: { dtype: string; shape: number[]; bytes: Uint8Array }): number[] => Array.from(toFloat32(t as Parameters<typeof toFloat32>[0]));

test('views: strides, storage offsets, shared storages, deflated entries, wrapper dicts', () => {
  const w = Array.from({ length: 12 }, (_, i) => i + 0.5); // storage 0: a 3x4 matrix, row-major
  const tensors: [string, Buffer][] = [
    ['w', tensorOps('0', 'FloatStorage', 12, 0, [3, 4], [4, 1])],
    ['wT', tensorOps('0', 'FloatStorage', 12, 0, [4, 3], [1, 4])], // transpose: same storage, swapped strides
    ['row2', tensorOps('0', 'FloatStorage', 12, 8, [4], [1])],
    ['col1', tensorOps('0', 'FloatStorage', 12, 1, [3], [4])],
    ['scalar', tensorOps('0', 'FloatStorage', 12, 5, [], [])],
    ['sub', tensorOps('0', 'FloatStorage', 12, 5, [2, 2], [4, 1])], // a 2x2 block in the middle
    ['half', tensorOps('1', 'HalfStorage', 3, 0, [3], [1])],
    ['broadcast', tensorOps('1', 'HalfStorage', 3, 2, [2, 3], [0, 0])], // expand(): stride 0
    ['dT', tensorOps('2', 'DoubleStorage', 6, 0, [3, 2], [1, 3])], // 8-byte elements, transposed
    ['bytesT', tensorOps('3', 'ByteStorage', 6, 0, [3, 2], [1, 3])],
  ];
  // {'state_dict': OrderedDict(...) with BUILD {'_metadata': {}}, 'epoch': 3}, as a training script would save.
  const sd = Buffer.concat([
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.mark, ...tensors.flatMap(([k, t]) => [op.str(k), t]), op.setitems,
    op.emptyDict, op.str('_metadata'), op.emptyDict, op.setitem, op.build,
  ]);
  const pkl = Buffer.concat([op.proto(2), op.emptyDict, op.mark, op.str('epoch'), op.int(3), op.str('state_dict'), sd, op.setitems, op.stop]);
  const path = join(tmp, 'views.pt');
  writeZip(path, [
    { name: 'views/data.pkl', data: pkl, deflate: true },
    { name: 'views/byteorder', data: Buffer.from('little') },
    { name: 'views/data/0', data: f32(w) },
    { name: 'views/data/1', data: f16([1, -2, 0.25]), deflate: true },
    { name: 'views/data/2', data: new Uint8Array(new Float64Array([0.1, 1, 2, 3, 4, 5]).buffer) },
    { name: 'views/data/3', data: new Uint8Array([0, 1, 2, 3, 4, 5]), deflate: true },
  ]);
  const c = loadTorchCheckpoint(path);
  try {
    assert.equal(c.unwrapped, 'state_dict');
    assert.deepEqual(c.keys(), tensors.map(([k]) => k));
    assert.deepEqual(values(c.get('w')), w);
    assert.deepEqual(c.get('wT').shape, [4, 3]);
    assert.deepEqual(values(c.get('wT')), [0, 1, 2, 3].flatMap((i) => [0, 1, 2].map((j) => w[j * 4 + i]!)));
    assert.deepEqual(values(c.get('row2')), w.slice(8, 12));
    assert.deepEqual(values(c.get('col1')), [w[1], w[5], w[9]]);
    assert.deepEqual(c.get('scalar').shape, []);
    assert.deepEqual(values(c.get('scalar')), [w[5]]);
    assert.deepEqual(values(c.get('sub')), [w[5], w[6], w[9], w[10]]);
    const h = c.get('half');
    assert.equal(h.dtype, 'float16');
    assert.deepEqual(values(h), [1, -2, 0.25]);
    assert.deepEqual(values(c.get('broadcast')), [0.25, 0.25, 0.25, 0.25, 0.25, 0.25]);
    const dT = c.get('dT');
    assert.deepEqual(Array.from(new Float64Array(dT.bytes.buffer, dT.bytes.byteOffset, 6)), [0.1, 3, 1, 4, 2, 5]);
    assert.deepEqual(Array.from(c.get('bytesT').bytes), [0, 3, 1, 4, 2, 5]);
    // Every returned tensor owns contiguous bytes of exactly numel * itemsize.
    assert.equal(c.get('wT').bytes.length, 48);
  } finally {
    c.close();
  }
});

test('big-endian archives are byte-swapped; views past their storage are rejected', () => {
  const path = join(tmp, 'be.pt');
  const pkl = Buffer.concat([op.proto(2), op.emptyDict, op.str('x'), tensorOps('0', 'FloatStorage', 3, 0, [3], [1]), op.setitem, op.stop]);
  writeZip(path, [
    { name: 'be/data.pkl', data: pkl },
    { name: 'be/byteorder', data: Buffer.from('big') },
    { name: 'be/data/0', data: f32([1.5, -3, 1e-3], true) },
  ]);
  const c = loadTorchCheckpoint(path);
  assert.deepEqual(values(c.get('x')), Array.from(new Float32Array([1.5, -3, 1e-3])));
  c.close();

  const bad = join(tmp, 'oob.pt');
  const pkl2 = Buffer.concat([op.proto(2), op.emptyDict, op.str('x'), tensorOps('0', 'FloatStorage', 3, 1, [3], [1]), op.setitem, op.stop]);
  writeZip(bad, [{ name: 'oob/data.pkl', data: pkl2 }, { name: 'oob/data/0', data: f32([1, 2, 3]) }]);
  assert.throws(() => loadTorchCheckpoint(bad), /reaches past its 3-element storage/);

  const missing = join(tmp, 'nostorage.pt');
  writeZip(missing, [{ name: 'ns/data.pkl', data: pkl }]);
  assert.throws(() => loadTorchCheckpoint(missing), /storage 0 is missing from the archive/);
});

test('TorchScript layout: module objects walked into dotted names, code/ declarations respected', () => {
  const code = 'class M(Module):\n  __parameters__ = ["w", ]\n  __buffers__ = ["b", ]\n  w : Tensor\n  training : bool\n  def forward(self: __torch__.m.M) -> None:\n    return None\n';
  const obj = (cls: string, attrs: Buffer[]): Buffer => Buffer.concat([
    op.global('__torch__.m', cls), op.emptyTuple, op.newobj, op.emptyDict, op.mark, ...attrs, op.setitems, op.build,
  ]);
  const sub = obj('Sub', [op.str('x'), tensorOps('0', 'FloatStorage', 4, 2, [2], [1]), op.str('training'), op.false_]);
  const pkl = Buffer.concat([op.proto(2), obj('M', [
    op.str('w'), tensorOps('0', 'FloatStorage', 4, 0, [2, 2], [2, 1]),
    op.str('b'), tensorOps('0', 'FloatStorage', 4, 3, [1], [1]),
    op.str('mask'), tensorOps('0', 'FloatStorage', 4, 0, [4], [1]), // a plain attribute, not state
    op.str('training'), op.false_,
    op.str('sub'), sub,
  ]), op.stop]);
  const path = join(tmp, 'script.pt');
  writeZip(path, [
    { name: 'script/data.pkl', data: pkl },
    { name: 'script/code/__torch__/m.py', data: Buffer.from(code) },
    { name: 'script/constants.pkl', data: Buffer.from([0x80, 0x02, 0x29, 0x2e]) },
    { name: 'script/data/0', data: f32([1, 2, 3, 4]) },
  ]);
  const c = loadTorchCheckpoint(path);
  assert.equal(c.format, 'torchscript');
  assert.deepEqual(c.keys(), ['w', 'b', 'sub.x']); // Sub has no code/ declaration: all its tensors kept
  assert.deepEqual(c.skipped, ['mask']);
  assert.deepEqual(values(c.get('sub.x')), [3, 4]);
  c.close();

  // The same `__torch__` classes in a plain torch.save archive (no code/) are refused.
  const plain = join(tmp, 'plain-with-torch-class.pt');
  writeZip(plain, [{ name: 'p/data.pkl', data: pkl }, { name: 'p/data/0', data: f32([1, 2, 3, 4]) }]);
  assert.throws(() => loadTorchCheckpoint(plain), /refusing to load .*global __torch__\.m\.M/);
});

// ---------------------------------------------------------------- the VM on its own

test('unpickler refuses unknown globals at GLOBAL/STACK_GLOBAL, before any call', () => {
  let called = false;
  const findGlobal = (m: string, n: string): PickleGlobal | undefined =>
    m === 'ok' ? new PickleGlobal(m, n, { call: () => { called = true; return 1; } }) : undefined;
  // builtins.eval("...") via protocol 4 STACK_GLOBAL, with FRAME and MEMOIZE as Python writes them.
  const body = Buffer.concat([op.shortStr('builtins'), op.memoize, op.shortStr('eval'), op.memoize, op.stackGlobal, op.shortStr('1+1'), Buffer.from([0x85]), op.reduce, op.stop]);
  const p4 = Buffer.concat([op.proto(4), op.frame(body.length), body]);
  assert.throws(() => unpickle(p4, { findGlobal }), (e: Error) => e instanceof PickleRefusedError && /global builtins\.eval/.test(e.message));
  // The refusal comes before a later allowed call in the same stream would run.
  const p2 = Buffer.concat([op.proto(2), op.global('os', 'system'), op.global('ok', 'f'), op.emptyTuple, op.reduce, op.stop]);
  assert.throws(() => unpickle(p2, { findGlobal }), /global os\.system/);
  assert.equal(called, false);
  // Allowed globals work, memo round-trips, tuples and dicts come back as arrays and Maps.
  const p3 = Buffer.concat([op.proto(4), op.emptyDict, op.memoize, op.shortStr('a'), op.global('ok', 'f'), op.emptyTuple, op.reduce, op.setitem,
    op.shortStr('self'), op.binget(0), op.setitem, op.stop]);
  const d = unpickle(p3, { findGlobal }) as Map<string, unknown>;
  assert.equal(d.get('a'), 1);
  assert.equal(d.get('self'), d);
  assert.equal(called, true);
  // REDUCE on something that is not an allowed callable is an error, not a call.
  assert.throws(() => unpickle(Buffer.concat([op.proto(2), op.str('x'), op.emptyTuple, op.reduce, op.stop]), { findGlobal }), PickleError);
  // Truncated streams say so.
  assert.throws(() => unpickle(Buffer.concat([op.proto(2), op.str('hello')]).subarray(0, 9), { findGlobal }), /truncated/);
});

test('zip reader lists entries and reads ranges of stored and deflated entries', () => {
  const path = join(tmp, 'plain.zip');
  const big = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
  writeZip(path, [{ name: 'a/stored', data: big }, { name: 'a/deflated', data: big, deflate: true }]);
  const z = new ZipReader(path);
  try {
    assert.deepEqual(z.names(), ['a/stored', 'a/deflated']);
    assert.equal(z.entry('a/deflated')!.method, 8);
    assert.ok(Buffer.from(z.read('a/deflated')).equals(big));
    assert.ok(Buffer.from(z.readRange('a/stored', 1000, 10)).equals(big.subarray(1000, 1010)));
    assert.ok(Buffer.from(z.readRange('a/deflated', 4990, 10)).equals(big.subarray(4990)));
    assert.throws(() => z.readRange('a/stored', 4995, 10), /cannot read/);
    assert.throws(() => z.read('nope'), /no entry "nope"/);
  } finally {
    z.close();
  }
});
