// Pure HTTP caching rules (RFC 9110, RFC 9111, RFC 5861): no I/O, no state, unit-tested on
// their own. The engine asks these functions and acts on the answers.

import { parseHttpDate, type HeaderMap } from '../http/index.js'
import type { DefaultTtls } from './types.js'
import { contentClassOf } from '../namespace/index.js'

export type CacheControl = ReadonlyMap<string, string | true>

const EMPTY_CC: CacheControl = new Map()

/** RFC 9111 §5.2: comma-separated directives, names case-insensitive, values token or quoted. */
export function parseCacheControl(value: string | undefined): CacheControl {
  if (value === undefined || value.length === 0) return EMPTY_CC
  const out = new Map<string, string | true>()
  for (const part of value.split(',')) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (name.length === 0) continue
    if (eq === -1) {
      out.set(name, true)
      continue
    }
    let v = part.slice(eq + 1).trim()
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1)
    // RFC 9111 §4.2.1: with duplicate directives the first one is used (conservative choice).
    if (!out.has(name)) out.set(name, v)
  }
  return out
}

/**
 * The directives this cache obeys. RFC 9213 §2.1: a cache that is the target of
 * `CDN-Cache-Control` (every CDN tier) uses it instead of `Cache-Control`; `Surrogate-Control`
 * (Edge Architecture 1.0, what Fastly/Akamai/Varnish setups send) ranks next, then
 * `Cache-Control`. Directives targeted at another device (`max-age=60;other`) do not parse as
 * ours and are ignored. Both are forwarded downstream like every end-to-end field: the next tier
 * (edge after shield) is a CDN cache and surrogate too and obeys them the same way (RFC 9213 §2.1
 * lets a CDN pass CDN-Cache-Control on; stripping Surrogate-Control at the last hop is left to the
 * operator's front, as the tiers cannot tell which is last).
 */
export function cacheDirectives(headers: HeaderMap): CacheControl {
  const cdn = headers['cdn-cache-control']
  if (cdn !== undefined && cdn.trim().length > 0) return parseCacheControl(cdn)
  // Directives all targeted at other devices leave nothing for this cache: Cache-Control decides.
  const surrogate = ownSurrogateDirectives(headers['surrogate-control'] ?? '')
  if (surrogate.trim().length > 0) return parseCacheControl(surrogate)
  return parseCacheControl(headers['cache-control'])
}

/**
 * The device token that targets this cache in `Surrogate-Control` (Edge Architecture 1.0), e.g.
 * `max-age=60;vcdn`. (The fills do not announce it in `Surrogate-Capability`: an origin that
 * targets vcdn is configured to.)
 */
export const SURROGATE_DEVICE = 'vcdn'

/**
 * Surrogate-Control directives for this device: untargeted ones, and `directive;vcdn` with the
 * target removed. Directives targeted at another device are dropped.
 */
function ownSurrogateDirectives(value: string): string {
  const own: string[] = []
  for (const part of value.split(',')) {
    const semi = part.indexOf(';')
    if (semi === -1) own.push(part)
    else if (part.slice(semi + 1).trim() === SURROGATE_DEVICE) own.push(part.slice(0, semi))
  }
  return own.join(',')
}

/** RFC 9111 §4.2.1: the response states its own freshness (so it wins over any default or heuristic). */
export function hasExplicitFreshness(headers: HeaderMap, cc: CacheControl): boolean {
  return cc.has('no-cache') || cc.has('s-maxage') || cc.has('max-age') || headers['expires'] !== undefined
}

/** delta-seconds (RFC 9111 §1.2.2); null when absent or malformed. */
export function deltaSeconds(cc: CacheControl, name: string): number | null {
  const v = cc.get(name)
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return null
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : 2 ** 31
}

