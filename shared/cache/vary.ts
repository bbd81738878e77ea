// Secondary cache keys (RFC 9111 §4.1): a response with `Vary` is stored under its primary key
// (the request target) plus the request's values of the fields it names, so a request whose values
// differ is a miss that fills its own variant. `Vary: *` always fails to match: never stored.
// Also which request fields travel upstream on a fill: the origin has to see the fields it varies on.

import { createHash } from 'node:crypto'
import { TIER_SECRET_HEADER } from '../config/index.js'
import type { HeaderMap } from '../http/types.js'
import type { ServeRequest } from './types.js'

/**
 * '#' never occurs in a key from cacheKey() (it is refused in paths and queries), so it separates
 * a primary key from its variant suffix; a prefix purge of the primary covers every variant.
 */
export const VARIANT_SEPARATOR = '#'

/** The request target of a (variant) key: what the upstream is asked for. */
export function primaryKey(key: string): string {
  const i = key.indexOf(VARIANT_SEPARATOR)
  return i === -1 ? key : key.slice(0, i)
}

/** The field names of a Vary value: sorted, lower-case, unique; '*' for a wildcard; null when none. */
export function parseVary(value: string | undefined): readonly string[] | '*' | null {
  if (value === undefined) return null
  const names = new Set<string>()
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase()
    if (name === '*') return '*'
    if (name.length > 0) names.add(name)
  }
  return names.size === 0 ? null : [...names].sort()
}

/**
 * RFC 9111 §4.1: values are compared after normalising what the field syntax allows everywhere:
 * whitespace around list commas and at the ends (combined lines are already one value). An absent
 * field differs from an empty one.
 */
function normalizedValue(value: string | undefined): string {
  if (value === undefined) return '\u0000'
  return value
    .split(',')
    .map((v) => v.trim())
    .join(',')
}

/** Every header of a request, for Vary and for what a fill forwards (ServeRequest.source). */
export function requestHeadersOf(req: ServeRequest): HeaderMap {
  return req.source === undefined ? req.headers : { ...req.source.headers, ...req.headers }
}

/** The key of the variant that `requestHeaders` select among the responses of `primary` varying on `fields`. */
export function variantKey(primary: string, fields: readonly string[], requestHeaders: HeaderMap): string {
  const h = createHash('sha256')
  for (const name of fields) h.update(`${name}:${normalizedValue(requestHeaders[name])}\n`)
  return `${primary}${VARIANT_SEPARATOR}${h.digest('hex').slice(0, 32)}`
}

/**
 * Request fields never forwarded on a fill: hop-by-hop ones (RFC 9110 §7.6.1), framing, the
 * conditionals and Range the engine sets itself (RFC 9111 §4.3.1: it validates its own copy, and it
 * never asks for a range), Cookie (one viewer's cookie must not shape a response served to others;
 * like a CDN's default, cookies do not reach the origin), and the tier secret an edge sent (the
 * upstream client adds this tier's own, if any). Authorization is forwarded: the origin decides,
 * and the answer is stored only if it says a shared cache may (RFC 9111 §3.5, see the engine).
 */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authorization',
  'host',
  'content-length',
  'expect',
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'cookie',
  TIER_SECRET_HEADER,
])

/** The request fields a fill sends upstream (see NOT_FORWARDED; fields Connection names are dropped too). */
export function forwardedRequestHeaders(requestHeaders: HeaderMap): HeaderMap {
  const connection = requestHeaders['connection']
  const named =
    connection === undefined ? null : new Set(connection.split(',').map((name) => name.trim().toLowerCase()))
  const out: HeaderMap = {}
  for (const name in requestHeaders) {
    if (NOT_FORWARDED.has(name) || named?.has(name) === true) continue
    const v = requestHeaders[name]
    if (v !== undefined) out[name] = v
  }
  return out
}
