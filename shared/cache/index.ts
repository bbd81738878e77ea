// Public surface of the cache engine (docs/architecture.md §5). Deep imports past this file are not
// allowed.
export { CacheEngine } from './engine.js'
export { memoryEntry, serveEntry, type MemoryEntry } from './memory-tier.js'
export type { StoredObject } from './stored-object.js'
export { primaryKey, requestHeadersOf, variantKey } from './vary.js'
export { cacheKey, keyPath, normalizeKey, MAX_KEY_BYTES, MAX_QUERY_BYTES, type QueryPolicy } from './normalize-key.js'
export type {
  CacheCounters,
  CacheLogger,
  CacheOptions,
  CacheOutcome,
  DefaultTtls,
  FetchUpstream,
  PassRequest,
  PrefetchResult,
  PurgeMode,
  PurgeTarget,
  ServeRequest,
  ServeResult,
  UpstreamResponse,
} from './types.js'
