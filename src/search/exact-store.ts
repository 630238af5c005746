// Brute-force store for small collections: everything in memory, optionally persisted as an append-only log.
//
// File layout: "CLIPVEC1", then frames [u32 length][u32 crc32][payload]. One upsert/delete call = one frame,
// written with a single append and fdatasync'd. A crash can only leave a torn last frame, which is shorter
// than its length field says: readers stop before it and the next writer truncates it away. So each batch is
// either fully in or not, and readers in other processes never see half a batch.
//
// Damage (a flipped bit, a bad sector) is another matter: a bad frame followed by valid ones is skipped, not
// stopped at. The reader resynchronizes by trying each later byte offset until a frame verifies there. No
// magic word per frame is needed for that: a frame only verifies when its op byte is known, its sizes add up
// exactly (an upsert's count x dim x 4 + JSON length = frame length) and its CRC32 matches, which random bytes
// do about once in 2^32 tries after the structural checks, and old files get the same recovery. What was
// skipped is in `damage`. Writers leave damaged bytes where they are and append after the end of the file;
// only `repair` removes them, into a quarantine file beside the store.
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { constants as bufferLimits } from 'node:buffer';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { checkFilter, matchesFilter, type DamagedRegion, type Filter, type ImageMeta, type SearchHit, type StoreDamage, type StoredEntry, type StoreInfo, type VectorRecord, type VectorStore } from './store.js';
import { dotRow, TopK } from './topk.js';

const MAGIC = Buffer.from('CLIPVEC1');
const OP_INFO = 0;
const OP_UPSERT = 1;
const OP_DELETE = 2;
/** Widest embedding accepted from a file (CLIP's largest are 1024-1280): a header cannot make us allocate more per row. */
const MAX_DIM = 1 << 16;

/** Bytes at the end of the file that no valid frame follows. */
interface Tail extends DamagedRegion {
  /** Shorter than its length field says: a crashed writer's last append (or one still being written). */
  torn: boolean;
}

/** What `ExactStore.repair` did. */
export interface RepairReport {
  path: string;
  /** Nothing was wrong: the file was left as it was. */
  clean: boolean;
  /** Rows in the store afterwards. */
  rows: number;
  /** Valid frames read from the damaged file. */
  frames: number;
  /** Where the unreadable bytes went (with a JSON header line listing each region's offset in the store). */
  quarantine?: { path: string; bytes: number; regions: DamagedRegion[] };
}

export class ExactStore implements VectorStore {
  readonly kind = 'exact';
  private ids: string[] = [];
  private metas: ImageMeta[] = [];
  private mat: Float32Array;
  private slot = new Map<string, number>();
  /** Bytes of the file already applied, and which file (inode) they came from: a compaction replaces it. */
  private applied = 0;
  private ino = 0;
  /** Record entries written to the log since the last rewrite; compaction pays off when most are dead. */
  private logged = 0;
  private fh?: FileHandle;
  /** Damaged regions skipped so far (each followed by valid frames, or kept in place by this writer). */
  private regions: DamagedRegion[] = [];
  private frames = 0;
  private framesAfter = 0;
  /** Unreadable bytes after `applied`: re-read when the file grows, since a later frame may follow them. */
  private tail?: Tail;
  /** File size at the last read, so a damaged tail is not re-scanned until something is appended. */
  private scanned = 0;

  private constructor(public info: StoreInfo, readonly path?: string, capacity = 64) {
    this.mat = new Float32Array(info.dim * capacity);
  }

  /** A store that lives only in this process; `capacity` rows up front spare big loads the doubling copies. */
  static memory(info: StoreInfo, capacity?: number): ExactStore {
    return new ExactStore(info, undefined, capacity);
  }

  /** Open a store file, creating it with `create` when it does not exist. */
  static async open(path: string, create?: StoreInfo): Promise<ExactStore> {
    if (!existsSync(path)) {
      if (!create) throw new Error(`no index at ${path}`);
      await writeFileAtomic(path, [frame(OP_INFO, Buffer.from(JSON.stringify(create)))]);
    }
    const s = new ExactStore({ dim: 0 }, path, 0);
    s.reload();
    if (!s.info.dim) throw new Error(`${path}: the header frame is unreadable and no row tells the embedding size (${s.regions.length + (s.tail ? 1 : 0)} damaged regions); move the file away to start a new index`);
    return s;
  }

