// Minimal read-only zip reader: central directory, stored and deflated entries, ZIP64.
// Torch checkpoints are zip archives of uncompressed entries; a loader needs random access to
// a handful of them (data.pkl, then each tensor's storage), so entries are read from disk on
// demand instead of unpacking the archive, and a stored entry can be read in part.
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { IO_LIMITS } from './limits.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate (the only two read). */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  flags: number;
  localHeaderOffset: number;
}

/** Thrown for anything that makes the file unreadable as a zip; `notZip` when it is not one at all. */
export class ZipError extends Error {
  constructor(message: string, readonly notZip = false) {
    super(message);
    this.name = 'ZipError';
  }
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

export class ZipReader {
  private fd: number | null;
  readonly size: number;
  private readonly byName = new Map<string, ZipEntry>();
  private readonly list: ZipEntry[] = [];
  // Where each entry's data begins, found from its local header on first use.
  private readonly dataStart = new Map<string, number>();
  private inflated = 0;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      throw new ZipError(`cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      this.size = fstatSync(this.fd).size;
      this.readCentralDirectory();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  entries(): readonly ZipEntry[] { return this.list; }
  names(): string[] { return this.list.map((e) => e.name); }
  has(name: string): boolean { return this.byName.has(name); }
  entry(name: string): ZipEntry | undefined { return this.byName.get(name); }

  /**
   * The whole (decompressed) entry; its CRC is checked. `limit` bounds its size for the entry's role
   * (a pickle is small): checked against the declared size before anything is read or inflated.
   */
  read(name: string, limit?: { maxBytes: number; role: string }): Uint8Array {
    const e = this.require(name);
    if (limit && e.size > limit.maxBytes) {
      throw new ZipError(`${this.path}: entry "${name}" declares ${e.size} bytes, more than the ${limit.maxBytes}-byte limit for ${limit.role}`);
    }
    const raw = this.readAt(this.entryDataStart(e), e.compressedSize, name);
    const out = e.method === 0 ? raw : this.inflate(e, raw);
    // zlib.crc32 arrived in Node 20.15; on older runtimes the size check below is all we have.
    const crc = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
    if (crc && crc(out) >>> 0 !== e.crc32 >>> 0) throw new ZipError(`${this.path}: entry "${name}" fails its CRC check (file corrupt?)`);
    return out;
  }

  /** `length` bytes of the entry starting at `start`. A stored entry is read in place, without touching the rest. */
  readRange(name: string, start: number, length: number): Uint8Array {
    const e = this.require(name);
    if (start < 0 || length < 0 || start + length > e.size) {
      throw new ZipError(`${this.path}: entry "${name}" has ${e.size} bytes, cannot read [${start}, ${start + length})`);
    }
    if (e.method === 0) return this.readAt(this.entryDataStart(e) + start, length, name);
    // Copy out the range (a Buffer's slice would share, and pin, the whole inflated entry).
    const whole = this.read(name);
    const part = new Uint8Array(new ArrayBuffer(length));
    part.set(whole.subarray(start, start + length));
    return part;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private require(name: string): ZipEntry {
    const e = this.byName.get(name);
    if (!e) throw new ZipError(`${this.path}: no entry "${name}" in the archive`);
    if (e.flags & 1) throw new ZipError(`${this.path}: entry "${name}" is encrypted`);
    if (e.method !== 0 && e.method !== 8) throw new ZipError(`${this.path}: entry "${name}" uses compression method ${e.method}; only stored and deflate are supported`);
    return e;
  }

  private inflate(e: ZipEntry, raw: Uint8Array): Uint8Array {
    if (e.size > IO_LIMITS.zipMaxInflatedBytes) {
      throw new ZipError(`${this.path}: deflated entry "${e.name}" declares ${e.size} bytes, more than the ${IO_LIMITS.zipMaxInflatedBytes}-byte limit for a compressed entry`);
    }
    const budget = IO_LIMITS.zipMaxInflatedPerFileByte * this.size + IO_LIMITS.zipMaxInflatedAllowance;
    if (this.inflated + e.size > budget) {
      throw new ZipError(`${this.path}: inflating entry "${e.name}" would bring what this ${this.size}-byte archive inflated to over ${budget} bytes (the same compressed data read again and again?)`);
    }
    this.inflated += e.size;
    let out: Uint8Array;
    try {
      // Stop as soon as the output passes the declared size: a zip bomb never gets to allocate its output.
      out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ZipError(`${this.path}: entry "${e.name}" inflates past its declared ${e.size} bytes (corrupt archive or zip bomb)`);
      }
      throw new ZipError(`${this.path}: entry "${e.name}" does not inflate: ${(err as Error).message}`);
    }
    if (out.length !== e.size) throw new ZipError(`${this.path}: entry "${e.name}" inflates to ${out.length} bytes, expected ${e.size}`);
    return out;
  }

  /** Reads into a fresh ArrayBuffer (offset 0) so callers may view it as any typed array. */
  private readAt(pos: number, length: number, what: string): Uint8Array {
    if (this.fd === null) throw new ZipError(`${this.path}: archive already closed`);
    if (pos < 0 || pos + length > this.size) throw new ZipError(`${this.path}: ${what} lies past the end of the file (truncated?)`);
    const buf = new Uint8Array(new ArrayBuffer(length));
    let off = 0;
    while (off < length) {
      const n = readSync(this.fd, buf, off, length - off, pos + off);
      if (n <= 0) throw new ZipError(`${this.path}: unexpected end of file reading ${what}`);
      off += n;
    }
    return buf;
  }

  private entryDataStart(e: ZipEntry): number {
    let start = this.dataStart.get(e.name);
    if (start === undefined) {
      const h = this.readAt(e.localHeaderOffset, 30, `local header of "${e.name}"`);
      const dv = view(h);
      if (dv.getUint32(0, true) !== SIG_LOCAL) throw new ZipError(`${this.path}: bad local header for entry "${e.name}"`);
      // The local extra field may differ from the central one (torch pads it to align data).
      start = e.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
      if (start + e.compressedSize > this.size) throw new ZipError(`${this.path}: entry "${e.name}" runs past the end of the file (truncated?)`);
      this.dataStart.set(e.name, start);
    }
    return start;
  }

  private readCentralDirectory(): void {
    if (this.size < EOCD_SIZE) throw new ZipError(`${this.path}: not a zip archive (only ${this.size} bytes)`, true);
    // The end record sits in the last 22 bytes unless a comment follows it; scan back over at most a maximal comment.
    const tailLen = Math.min(this.size, EOCD_SIZE + MAX_COMMENT);
    const tailPos = this.size - tailLen;
    const tail = this.readAt(tailPos, tailLen, 'end of central directory');
    const tv = view(tail);
    let eocd = -1;
    for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
      if (tv.getUint32(i, true) === SIG_EOCD && i + EOCD_SIZE + tv.getUint16(i + 20, true) <= tailLen) { eocd = i; break; }
    }
    if (eocd < 0) {
      const head = this.readAt(0, 4, 'file signature');
      const isZipStart = view(head).getUint32(0, true) === SIG_LOCAL;
      throw new ZipError(isZipStart
        ? `${this.path}: zip archive is truncated or corrupt (no end-of-central-directory record)`
        : `${this.path}: not a zip archive`, !isZipStart);
    }
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    // ZIP64: the real values live in a separate record that a locator just before the end record points to.
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || tv.getUint32(loc, true) !== SIG_EOCD64_LOCATOR) throw new ZipError(`${this.path}: ZIP64 archive without a ZIP64 locator (corrupt?)`);
      const rec64Pos = num64(tv, loc + 8);
      const rec = view(this.readAt(rec64Pos, 56, 'ZIP64 end record'));
      if (rec.getUint32(0, true) !== SIG_EOCD64) throw new ZipError(`${this.path}: bad ZIP64 end record`);
      count = num64(rec, 32);
      cdSize = num64(rec, 40);
      cdOffset = num64(rec, 48);
    }
    if (cdOffset + cdSize > this.size) throw new ZipError(`${this.path}: central directory lies past the end of the file (truncated?)`);
    if (count > IO_LIMITS.zipMaxEntries) throw new ZipError(`${this.path}: archive lists ${count} entries, more than the limit of ${IO_LIMITS.zipMaxEntries}`);
    if (count * 46 > cdSize) throw new ZipError(`${this.path}: central directory of ${cdSize} bytes cannot hold the ${count} entries it claims (corrupt?)`);
    const cd = this.readAt(cdOffset, cdSize, 'central directory');
    const dv = view(cd);
    const utf8 = new TextDecoder('utf-8');
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || dv.getUint32(p, true) !== SIG_CENTRAL) throw new ZipError(`${this.path}: central directory entry ${i} is corrupt`);
      const flags = dv.getUint16(p + 8, true);
      const method = dv.getUint16(p + 10, true);
      const crc32 = dv.getUint32(p + 16, true);
      let compressedSize = dv.getUint32(p + 20, true);
      let size = dv.getUint32(p + 24, true);
      const nameLen = dv.getUint16(p + 28, true);
      const extraLen = dv.getUint16(p + 30, true);
      const commentLen = dv.getUint16(p + 32, true);
      let localHeaderOffset = dv.getUint32(p + 42, true);
      const end = p + 46 + nameLen + extraLen + commentLen;
      if (end > cd.length) throw new ZipError(`${this.path}: central directory entry ${i} is corrupt`);
      if (nameLen > IO_LIMITS.zipMaxNameBytes) throw new ZipError(`${this.path}: central directory entry ${i} has a ${nameLen}-byte name, more than the limit of ${IO_LIMITS.zipMaxNameBytes}`);
      const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extra field (id 1) holds, in order, only the fields whose 32-bit slot is saturated.
      for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
        const id = dv.getUint16(x, true);
        const len = dv.getUint16(x + 2, true);
        if (id === 1) {
          let q = x + 4;
          if (size === 0xffffffff && q + 8 <= x + 4 + len) { size = num64(dv, q); q += 8; }
          if (compressedSize === 0xffffffff && q + 8 <= x + 4 + len) { compressedSize = num64(dv, q); q += 8; }
          if (localHeaderOffset === 0xffffffff && q + 8 <= x + 4 + len) { localHeaderOffset = num64(dv, q); q += 8; }
        }
        x += 4 + len;
      }
      // Every entry's header and data lie before the central directory; a stored entry is its own size.
      if (localHeaderOffset + 30 + nameLen + compressedSize > cdOffset) {
        throw new ZipError(`${this.path}: entry "${name}" claims ${compressedSize} bytes at offset ${localHeaderOffset}, past the start of the central directory (corrupt or truncated archive)`);
      }
      if (method === 0 && compressedSize !== size) {
        throw new ZipError(`${this.path}: stored entry "${name}" has ${compressedSize} bytes but declares ${size}`);
      }
      if (this.byName.has(name)) throw new ZipError(`${this.path}: entry "${name}" appears twice in the archive`);
      const e: ZipEntry = { name, method, compressedSize, size, crc32, flags, localHeaderOffset };
      this.list.push(e);
      this.byName.set(name, e);
      p = end;
    }
  }
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function num64(dv: DataView, at: number): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(`zip field ${v} is too large`);
  return Number(v);
}
