// The cache key is the request path itself, kept percent-encoded as received. Validation runs
// before anything else touches the path (docs/architecture.md §2), so the key can be used verbatim
// as a store key, an upstream URL path and a SQLite primary key.

import { VcdnError } from '../errors/index.js'

export const MAX_KEY_BYTES = 1024

const HEX = /^[0-9a-fA-F]{2}$/

function reject(detail: string): never {
  throw new VcdnError('ERR_REQUEST_PATH', detail)
}

/**
 * Validate a raw request path (no query string) and return it as the cache key.
 * Rejects: non-absolute paths, '//' , '.' and '..' segments (also percent-encoded, any case),
 * encoded '/' or '\' (%2f, %5c), NUL and other control characters (raw or encoded), raw '\',
 * characters outside printable ASCII (RFC 3986 §2 allows nothing else unencoded), '?' and '#',
 * invalid percent-encoding, and paths over 1024 bytes.
 */
export function normalizeKey(rawPath: string): string {
  if (typeof rawPath !== 'string') reject('path is not a string')
  if (rawPath.length > MAX_KEY_BYTES || Buffer.byteLength(rawPath) > MAX_KEY_BYTES) {
    reject('path is too long')
  }
  if (rawPath.charCodeAt(0) !== 0x2f) reject('path must start with /')
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i)
    // 0x21..0x7e is printable ASCII; everything else (controls, space, DEL, non-ASCII) is refused.
    if (c < 0x21 || c > 0x7e) reject('path contains a forbidden character')
    if (c === 0x5c || c === 0x3f || c === 0x23) reject('path contains a forbidden character')
    if (c === 0x2f && rawPath.charCodeAt(i + 1) === 0x2f) reject('path contains an empty segment')
    if (c === 0x25) {
      const hex = rawPath.slice(i + 1, i + 3)
      if (!HEX.test(hex)) reject('path has invalid percent-encoding')
      const byte = Number.parseInt(hex, 16)
      if (byte < 0x20 || byte === 0x7f) reject('path contains an encoded control character')
      if (byte === 0x2f || byte === 0x5c) reject('path contains an encoded separator')
      i += 2
    }
  }
  // Dot segments, literal or encoded (%2e, any case), would let the key escape its prefix once
  // some tier or store decodes it (RFC 3986 §5.2.4).
  for (const segment of rawPath.split('/')) {
    if (segment.length === 0 || segment.length > 6) continue
    const decoded = segment.replace(/%2e/gi, '.')
    if (decoded === '.' || decoded === '..') reject('path contains a dot segment')
  }
  return rawPath
}

/**
 * What the query string contributes to the cache key (and so to the upstream request, which asks
 * for the key): 'keep' (the default: every parameter, in the order received), 'ignore' (none), or
 * an allow-list of parameter names. `token` (the edge's playback token) and `CMCD` are always
 * removed (see ALWAYS_REMOVED).
 */
export type QueryPolicy = 'keep' | 'ignore' | readonly string[]

/** Longest query string accepted (bytes); the key stays a bounded SQLite primary key. */
export const MAX_QUERY_BYTES = 1024

/**
 * Query parameters never part of a key nor sent upstream: the edge's playback token, and `CMCD`
 * (CTA-5004 Common Media Client Data: per-request player state such as buffer length and session
 * id, which never selects content; kept, every hls.js/dash.js request with CMCD in query mode would
 * be a key of its own, and a miss).
 */
const ALWAYS_REMOVED: ReadonlySet<string> = new Set(['token', 'CMCD'])

function paramName(param: string): string {
  const eq = param.indexOf('=')
  const raw = eq === -1 ? param : param.slice(0, eq)
  // Compare decoded names, so `tok%65n` cannot carry a token past the filter.
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '))
  } catch {
    return raw
  }
}

/**
 * The cache key of a request: normalizeKey(path), then `?` and the kept query parameters when
 * there are any (RFC 9111 §2: the key is the target URI, query included). The query is validated
 * like the path (printable ASCII, no '#', valid percent-encoding, at most MAX_QUERY_BYTES) and
 * kept as received otherwise; empty parameters (`a=1&&b=2`) are dropped.
 */
export function cacheKey(rawPath: string, rawQuery: string, policy: QueryPolicy): string {
  const path = normalizeKey(rawPath)
  if (rawQuery.length === 0 || policy === 'ignore') return path
  if (rawQuery.length > MAX_QUERY_BYTES || Buffer.byteLength(rawQuery) > MAX_QUERY_BYTES) reject('query is too long')
  for (let i = 0; i < rawQuery.length; i++) {
    const c = rawQuery.charCodeAt(i)
    if (c < 0x21 || c > 0x7e || c === 0x23) reject('query contains a forbidden character')
    if (c === 0x25) {
      if (!HEX.test(rawQuery.slice(i + 1, i + 3))) reject('query has invalid percent-encoding')
      i += 2
    }
  }
  const kept: string[] = []
  for (const param of rawQuery.split('&')) {
    if (param.length === 0) continue
    const name = paramName(param)
    if (ALWAYS_REMOVED.has(name)) continue
    if (policy !== 'keep' && !policy.includes(name)) continue
    kept.push(param)
  }
  return kept.length === 0 ? path : `${path}?${kept.join('&')}`
}

/** The path part of a key from cacheKey() (what content-type and extension rules look at). */
export function keyPath(key: string): string {
  const q = key.indexOf('?')
  return q === -1 ? key : key.slice(0, q)
}
