// safetensors reader. Only the JSON header is read up front; each tensor is read from disk
// when asked for, so a multi-GB checkpoint never sits in memory twice.
import { openSync, readSync, closeSync, fstatSync, fsyncSync } from 'node:fs';
import { type DType, type RawTensor, type TensorSource, DTYPE_BYTES, numel } from './tensor.js';
import { writeAll } from './write-all.js';
import { IO_LIMITS } from './limits.js';

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
    if (size < 8) this.fail('file is shorter than its 8-byte header length');
    const lenBuf = this.readExactly(8, 0, 'the header length');
    const headerLen = Number(Buffer.from(lenBuf).readBigUInt64LE(0));
    const maxHeader = IO_LIMITS.safetensorsMaxHeaderBytes;
    if (headerLen > maxHeader) this.fail(`header length ${headerLen} is more than the limit of ${maxHeader} bytes`);
    if (headerLen > size - 8) this.fail(`header length ${headerLen} does not fit in a ${size}-byte file (truncated?)`);
    const headerText = Buffer.from(this.readExactly(headerLen, 8, 'the header')).toString('utf8');
    // JSON.parse builds whatever the text nests; a header is an object of objects of short arrays.
    const shapeProblem = checkHeaderShape(headerText);
    if (shapeProblem) this.fail(`header is not a safetensors header: ${shapeProblem}`);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerText);
    } catch (e) {
      this.fail(`header is not valid JSON (${(e as Error).message})`);
    }
    this.dataStart = 8 + headerLen;
    this.metadata = this.readMetadata(header.__metadata__);
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      this.entries.set(name, this.readEntry(name, v));
    }
    this.checkLayout(size - this.dataStart);
  }

  /** One header entry, checked field by field; the error says which tensor and what is wrong. */
  private readEntry(name: string, v: unknown): Entry {
    const t = `tensor ${JSON.stringify(name)}`;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`${t}: entry is ${jsonKind(v)}, not an object`);
    const info = v as Record<string, unknown>;
    if (typeof info.dtype !== 'string') this.fail(`${t}: dtype is ${jsonKind(info.dtype)}, not a string`);
    const dtype = Object.hasOwn(DTYPES, info.dtype) ? DTYPES[info.dtype] : undefined;
    if (!dtype) this.fail(`${t}: unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      this.fail(`${t}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (shape.length > IO_LIMITS.tensorMaxRank) this.fail(`${t}: shape has ${shape.length} dimensions, more than the limit of ${IO_LIMITS.tensorMaxRank}`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      this.fail(`${t}: data_offsets ${JSON.stringify(offsets)} are not two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) this.fail(`${t}: data_offsets [${begin}, ${end}] are not increasing`);
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== bytes) {
      this.fail(`${t}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but shape [${shape.join(', ')}] of ${info.dtype} needs ${bytes}`);
    }
    return { dtype, shape: [...shape] as number[], begin, end };
  }

  /** As the reference reader requires: the tensors tile the data section exactly, without gaps or overlaps. */
  private checkLayout(dataBytes: number): void {
    const byOffset = [...this.entries].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
    let at = 0;
    let prev = '';
    for (const [name, e] of byOffset) {
      const t = `tensor ${JSON.stringify(name)}: data_offsets [${e.begin}, ${e.end}]`;
      if (e.end > dataBytes) this.fail(`${t} reach past the ${dataBytes}-byte data section (file truncated?)`);
      if (e.begin < at) this.fail(`${t} overlap tensor ${JSON.stringify(prev)}, which ends at ${at}`);
      if (e.begin > at) this.fail(`${t} leave a gap of ${e.begin - at} bytes after ${prev ? `tensor ${JSON.stringify(prev)}` : 'the header'}`);
      at = e.end;
      prev = name;
    }
    if (at !== dataBytes) this.fail(`${dataBytes - at} bytes follow the last tensor's data (corrupt file?)`);
  }

  private readMetadata(v: unknown): Record<string, string> {
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`__metadata__ is ${jsonKind(v)}, not an object`);
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string') this.fail(`__metadata__ entry ${JSON.stringify(k)} is ${jsonKind(x)}, not a string`);
    }
    return v as Record<string, string>;
  }

  private readExactly(length: number, pos: number, what: string): Uint8Array {
    const buf = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const n = readSync(this.fd!, buf, off, length - off, pos + off);
      if (n <= 0) this.fail(`unexpected end of file reading ${what}`);
      off += n;
    }
    return buf;
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

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`.slice(0, 80);
}

/**
 * A linear pre-scan of the header text, before JSON.parse: the top level is an object, nothing nests
 * deeper than object -> object -> list, no nested object or list has more than 1024 items, and the
 * whole holds a bounded number of values. This is what keeps a 100 MB header of `[[[[...`, of a
 * million-element list or of a million tiny tensors from costing gigabytes. Returns what is wrong.
 */
function checkHeaderShape(text: string): string | undefined {
  const counts: number[] = [];
  const maxValues = IO_LIMITS.safetensorsMaxHeaderValues;
  let values = 0;
  let inString = false;
  let first = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (first && c !== 0x7b) return 'it does not start with "{"';
    first = false;
    // Each value in the header is preceded by one of these (or is a container).
    if ((c === 0x3a || c === 0x2c || c === 0x7b || c === 0x5b) && ++values > maxValues) {
      return `it holds more than ${maxValues} values (at byte ${i})`;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      counts.push(1);
      if (counts.length > 3) return `values nest deeper than 3 levels (at byte ${i})`;
    } else if (c === 0x7d || c === 0x5d) counts.pop();
    else if (c === 0x2c && counts.length >= 2 && ++counts[counts.length - 1]! > 1024) {
      return `a nested object or list has more than 1024 items (at byte ${i})`;
    }
  }
  return undefined;
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