  /**
   * Rewrite a damaged store with every row its valid frames hold; the unreadable bytes (and a torn last
   * frame) go to `PATH.damaged-<UTC time>` first. Both files are written to a temp file, fsync'd and renamed,
   * so a crash leaves the old store or the repaired one. The caller must keep writers out (lockWriter).
   */
  static async repair(path: string): Promise<RepairReport> {
    const s = await ExactStore.open(path);
    try {
      const bad = [...s.regions, ...(s.tail ? [{ start: s.tail.start, end: s.tail.end, reason: s.tail.reason }] : [])];
      if (!bad.length) return { path, clean: true, rows: s.size, frames: s.frames };
      // The quarantine goes to disk first: only then may the rewrite leave those bytes out of the store.
      const fd = openSync(path, 'r');
      let chunks: Buffer[];
      try {
        if (fstatSync(fd).ino !== s.ino) throw new Error(`${path} was replaced while being repaired; run the repair again`);
        chunks = bad.map((r) => readAt(fd, r.start, r.end - r.start, path));
      } finally {
        closeSync(fd);
      }
      let at = 0;
      const listed = bad.map((r) => {
        const entry = { ...r, at };
        at += r.end - r.start;
        return entry;
      });
      const head = Buffer.from(JSON.stringify({ source: path, written: new Date().toISOString(), note: 'bytes a clip-ts exact store could not read; each region: its offset in the store (start-end) and here (at, after this line)', regions: listed }) + '\n');
      const qpath = quarantineName(path);
      await writeFileAtomic(qpath, [head, ...chunks], false);
      await writeFileAtomic(path, await s.liveFrames());
      return { path, clean: false, rows: s.size, frames: s.frames, quarantine: { path: qpath, bytes: at, regions: bad } };
    } finally {
      await s.close();
    }
  }

  get size(): number {
    return this.ids.length;
  }

  /** What readers skipped; undefined while the file is sound. A torn last frame is no damage (it may still be being written). */
  get damage(): StoreDamage | undefined {
    const regions = [...this.regions];
    if (this.tail && !this.tail.torn) regions.push({ start: this.tail.start, end: this.tail.end, reason: this.tail.reason });
    if (!regions.length) return undefined;
    return { regions, bytes: regions.reduce((n, r) => n + r.end - r.start, 0), frames: this.frames, framesAfter: this.framesAfter };
  }

  async upsert(records: VectorRecord[]): Promise<void> {
    if (!records.length) return;
    for (const r of records) if (r.vector.length !== this.info.dim) throw new Error(`vector has ${r.vector.length} dims, the store ${this.info.dim}`);
    await this.append(encodeUpsert(records, this.info.dim));
    for (const r of records) this.put(r);
    this.logged += records.length;
  }

  async delete(ids: string[]): Promise<void> {
    const present = ids.filter((id) => this.slot.has(id));
    if (!present.length) return;
    await this.append(frame(OP_DELETE, Buffer.from(JSON.stringify(present))));
    for (const id of present) this.remove(id);
    this.logged += present.length;
  }

  async search(query: Float32Array, k: number, filter?: Filter): Promise<SearchHit[]> {
    if (query.length !== this.info.dim) throw new Error(`query has ${query.length} dims, the store ${this.info.dim}`);
    if (filter) checkFilter(filter);
    this.refresh();
    const top = new TopK(k);
    for (let i = 0; i < this.ids.length; i++) {
      const s = dotRow(query, this.mat, i);
      // Filter only what would make the list: cheap scores first, metadata checks for the few survivors.
      if (s > top.floor && (!filter || matchesFilter(this.metas[i]!, filter))) top.push(s, i);
    }
    return top.items.map((i, j) => ({ id: this.ids[i]!, score: top.scores[j]!, meta: { ...this.metas[i]! } }));
  }

  async count(): Promise<number> {
    this.refresh();
    return this.ids.length;
  }

  async *entries(): AsyncIterable<StoredEntry> {
    this.refresh();
    const ids = [...this.ids];
    const metas = [...this.metas];
    for (let i = 0; i < ids.length; i++) yield { id: ids[i]!, meta: { ...metas[i]! } };
  }

  async *scan(): AsyncIterable<VectorRecord[]> {
    this.refresh();
    const ids = [...this.ids];
    for (let i = 0; i < ids.length; i += 4096) yield this.get(ids.slice(i, i + 4096));
  }

  async get(ids: string[]): Promise<VectorRecord[]> {
    this.refresh();
    const d = this.info.dim;
    return ids.flatMap((id) => {
      const i = this.slot.get(id);
      return i === undefined ? [] : [{ id, vector: this.mat.slice(i * d, (i + 1) * d), meta: { ...this.metas[i]! } }];
    });
  }

