// Public surface of the search layer, for src/index.ts (and a future HTTP server) to re-export.
export type { Condition, DamagedRegion, Filter, FilterOp, ImageMeta, SearchHit, StoreDamage, StoredEntry, StoreInfo, UpsertOptions, VectorRecord, VectorStore } from './store.js';
export { checkFilter, describeDamage, matchesFilter, parseCondition } from './store.js';
export { ExactStore, type RepairReport } from './exact-store.js';
export { LanceStore, type LanceStoreOptions } from './lance-store.js';
export { defaultDbPath, openStore, repairStore, storeKindAt, type OpenStoreOptions, type StoreKind } from './open.js';
export { indexFolders, type ImageEmbedder, type IndexOptions, type IndexStats } from './indexer.js';
export { lockWriter } from './lock.js';
export { embedQuery, parseQuery, type QueryEncoder, type QueryTerm } from './query.js';
export { findImages, IMAGE_EXTENSIONS } from './walk.js';
export { DEFAULT_THRESHOLD as DEFAULT_DEDUP_THRESHOLD, findDuplicates, removeDuplicates, type DedupOptions, type DedupReport, type DupGroup, type DupMember, type KeepRule, type RemovalReport } from './dedup.js';
