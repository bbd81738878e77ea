// What the engine knows about one stored response, whether it lives in memory, on disk or both.
// Derived fields (freshness, stale policy) are computed once from the stored headers.

import type { HeaderMap } from '../http/types.js'
import {
  cacheDirectives,
  freshnessLifetimeMs,
  hasExplicitFreshness,
  isAgeInvalid,
  stalePolicy,
  upstreamAgeSec,
  type CacheControl,
  type StalePolicy,
} from './http-semantics.js'
import { keyPath } from './normalize-key.js'
import type { CacheOutcome, DefaultTtls } from './types.js'

export interface StoredObject {
  readonly key: string
  readonly status: number
  readonly size: number
  /** The upstream's end-to-end header fields (pickStoredHeaders); one object, never mutated. */
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
  const cc = cacheDirectives(headers)
  const ageSec = upstreamAgeSec(headers)
  // RFC 9111 §4.2: fresh while current_age < freshness_lifetime; current_age starts at the
  // upstream's Age (unreadable → stale, see isAgeInvalid). A 404 without explicit freshness uses
  // the configured negative TTL; one that states its own (an Expires in the past) is obeyed.
  const lifetimeMs = isAgeInvalid(headers)
    ? 0
    : status === 404 && !hasExplicitFreshness(headers, cc)
      ? config.negativeTtlMs
      : freshnessLifetimeMs(headers, cc, status, keyPath(key), config.defaultTtlMs, storedAt) - ageSec * 1000
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

/**
 * Response headers for a client: every stored end-to-end field (RFC 9110 §7.6.1), with this
 * tier's own x-cache and age (RFC 9111 §5.1); the upstream's x-cache becomes x-cache-upstream.
 */
export function responseHeaders(upstream: HeaderMap, outcome: CacheOutcome, ageSec: number): HeaderMap {
  const h: HeaderMap = {}
  for (const name in upstream) {
    if (name === 'age' || name === 'x-cache') continue
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

/**
 * RFC 9110 §15.4.5: a 304 carries the fields a 200 would have carried among Cache-Control,
 * Content-Location, Date, ETag, Expires and Vary (plus Last-Modified and this tier's own), no
 * content fields.
 */
export function notModifiedHeaders(full: HeaderMap): HeaderMap {
  const h: HeaderMap = {}
  for (const name of [
    'etag',
    'last-modified',
    'cache-control',
    'content-location',
    'date',
    'expires',
    'vary',
    'x-cache',
    'x-cache-upstream',
    'age',
  ] as const) {
    const v = full[name]
    if (v !== undefined) h[name] = v
  }
  return h
}

/** RFC 9110 §15.1: final statuses that are heuristically cacheable (501 aside: no 5xx is stored). */
const HEURISTICALLY_CACHEABLE = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414])

/**
 * RFC 9111 §3: a final response may be stored when its status is heuristically cacheable, or when
 * it has explicit freshness (s-maxage, max-age, Expires) or is marked `public` (§4.2.2). This
 * cache never stores 5xx (errors are served stale or passed, never cached), 206 (it never asks
 * for a range) or 304 outside a revalidation. Freshness itself is decided by describeStored().
 */
export function isStorableStatus(status: number, cc: CacheControl, headers: HeaderMap): boolean {
  if (HEURISTICALLY_CACHEABLE.has(status)) return true
  if (status < 200 || status >= 500 || status === 206 || status === 304) return false
  return cc.has('s-maxage') || cc.has('max-age') || cc.has('public') || headers['expires'] !== undefined
}
