// Public surface of the search layer, for src/index.ts (and a future HTTP server) to re-export.
export type { Condition, Filter, FilterOp, ImageMeta, SearchHit, StoredEntry, StoreInfo, UpsertOptions, VectorRecord, VectorStore } from './store.js';
export { checkFilter, matchesFilter, parseCondition } from './store.js';
export { ExactStore } from './exact-store.js';
export { LanceStore, filterToSql, type LanceStoreOptions } from './lance-store.js';
export { defaultDbPath, openStore, storeKindAt, type OpenStoreOptions, type StoreKind } from './open.js';
export { indexFolders, type ImageEmbedder, type IndexOptions, type IndexStats } from './indexer.js';
export { lockWriter } from './lock.js';
export { embedQuery, parseQuery, type QueryEncoder, type QueryTerm } from './query.js';
export { findImages, IMAGE_EXTENSIONS } from './walk.js';