/**
 * RFC 9110 §7.6.1: hop-by-hop fields describe one connection and are never stored or forwarded
 * (nor are the fields a `Connection` header names). Proxy-Connection is not standard but still
 * sent by old clients; Keep-Alive is the HTTP/1.0 one (RFC 9112 §C.2.2).
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
])

/**
 * Fields each tier computes for its own response, so an upstream's value is never kept:
 * Content-Length (framing of the bytes this tier sends), Accept-Ranges (this tier serves ranges
 * from the stored bytes), x-cache-upstream (set from the upstream's x-cache) and uWebSockets (the
 * mark every uWS server writes on its own answers; kept, it would pile up "20, 20, 20" across tiers).
 */
const RECOMPUTED = new Set(['content-length', 'accept-ranges', 'x-cache-upstream', 'uwebsockets'])

/**
 * RFC 9111 §3.2: a 304 updates every stored field it carries except Content-Length and the fields
 * the stored bytes depend on (their coding, range and digest: Content-MD5). The ETag is what the
 * 304 was matched on (§4.3.4), so it stays the stored one. Set-Cookie is never stored (a response
 * that sets a cookie is passed, not cached), so a 304 cannot add one either.
 */
const NOT_UPDATED_BY_304 = new Set(['content-encoding', 'content-range', 'content-md5', 'etag', 'set-cookie'])

/**
 * The end-to-end fields of an upstream response (RFC 9110 §7.6.1): everything except hop-by-hop
 * fields, the fields named in `Connection`, and the ones this tier recomputes. These are stored
 * with the object and forwarded to clients; `age` and `x-cache` are kept so the next tier's Age and
 * x-cache-upstream can be derived from them.
 */
export function pickStoredHeaders(headers: HeaderMap): HeaderMap {
  const connection = headers['connection']
  const named =
    connection === undefined ? null : new Set(connection.split(',').map((name) => name.trim().toLowerCase()))
  const out: HeaderMap = {}
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || RECOMPUTED.has(name) || named?.has(name) === true) continue
    const v = headers[name]
    if (v !== undefined) out[name] = v
  }
  return out
}

/** RFC 9111 §3.2 / §4.3.4: a 304 replaces the stored fields it carries (see NOT_UPDATED_BY_304). */
export function mergeRevalidatedHeaders(stored: HeaderMap, fresh: HeaderMap): HeaderMap {
  const out: HeaderMap = { ...stored }
  const picked = pickStoredHeaders(fresh)
  for (const name in picked) {
    const v = picked[name]
    if (v !== undefined && !NOT_UPDATED_BY_304.has(name)) out[name] = v
  }
  return out
}

/** Upstream Age (RFC 9111 §5.1), seconds; 0 when absent or malformed. */
export function upstreamAgeSec(headers: HeaderMap): number {
  const v = headers['age']
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return 0
  return Math.min(Number(v), 2 ** 31)
}

/**
 * An Age that is present but not one non-negative integer: list-valued (`7200, 0`, or repeated
 * lines, which arrive combined), negative, a float, with parameters. RFC 9111 §5.1 says to use a
 * list's first member and ignore an invalid value; ignoring it reads `Age: 7200, 0` as brand new.
 * We take the safe side, as the public cache conformance suite (age-parse) expects: a response
 * whose age cannot be read is treated as stale, so it is revalidated before reuse.
 */
export function isAgeInvalid(headers: HeaderMap): boolean {
  const v = headers['age']
  return v !== undefined && !/^\s*\d+\s*$/.test(v)
}

export type Storability = 'store' | 'pass'

/** RFC 9111 §3: no-store and private (we are a shared cache) forbid storing. */
export function isStorable(cc: CacheControl): boolean {
  return !cc.has('no-store') && !cc.has('private')
}

/**
 * RFC 9111 §4.2.2: statuses that are "heuristically cacheable" (RFC 9110 §15.1). Others get
 * heuristic freshness only when `public` is present.
 */
const HEURISTICALLY_CACHEABLE = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501])

/** RFC 9111 §4.2.2: "10% of the interval since [Last-Modified]" — the common fraction. */
const HEURISTIC_FRACTION = 0.1
/** Cap on heuristic freshness, as Varnish and Traffic Server cap theirs: one day. */
export const HEURISTIC_MAX_MS = 24 * 3600 * 1000

