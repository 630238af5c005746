// Pick a store by what is on disk: a directory is a LanceDB database, a file an ExactStore log; a
// postgres:// URL is a Postgres + pgvector database shared by many processes.
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RepairReport } from './exact-store.js';
import type { LanceStoreOptions } from './lance-store.js';
import { isPostgresUrl, type PgStoreOptions } from './pg-store.js';
import type { StoreInfo, VectorStore } from './store.js';

export type StoreKind = 'lance' | 'exact' | 'postgres';

export interface OpenStoreOptions extends LanceStoreOptions, PgStoreOptions {
  /** Create the store with this info when nothing exists at the path yet. */
  create?: StoreInfo;
  /** Kind for a new store (default: exact when the path ends in .clipvec, else lance). Ignored when it exists. */
  kind?: StoreKind;
}

export function storeKindAt(path: string, fallback?: StoreKind): StoreKind {
  if (isPostgresUrl(path)) return 'postgres';
  if (existsSync(path)) return statSync(path).isDirectory() ? 'lance' : 'exact';
  return fallback ?? (path.endsWith('.clipvec') ? 'exact' : 'lance');
}

export async function openStore(path: string, opts: OpenStoreOptions = {}): Promise<VectorStore> {
  const kind = storeKindAt(path, opts.kind);
  // A postgres:// URL is a shared server index; pg is loaded only here, like LanceDB below.
  if (kind === 'postgres') {
    if (opts.kind && opts.kind !== 'postgres') throw new Error(`--store ${opts.kind} does not apply to a postgres:// index`);
    return (await import('./pg-store.js')).PgvectorStore.open(path, opts.create, opts);
  }
  if (existsSync(path) && opts.kind && opts.kind !== kind) throw new Error(`${path} holds a ${kind} store, not ${opts.kind}`);
  // Loaded on demand: LanceDB's native module costs ~0.5 s of start-up that other commands should not pay.
  if (kind === 'exact') return (await import('./exact-store.js')).ExactStore.open(path, opts.create);
  return (await import('./lance-store.js')).LanceStore.open(path, opts.create, opts);
}

/**
 * Rewrite a damaged store keeping every valid record, the unreadable bytes moved to a quarantine file beside
 * it (exact stores; a LanceDB directory has its own versioned files and no repair here). Hold the writer lock.
 */
export async function repairStore(path: string): Promise<RepairReport> {
  if (!existsSync(path)) throw new Error(`no index at ${path}`);
  if (storeKindAt(path) !== 'exact') throw new Error(`${path} is a LanceDB index; --repair applies to exact (.clipvec) stores`);
  return (await import('./exact-store.js')).ExactStore.repair(path);
}

/** Where `clip index` / `clip search` keep the index when no --db is given (XDG data dir, like rclip). */
export function defaultDbPath(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'clip-ts', 'index.lance');
}
