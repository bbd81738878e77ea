// Public shapes of the cache engine (docs/architecture.md §5). Implementation lives in engine.ts
// and the files it composes; this file has no runtime code.

import type { HeaderMap } from '../http/types.js'
import type { QueryPolicy } from './normalize-key.js'

export interface UpstreamResponse {
  status: number
  /** Lower-case header names. */
  headers: HeaderMap
  /** May throw mid-way (ERR_UPSTREAM_BODY on truncation). */
  body: AsyncIterable<Uint8Array>
}

/**
 * Fetches one key from the next tier. Throws VcdnError ERR_UPSTREAM_CONNECT / ERR_UPSTREAM_TIMEOUT
 * before headers. For a fill (GET) the signal belongs to the fill, never to a client request; for a
 * passed unsafe method (CacheEngine.pass) it is the client's, and `body` streams its request body.
 */
export type FetchUpstream = (
  key: string,
  init: { method: string; headers: HeaderMap; signal: AbortSignal; body?: AsyncIterable<Uint8Array> },
) => Promise<UpstreamResponse>

export interface CacheLogger {
  info(o: object, msg?: string): void
  warn(o: object, msg?: string): void
  error(o: object, msg?: string): void
}

export interface DefaultTtls {
  playlist: number
  segment: number
  other: number
}

export interface CacheOptions {
  /** Disk tier root: index.sqlite + objects/ + tmp/. */
  dir: string
  /** Disk budget in bytes. */
  maxBytes: number
  /** Memory tier budget in bytes. */
  memoryMaxBytes: number
  /** Objects larger than this never enter the memory tier; default min(memoryMaxBytes/8, 8 MiB). */
  memoryObjectMaxBytes?: number
  /** Fraction of maxBytes at which eviction starts; default 0.95. */
  highWatermark?: number
  /** Fraction of maxBytes eviction brings usage down to; default 0.85. */
  lowWatermark?: number
  /** How long a 404 is cached; default 10_000. */
  negativeTtlMs?: number
  /**
   * Freshness per content kind when upstream gives none, only for the kinds set here (default:
   * none). Unset kinds get RFC 9111 §4.2.2 heuristic freshness from Last-Modified, or none.
   */
  defaultTtlMs?: Partial<DefaultTtls>
  /** stale-if-error window when upstream does not state one (RFC 5861 §4); default 24 h. */
  staleIfErrorMs?: number
  /**
   * Bytes of a fill kept in memory for its readers; older chunks are re-read from the temp file
   * by readers that lag behind. Default 8 MiB.
   */
  fillBufferBytes?: number
  /**
   * What the query string adds to the cache key and so to the upstream request (CacheEngine.keyFor):
   * 'keep' (default), 'ignore', or an allow-list of parameter names. `token` is always removed.
   */
  query?: QueryPolicy
  /**
   * Whether CacheEngine.pass() forwards unsafe methods (POST, PUT, PATCH, DELETE, …) to the
   * upstream and invalidates what they change (RFC 9111 §4.4). Default false: pass() answers 405.
   * Meant for a tier that fronts an origin (a shield in front of an application); an edge that
   * serves viewers keeps it off, so viewers' writes never reach the origin.
   */
  passUnsafeMethods?: boolean
  /**
   * Memory-tier bodies in SharedArrayBuffers, so worker threads serve them without a copy
   * (docs/architecture.md §12, `workers`). Default false: ordinary Buffers.
   */
  isMemoryShared?: boolean
  fetch: FetchUpstream
  /** Epoch ms; injectable for tests. */
  now?: () => number
  log?: CacheLogger
}

export type CacheOutcome = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'PASS'

export interface ServeResult {
  outcome: CacheOutcome
  status: number
  /** Body bytes handed to the sink. */
  bytes: number
  /** Upstream time to headers for the fill this request used; null when upstream was not used. */
  upstreamMs: number | null
}

export interface ServeRequest {
  method: 'GET' | 'HEAD'
  /** A key from normalizeKey(). */
  key: string
  /** Lower-case request headers (range, if-none-match, if-modified-since, if-range). */
  headers: HeaderMap
  /**
   * Every request header, read only off the hot path: the fields a stored response's Vary names
   * (RFC 9111 §4.1) and what a fill forwards upstream. Absent: `headers` is all there is.
   */
  source?: { readonly headers: HeaderMap }
}

/** An unsafe-method request for CacheEngine.pass(). */
export interface PassRequest {
  /** Upper-case method token other than GET/HEAD. */
  method: string
  /** A key from cacheKey() / CacheEngine.keyFor(): the target URI, query included. */
  key: string
  /** Every request header, lower-case names. */
  headers: HeaderMap
  /** The request body as it arrives (empty iterable for none). */
  body: AsyncIterable<Uint8Array>
}

export type PrefetchResult = 'present' | 'filled' | 'joined' | 'failed'

export type PurgeTarget = { key: string } | { prefix: string }

/** hard: the stored answers go; soft: they stay, stale from now on (revalidated on next request). */
export type PurgeMode = 'hard' | 'soft'

/** Plain numbers: the observability contract of the engine (docs/style.md "Logs and metrics"). */
export interface CacheCounters {
  hits: number
  misses: number
  stale: number
  revalidated: number
  passes: number
  fills: number
  fillErrors: number
  /** Fills served to their readers but not stored: the disk refused the temp file, a write or the commit. */
  storeErrors: number
  /** Requests that joined a fill started by someone else. */
  coalesced: number
  upstreamRequests: number
  evictions: number
  evictedBytes: number
  purged: number
  memoryBytes: number
  diskBytes: number
  objects: number
  prefetchIssued: number
  prefetchUsed: number
  /** Prefetched objects evicted or hard-purged before any client hit them. */
  prefetchWasted: number
  /** Damaged indexes moved aside at open and replaced by an empty one. */
  indexRebuilds: number
  /** Index operations that found damage at run time (answered as a miss or skipped). */
  indexErrors: number
}
