// safetensors reader. Only the JSON header is read up front; each tensor is read from disk
// when asked for, so a multi-GB checkpoint never sits in memory twice.
import { openSync, readSync, closeSync, fstatSync, fsyncSync } from 'node:fs';
import { type DType, type RawTensor, type TensorSource, DTYPE_BYTES, numel } from './tensor.js';
import { writeAll } from './write-all.js';

const DTYPES: Record<string, DType> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const CODES: Record<DType, string> = Object.fromEntries(Object.entries(DTYPES).map(([k, v]) => [v, k])) as Record<DType, string>;

interface Entry { dtype: DType; shape: number[]; begin: number; end: number }

export class SafetensorsFile implements TensorSource {
  private readonly entries = new Map<string, Entry>();
  readonly metadata: Record<string, string>;
  private readonly dataStart: number;
  private fd: number | null;

  constructor(readonly origin: string) {
    try {
      this.fd = openSync(origin, 'r');
    } catch (e) {
      throw new Error(`cannot open safetensors file ${origin}: ${(e as Error).message}`);
    }
    const size = fstatSync(this.fd).size;
    const lenBuf = Buffer.alloc(8);
    if (size < 8 || readSync(this.fd, lenBuf, 0, 8, 0) !== 8) this.fail('file is shorter than its 8-byte header length');
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > size - 8 || headerLen > 100_000_000) this.fail(`header length ${headerLen} does not fit in a ${size}-byte file`);
    const headerBuf = Buffer.alloc(headerLen);
    readSync(this.fd, headerBuf, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch {
      this.fail('header is not valid JSON');
    }
    this.dataStart = 8 + headerLen;
    this.metadata = (header.__metadata__ as Record<string, string>) ?? {};
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const info = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const dtype = DTYPES[info.dtype];
      if (!dtype) this.fail(`tensor "${name}" has unsupported dtype ${info.dtype}`);
      const [begin, end] = info.data_offsets;
      if (end - begin !== numel(info.shape) * DTYPE_BYTES[dtype] || this.dataStart + end > size) {
        this.fail(`tensor "${name}" has inconsistent offsets (file truncated?)`);
      }
      this.entries.set(name, { dtype, shape: info.shape, begin, end });
    }
  }

  private fail(msg: string): never {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    throw new Error(`${this.origin}: ${msg}`);
  }

  keys(): string[] { return [...this.entries.keys()]; }
  has(name: string): boolean { return this.entries.has(name); }
  info(name: string): { dtype: DType; shape: number[] } | undefined { return this.entries.get(name); }

  get(name: string): RawTensor {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.origin}: no tensor named "${name}"`);
    if (this.fd === null) throw new Error(`${this.origin}: file already closed`);
    // Own an aligned buffer so float32 views need no further copy.
    const bytes = new Uint8Array(new ArrayBuffer(e.end - e.begin));
    let off = 0;
    while (off < bytes.length) {
      const n = readSync(this.fd, bytes, off, bytes.length - off, this.dataStart + e.begin + off);
      if (n <= 0) throw new Error(`${this.origin}: unexpected end of file reading "${name}"`);
      off += n;
    }
    return { dtype: e.dtype, shape: [...e.shape], bytes };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** A tensor to write whose bytes are produced only when its turn comes (e.g. converted from training layout). */
export interface LazyTensor {
  name: string;
  /** Default float32. */
  dtype?: DType;
  shape: number[];
  /** Little-endian data in `shape`; a fresh conversion may be returned, it is dropped once written. */
  data: () => ArrayBufferView;
}

/**
 * Write a safetensors file one tensor at a time: the header needs only names, dtypes and shapes, so a
 * checkpoint is never gathered into one file-sized buffer. The bytes are fsynced because callers rename
 * finished files into place.
 */
export function writeSafetensorsLazily(path: string, tensors: LazyTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    if (t.name in header) throw new Error(`${path}: tensor "${t.name}" given twice`);
    const dtype = t.dtype ?? 'float32';
    const bytes = numel(t.shape) * DTYPE_BYTES[dtype];
    header[t.name] = { dtype: CODES[dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    sizes.push(bytes);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header so the data section starts 8-byte aligned, as the reference writer does.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, head);
    writeAll(fd, Buffer.from(json, 'utf8'));
    tensors.forEach((t, i) => {
      const d = t.data();
      if (d.byteLength !== sizes[i]) throw new Error(`${path}: tensor "${t.name}" has ${d.byteLength} bytes, its shape and dtype say ${sizes[i]}`);
      writeAll(fd, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    });
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write tensors as a safetensors file (checkpoints from training, test data). */
export function writeSafetensors(path: string, tensors: Map<string, RawTensor>, metadata?: Record<string, string>): void {
  writeSafetensorsLazily(path, [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: () => t.bytes })), metadata);
}
