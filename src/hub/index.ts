// Public surface of the hub module.
export { MODEL_ALIASES, aliasRepo } from './aliases.js';
export { hubConfig, type HubConfig, type HubOptions } from './config.js';
export { HubError, type HubErrorKind } from './errors.js';
export { resolveModel, hubDownload, parseModelId, type ResolveOptions, type ModelRef } from './resolve.js';
export { scanCache, type CachedRepo, type CachedRevision } from './scan.js';
export type { DownloadProgress } from './progress.js';