  /**
   * Rewrite the log as one frame per live batch when dead entries dominate; the rename makes it atomic.
   * Not while the file is damaged: a rewrite would drop the damaged bytes, which only `repair` may do.
   */
  async optimize(): Promise<void> {
    if (!this.path || this.logged <= 2 * this.ids.length + 1024) return;
    this.refresh();
    if (this.damage) return;
    await this.fh?.close();
    this.fh = undefined;
    await writeFileAtomic(this.path, await this.liveFrames());
    this.reload();
  }

  /** The store's content as fresh frames: the info, then the rows in batches. */
  private async liveFrames(): Promise<Buffer[]> {
    const frames = [frame(OP_INFO, Buffer.from(JSON.stringify(this.info)))];
    const recs = await this.get(this.ids);
    for (let i = 0; i < recs.length; i += 4096) frames.push(encodeUpsert(recs.slice(i, i + 4096), this.info.dim));
    return frames;
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }

  /** Add or replace one record in memory. */
  private put(r: VectorRecord): void {
    const d = this.info.dim;
    let i = this.slot.get(r.id);
    if (i === undefined) {
      i = this.ids.length;
      if ((i + 1) * d > this.mat.length) {
        const grown = new Float32Array(Math.max(this.mat.length * 2, (i + 1) * d));
        grown.set(this.mat);
        this.mat = grown;
      }
      this.ids.push(r.id);
      this.metas.push({ ...r.meta });
      this.slot.set(r.id, i);
    } else {
      this.metas[i] = { ...r.meta };
    }
    this.mat.set(r.vector, i * d);
  }

  /** Remove by moving the last row into the hole: keeps the matrix dense for the scan. */
  private remove(id: string): void {
    const i = this.slot.get(id);
    if (i === undefined) return;
    const last = this.ids.length - 1;
    const d = this.info.dim;
    if (i !== last) {
      this.ids[i] = this.ids[last]!;
      this.metas[i] = this.metas[last]!;
      this.mat.copyWithin(i * d, last * d, (last + 1) * d);
      this.slot.set(this.ids[i]!, i);
    }
    this.ids.pop();
    this.metas.pop();
    this.slot.delete(id);
  }

  private async append(buf: Buffer): Promise<void> {
    if (!this.path) return;
    if (!this.fh) {
      this.refresh();
      const fh = await open(this.path, 'r+');
      try {
        const size = (await fh.stat()).size;
        if (size !== (this.tail?.end ?? this.applied)) throw new Error(`${this.path} changed while being opened for writing (is another process writing it?)`);
        if (this.tail?.torn) {
          // A crashed writer's half frame: nothing in it was committed, so cut it off before appending.
          await fh.truncate(this.tail.start);
          this.applied = this.tail.start;
        } else if (this.tail) {
          // Unreadable bytes with no valid frame after them that are no torn write: keep them, append after.
          this.regions.push({ start: this.tail.start, end: this.tail.end, reason: this.tail.reason });
          this.applied = size;
        }
        this.tail = undefined;
      } catch (e) {
        await fh.close();
        throw e;
      }
      this.fh = fh;
    }
    for (let o = 0; o < buf.length; ) o += (await this.fh.write(buf, o, buf.length - o, this.applied + o)).bytesWritten;
    await this.fh.datasync();
    this.applied += buf.length;
  }

  private reload(): void {
    this.ids = [];
    this.metas = [];
    this.slot.clear();
    this.applied = 0;
    this.logged = 0;
    this.ino = 0;
    this.regions = [];
    this.frames = 0;
    this.framesAfter = 0;
    this.tail = undefined;
    this.scanned = 0;
    this.refresh();
  }

