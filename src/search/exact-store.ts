// Brute-force store for small collections: everything in memory, optionally persisted as an append-only log.
//
// File layout: "CLIPVEC1", then frames [u32 length][u32 crc32][payload]. One upsert/delete call = one frame,
// written with a single append and fdatasync'd. A crash can only leave a torn last frame, which fails its
// length or checksum check: readers stop before it and the next writer truncates it away. So each batch is
// either fully in or not, and readers in other processes never see half a batch.
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { checkFilter, matchesFilter, type Filter, type ImageMeta, type SearchHit, type StoredEntry, type StoreInfo, type VectorRecord, type VectorStore } from './store.js';
import { dotRow, TopK } from './topk.js';

const MAGIC = Buffer.from('CLIPVEC1');
const OP_INFO = 0;
const OP_UPSERT = 1;
const OP_DELETE = 2;

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
    const s = new ExactStore({ dim: 0 }, path);
    s.reload();
    return s;
  }

  get size(): number {
    return this.ids.length;
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

  /** Rewrite the log as one frame per live batch when dead entries dominate; the rename makes it atomic. */
  async optimize(): Promise<void> {
    if (!this.path || this.logged <= 2 * this.ids.length + 1024) return;
    await this.fh?.close();
    this.fh = undefined;
    const frames = [frame(OP_INFO, Buffer.from(JSON.stringify(this.info)))];
    const recs = await this.get(this.ids);
    for (let i = 0; i < recs.length; i += 4096) frames.push(encodeUpsert(recs.slice(i, i + 4096), this.info.dim));
    await writeFileAtomic(this.path, frames);
    this.reload();
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
      this.fh = await open(this.path, 'r+');
      // A torn frame from a crashed writer sits past `applied`: cut it off before appending after it.
      if ((await this.fh.stat()).size > this.applied) await this.fh.truncate(this.applied);
    }
    await this.fh.write(buf, 0, buf.length, this.applied);
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
    this.refresh();
  }

  /** Apply frames other processes appended since we last looked (or reload after a compaction). */
  private refresh(): void {
    if (!this.path || this.fh) return; // the writer's memory is always current
    const st = statSync(this.path);
    if (this.ino && (st.ino !== this.ino || st.size < this.applied)) return this.reload();
    if (st.size === this.applied) return;
    const fd = openSync(this.path, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(size - this.applied);
      readSync(fd, buf, 0, buf.length, this.applied);
      if (!this.ino) {
        if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${this.path} is not a clip-ts vector file`);
        this.ino = fstatSync(fd).ino;
        this.applied = MAGIC.length;
        this.applyFrames(buf.subarray(MAGIC.length));
      } else {
        this.applyFrames(buf);
      }
    } finally {
      closeSync(fd);
    }
  }

  private applyFrames(buf: Buffer): void {
    let o = 0;
    while (o + 8 <= buf.length) {
      const len = buf.readUInt32LE(o);
      if (o + 8 + len > buf.length) break; // torn or still being written
      const payload = buf.subarray(o + 8, o + 8 + len);
      if (crc32(payload) !== buf.readUInt32LE(o + 4)) break;
      this.applyPayload(payload);
      o += 8 + len;
      this.applied += 8 + len;
    }
  }

  private applyPayload(p: Buffer): void {
    const op = p[0];
    if (op === OP_INFO) {
      this.info = JSON.parse(p.subarray(1).toString('utf8'));
    } else if (op === OP_UPSERT) {
      const n = p.readUInt32LE(1);
      const jsonLen = p.readUInt32LE(5);
      const heads: [string, ImageMeta][] = JSON.parse(p.subarray(9, 9 + jsonLen).toString('utf8'));
      const d = this.info.dim;
      // Copy: the float block sits at an arbitrary byte offset, and Float32Array views need alignment.
      const floats = new Float32Array(new Uint8Array(p.subarray(9 + jsonLen, 9 + jsonLen + n * d * 4)).buffer);
      heads.forEach(([id, meta], i) => this.put({ id, meta, vector: floats.subarray(i * d, (i + 1) * d) }));
      this.logged += n;
    } else if (op === OP_DELETE) {
      const ids: string[] = JSON.parse(p.subarray(1).toString('utf8'));
      for (const id of ids) this.remove(id);
      this.logged += ids.length;
    } else {
      throw new Error(`${this.path}: unknown frame type ${op}`);
    }
  }
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

/** Write to a temp file, fsync, rename over the target: readers see the old file or the new one, never a mix. */
async function writeFileAtomic(path: string, parts: Buffer[]): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(MAGIC);
    for (const p of parts) await fh.write(p);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
}
