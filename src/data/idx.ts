// IDX files (the MNIST / Fashion-MNIST container): 2 zero bytes, a type byte (0x08 = unsigned byte),
// the number of dimensions, each dimension as a big-endian uint32, then the data. Gzipped files
// (as Debian ships them) are inflated first.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(bytes: Uint8Array): IdxArray {
  const buf = bytes[0] === 0x1f && bytes[1] === 0x8b ? new Uint8Array(gunzipSync(bytes)) : bytes;
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error('not an IDX file (bad magic)');
  if (buf[2] !== 0x08) throw new Error(`IDX element type 0x${buf[2]!.toString(16)} is not supported (only unsigned bytes)`);
  const n = buf[3]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 + 4 * n) throw new Error('IDX header truncated');
  const dims = Array.from({ length: n }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * n;
  if (buf.length !== start + size) throw new Error(`IDX data is ${buf.length - start} bytes, dims ${dims.join('x')} need ${size}`);
  return { dims, data: buf.subarray(start) };
}

export const readIdx = (path: string): IdxArray => parseIdx(readFileSync(path));

/** Image i of an [n, rows, cols] array, as a view (no copy). */
export function idxImage(a: IdxArray, i: number): Uint8Array {
  if (a.dims.length !== 3) throw new Error(`expected [n, rows, cols], got [${a.dims.join(', ')}]`);
  const per = a.dims[1]! * a.dims[2]!;
  return a.data.subarray(i * per, (i + 1) * per);
}