  /** Apply frames other processes appended since we last looked (or reload after a compaction). */
  private refresh(): void {
    if (!this.path || this.fh) return; // the writer's memory is always current
    const st = statSync(this.path);
    if (this.ino && (st.ino !== this.ino || st.size < this.applied)) return this.reload();
    // Damage at the end is only ever appended to, so the same size means nothing new. A torn tail is not
    // skipped that way: a writer cuts it off and appends, which can restore the very same size.
    if (st.size === this.applied || (this.tail && !this.tail.torn && st.size === this.scanned)) return;
    const fd = openSync(this.path, 'r');
    try {
      const { size, ino } = fstatSync(fd);
      const buf = readAt(fd, this.applied, size - this.applied, this.path);
      this.scanned = size;
      if (!this.ino) {
        if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${this.path} is not a clip-ts vector file`);
        this.ino = ino;
        this.applied = MAGIC.length;
        this.applyFrames(buf.subarray(MAGIC.length), MAGIC.length);
      } else {
        this.applyFrames(buf, this.applied);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Apply every valid frame in `buf` (which starts at file offset `base`); skip and record what is not one. */
  private applyFrames(buf: Buffer, base: number): void {
    this.tail = undefined;
    let o = 0;
    while (o < buf.length) {
      const end = probe(buf, o, this.info.dim);
      if (end > 0) {
        const error = this.applyPayload(buf.subarray(o + 8, end));
        if (error) {
          // Verifies but means nothing (a crafted file, or a newer version's frame type): skip just this frame.
          this.regions.push({ start: base + o, end: base + end, reason: error });
        } else {
          this.frames++;
          if (this.regions.length) this.framesAfter++;
        }
        o = end;
        this.applied = base + o;
        continue;
      }
      const next = resync(buf, o, this.info.dim);
      const reason = whyBad(buf, o);
      if (next < 0) {
        // Nothing valid follows: a torn or in-progress write, or damage at the very end. Both are read again
        // when the file grows; neither is applied past, so a frame appended later is still found.
        this.tail = { start: base + o, end: base + buf.length, reason, torn: end === INCOMPLETE };
        return;
      }
      this.regions.push({ start: base + o, end: base + next, reason });
      o = next;
      this.applied = base + o;
    }
  }

  /** Apply one verified frame; returns why it cannot be applied instead (and changes nothing then). */
  private applyPayload(p: Buffer): string | undefined {
    try {
      const op = p[0];
      if (op === OP_INFO) {
        const info = JSON.parse(p.subarray(1).toString('utf8'));
        if (!isObject(info)) throw new Error('info frame: not an object');
        if (!isDim(info.dim)) throw new Error(`info frame: dim ${JSON.stringify(info.dim)} is not an integer in 1..${MAX_DIM}`);
        if (info.model !== undefined && typeof info.model !== 'string') throw new Error('info frame: model is not a string');
        if (this.info.dim && info.dim !== this.info.dim) throw new Error(`info frame says ${info.dim} dims, the rows have ${this.info.dim}`);
        this.info = info as unknown as StoreInfo;
      } else if (op === OP_UPSERT) {
        const n = p.readUInt32LE(1);
        const jsonLen = p.readUInt32LE(5);
        const floatBytes = p.length - 9 - jsonLen; // = n x dim x 4, checked by probe
        // The header frame was lost: the rows still tell the embedding size.
        const d = this.info.dim || floatBytes / 4 / n;
        if (!isDim(d)) throw new Error('upsert frame before the store header');
        const heads: unknown = JSON.parse(p.subarray(9, 9 + jsonLen).toString('utf8'));
        if (!Array.isArray(heads) || heads.length !== n) throw new Error(`upsert frame: ${n} rows announced, the list has ${Array.isArray(heads) ? heads.length : 'none'}`);
        for (const h of heads) if (!Array.isArray(h) || typeof h[0] !== 'string' || !isMeta(h[1])) throw new Error('upsert frame: a row without an id string and complete metadata');
        if (!this.info.dim) this.info = { dim: d };
        // Copy: the float block sits at an arbitrary byte offset, and Float32Array views need alignment.
        const floats = new Float32Array(new Uint8Array(p.subarray(9 + jsonLen)).buffer);
        (heads as [string, ImageMeta][]).forEach(([id, meta], i) => this.put({ id, meta, vector: floats.subarray(i * d, (i + 1) * d) }));
        this.logged += n;
      } else if (op === OP_DELETE) {
        const ids: unknown = JSON.parse(p.subarray(1).toString('utf8'));
        if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) throw new Error('delete frame: not a list of ids');
        for (const id of ids) this.remove(id);
        this.logged += ids.length;
      } else {
        throw new Error(`unknown frame type ${op}`);
      }
    } catch (e) {
      return (e as Error).message;
    }
    return undefined;
  }
}

const INCOMPLETE = -1;
const BAD = -2;

/**
 * Does a frame that verifies start at `o`? Returns its end, INCOMPLETE when the bytes stop before the end its
 * length field names, else BAD. The cheap structural checks run first, so scanning damage byte by byte stays
 * fast (`strict`, when scanning, also refuses unknown frame types, whose CRC would be the only check); `dim` 0
 * means not known yet. Nothing is allocated: sizes are only compared with what is in `buf`.
 */
function probe(buf: Buffer, o: number, dim: number, strict = false): number {
  if (o + 8 > buf.length) return INCOMPLETE;
  const len = buf.readUInt32LE(o);
  const p = o + 8;
  if (len > buf.length - p) return INCOMPLETE;
  if (len < 2) return BAD;
  const op = buf[p];
  if (op === OP_INFO || op === OP_DELETE) {
    if (buf[p + 1] !== (op === OP_INFO ? 0x7b : 0x5b)) return BAD; // '{' or '['
  } else if (op === OP_UPSERT) {
    if (len < 11 || buf[p + 9] !== 0x5b) return BAD;
    const n = buf.readUInt32LE(p + 1);
    const floatBytes = len - 9 - buf.readUInt32LE(p + 5);
    if (floatBytes < 0) return BAD;
    if (dim ? floatBytes !== n * dim * 4 : n === 0 ? floatBytes !== 0 : floatBytes === 0 || floatBytes % (4 * n) !== 0) return BAD;
  } else if (strict) {
    return BAD;
  }
  // (An unknown op whose CRC verifies, where a frame is due, is still one frame: skipped and reported by type.)
  return crc32(buf.subarray(p, p + len)) === buf.readUInt32LE(o + 4) ? p + len : BAD;
}

/** The offset of the next frame that verifies after a bad one at `o`, or -1. */
function resync(buf: Buffer, o: number, dim: number): number {
  // Usually the damage is inside the payload and the length field is intact: the next frame starts right after.
  if (o + 8 <= buf.length) {
    const j = o + 8 + buf.readUInt32LE(o);
    if (j < buf.length && probe(buf, j, dim, true) > 0) return j;
  }
  // The op byte first, inline: it rules out ~99% of offsets in float data and all of them in JSON text.
  for (let q = o + 1; q + 8 < buf.length; q++) if (buf[q + 8]! <= OP_DELETE && probe(buf, q, dim, true) > 0) return q;
  return -1;
}

/** Why the bytes at `o` are no frame, for the damage report. */
function whyBad(buf: Buffer, o: number): string {
  if (o + 8 > buf.length) return 'a frame header cut short';
  const len = buf.readUInt32LE(o);
  if (len > buf.length - o - 8) return `frame length ${len} runs past the end of the file`;
  if (crc32(buf.subarray(o + 8, o + 8 + len)) !== buf.readUInt32LE(o + 4)) return 'checksum mismatch';
  return 'frame sizes do not add up';
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isDim = (d: unknown): d is number => Number.isInteger(d) && (d as number) >= 1 && (d as number) <= MAX_DIM;
const isMeta = (m: unknown): m is ImageMeta =>
  isObject(m) && typeof m.path === 'string' && typeof m.hash === 'string' && ['size', 'mtime', 'width', 'height'].every((k) => typeof m[k] === 'number');

/** `len` bytes from `pos`, read fully (readSync may return less than asked, and takes at most 2 GiB a call). */
function readAt(fd: number, pos: number, len: number, path: string): Buffer {
  if (len > bufferLimits.MAX_LENGTH) throw new Error(`${path}: ${len} bytes to read at once, more than this Node.js can hold in one buffer`);
  const buf = Buffer.allocUnsafe(len);
  for (let o = 0; o < len; ) {
    const n = readSync(fd, buf, o, Math.min(len - o, 1 << 30), pos + o);
    if (n === 0) throw new Error(`${path}: ended at ${pos + o} bytes while being read`);
    o += n;
  }
  return buf;
}

/** `STORE.damaged-<UTC time>`, with a counter when a repair ran within the same second. */
function quarantineName(path: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let q = `${path}.damaged-${stamp}`;
  for (let i = 2; existsSync(q); i++) q = `${path}.damaged-${stamp}-${i}`;
  return q;
}

function frame(op: number, body: Buffer): Buffer {
  const payload = Buffer.concat([Buffer.from([op]), body]);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

function encodeUpsert(records: VectorRecord[], dim: number): Buffer {
  const json = Buffer.from(JSON.stringify(records.map((r) => [r.id, r.meta])));
  const head = Buffer.alloc(8);
  head.writeUInt32LE(records.length, 0);
  head.writeUInt32LE(json.length, 4);
  const floats = new Float32Array(records.length * dim);
  records.forEach((r, i) => floats.set(r.vector, i * dim));
  return frame(OP_UPSERT, Buffer.concat([head, json, Buffer.from(floats.buffer)]));
}

/**
 * Write to a temp file, fsync, rename over the target, fsync the folder: readers see the old file or the new
 * one, never a mix, and after a crash the rename is either on disk or not.
 */
async function writeFileAtomic(path: string, parts: Buffer[], magic = true): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    if (magic) await fh.writeFile(MAGIC);
    for (const p of parts) await fh.writeFile(p);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  // Folders cannot be fsync'd on every platform and file system (Windows, some network mounts); there the
  // rename's durability is the OS's.
  const dir = await open(dirname(path), 'r').catch(() => undefined);
  try {
    await dir?.sync().catch(() => undefined);
  } finally {
    await dir?.close();
  }
}
