// The cache key is the request path itself, kept percent-encoded as received, plus the query
// parameters the engine's policy keeps (RFC 9111 §2). The path and query grammars and their limits
// are the content namespace's (docs/architecture.md §2); this file adds the cache's query policy.
import { validatePath, validateQuery } from '../namespace/index.js'

// The namespace's names, as the cache's public surface has always offered them.
export { MAX_KEY_BYTES, MAX_QUERY_BYTES, validatePath as normalizeKey } from '../namespace/index.js'

/**
 * What the query string contributes to the cache key (and so to the upstream request, which asks
 * for the key): 'keep' (the default: every parameter, in the order received), 'ignore' (none), or
 * an allow-list of parameter names. `token` (the edge's playback token) and `CMCD` are always
 * removed (see ALWAYS_REMOVED).
 */
export type QueryPolicy = 'keep' | 'ignore' | readonly string[]

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
 * The cache key of a request: validatePath(path), then `?` and the kept query parameters when
 * there are any (RFC 9111 §2: the key is the target URI, query included). The query is validated
 * by the namespace's validateQuery() and kept as received otherwise; empty parameters (`a=1&&b=2`) are dropped.
 */
export function cacheKey(rawPath: string, rawQuery: string, policy: QueryPolicy): string {
  const path = validatePath(rawPath)
  if (rawQuery.length === 0 || policy === 'ignore') return path
  validateQuery(rawQuery)
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
