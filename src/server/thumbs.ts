// Thumbnails of indexed images. Only ids the index holds are served: the id is looked up in the store and the
// file path comes from the store's metadata, so a request can never name an arbitrary file.
import sharp from 'sharp';
import type { VectorStore } from '../search/store.js';
import { HttpError } from './intake.js';

/** Small LRU bounded by bytes: result grids re-request the same thumbnails on every search. */
class ByteLru {
  private map = new Map<string, Buffer>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}
  get(key: string): Buffer | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: Buffer): void {
    if (v.length > this.maxBytes) return;
    this.map.delete(key);
    this.map.set(key, v);
    this.bytes += v.length;
    for (const [k, old] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= old.length;
    }
  }
}

export class Thumbnails {
  private cache: ByteLru;
  /** In-flight renders, so a burst of requests for one thumbnail resizes it once. */
  private pending = new Map<string, Promise<Buffer>>();

  constructor(private readonly store: VectorStore, cacheBytes = 32 << 20) {
    this.cache = new ByteLru(cacheBytes);
  }

  async get(id: string, size: number): Promise<Buffer> {
    const key = `${size}\0${id}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    let p = this.pending.get(key);
    if (!p) {
      p = this.render(id, size).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const out = await p;
    this.cache.set(key, out);
    return out;
  }

  private async render(id: string, size: number): Promise<Buffer> {
    // LanceStore.get currently throws ("lance result has no column id") instead of returning [] for an
    // unknown id; either way the id is not servable, and a thumbnail lookup is not worth a 500.
    const [rec] = await this.store.get([id]).catch(() => []);
    if (!rec) throw new HttpError(404, `id is not in the index: ${id}`);
    try {
      return await sharp(rec.meta.path, { failOn: 'none' })
        .rotate() // EXIF orientation, so phone photos show upright
        .resize(size, size, { fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .jpeg({ quality: 80 })
        .toBuffer();
    } catch (e) {
      // Indexed but moved or unreadable since: the index is stale, not the request wrong.
      throw new HttpError(404, `cannot read indexed image ${rec.meta.path}: ${(e as Error).message}`);
    }
  }
}