/**
 * Freshness lifetime (RFC 9111 §4.2.1): s-maxage (shared caches) > max-age > Expires − Date.
 * Without explicit freshness, only for heuristically cacheable statuses (§4.2.2): the per-type
 * default when an operator configured one for this content kind, else 10 % of the time since
 * Last-Modified, capped at HEURISTIC_MAX_MS; no Last-Modified → 0 (stored only to be revalidated).
 * no-cache stores but makes the response stale at once so every use revalidates (§5.2.2.4).
 */
export function freshnessLifetimeMs(
  headers: HeaderMap,
  cc: CacheControl,
  status: number,
  key: string,
  defaults: Partial<DefaultTtls>,
  responseTimeMs: number,
): number {
  if (cc.has('no-cache')) return 0
  const sMaxAge = deltaSeconds(cc, 's-maxage')
  if (sMaxAge !== null) return sMaxAge * 1000
  const maxAge = deltaSeconds(cc, 'max-age')
  if (maxAge !== null) return maxAge * 1000
  const explicit = expiresLifetimeMs(headers, responseTimeMs)
  if (explicit !== null) return explicit
  if (!HEURISTICALLY_CACHEABLE.has(status) && !cc.has('public')) return 0
  const configured = defaults[contentClassOf(key)]
  if (configured !== undefined) return configured
  return heuristicLifetimeMs(headers, responseTimeMs)
}

/** Expires − Date (RFC 9111 §4.2.1); null without Expires. An invalid Expires is 0 (§5.3). */
export function expiresLifetimeMs(headers: HeaderMap, responseTimeMs: number): number | null {
  const expires = headers['expires']
  if (expires === undefined) return null
  const expiresMs = parseHttpDate(expires)
  if (expiresMs === null) return 0
  return Math.max(0, expiresMs - (parseHttpDate(headers['date']) ?? responseTimeMs))
}

/** RFC 9111 §4.2.2: 10 % of (Date − Last-Modified), capped; 0 without a usable Last-Modified. */
export function heuristicLifetimeMs(headers: HeaderMap, responseTimeMs: number): number {
  const lm = headers['last-modified']
  if (lm === undefined) return 0
  const lastModifiedMs = parseHttpDate(lm)
  if (lastModifiedMs === null) return 0
  const ageMs = (parseHttpDate(headers['date']) ?? responseTimeMs) - lastModifiedMs
  if (ageMs <= 0) return 0
  return Math.min(HEURISTIC_MAX_MS, Math.floor(ageMs * HEURISTIC_FRACTION))
}

export interface StalePolicy {
  /** False when must-revalidate, proxy-revalidate, s-maxage or no-cache forbid serving stale (RFC 9111 §4.2.4). */
  readonly isStaleAllowed: boolean
  /** RFC 5861 §3. */
  readonly staleWhileRevalidateMs: number
  /** RFC 5861 §4; the config default when upstream states none. */
  readonly staleIfErrorMs: number
}

export function stalePolicy(cc: CacheControl, defaultStaleIfErrorMs: number): StalePolicy {
  const isStaleAllowed = !(
    cc.has('must-revalidate') ||
    cc.has('proxy-revalidate') ||
    cc.has('s-maxage') ||
    cc.has('no-cache')
  )
  const swr = deltaSeconds(cc, 'stale-while-revalidate')
  const sie = deltaSeconds(cc, 'stale-if-error')
  return {
    isStaleAllowed,
    staleWhileRevalidateMs: isStaleAllowed && swr !== null ? swr * 1000 : 0,
    staleIfErrorMs: !isStaleAllowed ? 0 : sie !== null ? sie * 1000 : defaultStaleIfErrorMs,
  }
}

/** Integer Content-Length or null when absent/malformed (then the body is treated as chunked). */
export function parseContentLength(headers: HeaderMap): number | null {
  const v = headers['content-length']
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return null
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : null
}
