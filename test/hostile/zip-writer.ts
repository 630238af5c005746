// Writers for the synthetic archives the checkpoint tests need: a minimal zip writer (stored or deflated
// entries, sizes that may lie), a deflate stream of many zeros built without ever holding them, and a
// tiny pickle assembler with enough opcodes to write what torch.save writes.
import { writeFileSync } from 'node:fs';
import { constants, crc32, deflateRawSync } from 'node:zlib';

export interface ZipItem {
  name: string;
  data: Uint8Array;
  /** Store `data` deflated. */
  deflate?: boolean;
  /** `data` is already a raw deflate stream (written as method 8 as it is). */
  predeflated?: boolean;
  /** The uncompressed size to declare (default: the true one; a bomb lies). */
  declaredSize?: number;
  crc?: number;
}

/** Minimal zip writer (no ZIP64). */
export function writeZip(path: string, items: ZipItem[]): void {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const it of items) {
    const name = Buffer.from(it.name, 'utf8');
    const method = it.deflate || it.predeflated ? 8 : 0;
    const body = it.deflate ? deflateRawSync(it.data) : Buffer.from(it.data);
    const size = it.declaredSize ?? (it.predeflated ? 0 : it.data.length);
    const crc = it.crc ?? (it.predeflated ? 0 : crc32(it.data));
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(body.length, 18); lh.writeUInt32LE(size, 22); lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(body.length, 20); ch.writeUInt32LE(size, 24); ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, body);
    centrals.push(ch, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(items.length, 8); end.writeUInt16LE(items.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  writeFileSync(path, Buffer.concat([...locals, cd, end]));
}

/**
 * A raw deflate stream that inflates to `chunks` x `chunkBytes` bytes of `fill` (~1000:1): one chunk is
 * deflated with a sync flush (byte-aligned, not final) and repeated, then an empty final block closes it.
 */
export function deflatedRepeat(fill: number, chunkBytes: number, chunks: number): Buffer {
  const one = deflateRawSync(Buffer.alloc(chunkBytes, fill), { finishFlush: constants.Z_SYNC_FLUSH });
  return Buffer.concat([...Array.from({ length: chunks }, () => one), Buffer.from([0x03, 0x00])]);
}

/** Tiny pickle assembler. */
export const op = {
  proto: (v: number) => Buffer.from([0x80, v]),
  str: (s: string) => { const b = Buffer.from(s, 'utf8'); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); return Buffer.concat([h, b]); },
  shortStr: (s: string) => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([Buffer.from([0x8c, b.length]), b]); },
  int: (n: number) => {
    if (n >= 0 && n < 256) return Buffer.from([0x4b, n]);
    const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(n, 1); return b;
  },
  global: (m: string, n: string) => Buffer.from(`c${m}\n${n}\n`, 'latin1'),
  mark: Buffer.from('('), tuple: Buffer.from('t'), reduce: Buffer.from('R'), persid: Buffer.from('Q'),
  emptyDict: Buffer.from('}'), emptyTuple: Buffer.from(')'), emptyList: Buffer.from(']'), setitem: Buffer.from('s'), setitems: Buffer.from('u'),
  pop: Buffer.from('0'), dup: Buffer.from('2'), build: Buffer.from('b'), newobj: Buffer.from([0x81]), false_: Buffer.from([0x89]), stop: Buffer.from('.'),
  stackGlobal: Buffer.from([0x93]), memoize: Buffer.from([0x94]), binget: (i: number) => Buffer.from([0x68, i]),
  frame: (n: number) => { const b = Buffer.alloc(9); b[0] = 0x95; b.writeBigUInt64LE(BigInt(n), 1); return b; },
};
export const ints = (xs: number[]): Buffer => Buffer.concat([op.mark, ...xs.map(op.int), op.tuple]);

/** `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` as torch.save writes it. */
export function tensorOps(key: string, storage: string, count: number, offset: number, size: number[], stride: number[]): Buffer {
  return Buffer.concat([
    op.global('torch._utils', '_rebuild_tensor_v2'), op.mark,
    op.mark, op.str('storage'), op.global('torch', storage), op.str(key), op.str('cpu'), op.int(count), op.tuple, op.persid,
    op.int(offset), ints(size), ints(stride), op.false_, op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.tuple, op.reduce,
  ]);
}

/** A TorchScript module object `__torch__.<module>.<cls>` whose BUILD state is the given key/value ops. */
export function moduleObj(module: string, cls: string, attrs: Buffer[]): Buffer {
  return Buffer.concat([op.global(`__torch__.${module}`, cls), op.emptyTuple, op.newobj, op.emptyDict, op.mark, ...attrs, op.setitems, op.build]);
}
