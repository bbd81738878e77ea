// What the engine knows about one stored response, whether it lives in memory, on disk or both.
// Derived fields (freshness, stale policy) are computed once from the stored headers.

import type { HeaderMap } from '../http/types.js'
import {
  FORWARDED_HEADERS,
  freshnessLifetimeMs,
  parseCacheControl,
  stalePolicy,
  upstreamAgeSec,
  type StalePolicy,
} from './http-semantics.js'
import type { CacheOutcome, DefaultTtls } from './types.js'

export interface StoredObject {
  readonly key: string
  readonly status: number
  readonly size: number
  /** Stored upstream header subset (STORED_HEADERS). */
  readonly headers: HeaderMap
  /** Epoch ms when the response was received (RFC 9111 response_time). */
  readonly storedAt: number
  /** Epoch ms after which the object is stale. */
  readonly expiresAt: number
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  readonly upstreamAgeSec: number
  readonly policy: StalePolicy
  /** Path relative to objects/, or null for memory-only objects (negative answers). */
  readonly file: string | null
}

export interface FreshnessConfig {
  readonly defaultTtlMs: Partial<DefaultTtls>
  readonly staleIfErrorMs: number
  readonly negativeTtlMs: number
}

export function describeStored(args: {
  key: string
  status: number
  size: number
  headers: HeaderMap
  storedAt: number
  file: string | null
  config: FreshnessConfig
}): StoredObject {
  const { key, status, size, headers, storedAt, file, config } = args
  const cc = parseCacheControl(headers['cache-control'])
  const ageSec = upstreamAgeSec(headers)
  // RFC 9111 §4.2: fresh while current_age < freshness_lifetime; current_age starts at the
  // upstream's Age. 404s use the configured negative TTL instead.
  const lifetimeMs =
    status === 404
      ? config.negativeTtlMs
      : freshnessLifetimeMs(headers, cc, status, key, config.defaultTtlMs, storedAt) - ageSec * 1000
  return {
    key,
    status,
    size,
    headers,
    storedAt,
    expiresAt: storedAt + lifetimeMs,
    etag: headers['etag'],
    lastModified: headers['last-modified'],
    upstreamAgeSec: ageSec,
    policy: stalePolicy(cc, config.staleIfErrorMs),
    file,
  }
}

/** RFC 9111 §4.2.3 (simplified: our clock is the response_time clock): resident time + upstream Age. */
export function ageSeconds(obj: StoredObject, now: number): number {
  return Math.max(0, Math.floor((now - obj.storedAt) / 1000)) + obj.upstreamAgeSec
}

/** Response headers for a client: forwarded upstream fields + this tier's x-cache and age. */
export function responseHeaders(upstream: HeaderMap, outcome: CacheOutcome, ageSec: number): HeaderMap {
  const h: HeaderMap = {}
  for (const name of FORWARDED_HEADERS) {
    const v = upstream[name]
    if (v !== undefined) h[name] = v
  }
  h['x-cache'] = outcome
  const upstreamXCache = upstream['x-cache']
  if (upstreamXCache !== undefined) h['x-cache-upstream'] = upstreamXCache
  h['age'] = String(ageSec)
  h['accept-ranges'] = 'bytes'
  return h
}

/** RFC 9110 §15.4.5: a 304 carries the validators and caching fields, no content fields. */
export function notModifiedHeaders(full: HeaderMap): HeaderMap {
  const h: HeaderMap = {}
  for (const name of [
    'etag',
    'last-modified',
    'cache-control',
    'expires',
    'x-cache',
    'x-cache-upstream',
    'age',
  ] as const) {
    const v = full[name]
    if (v !== undefined) h[name] = v
  }
  return h
}
