// The request headers the cache engine acts on, read once each on the hot path.
import type { HeaderMap, IncomingRequest } from '../http/index.js'

/** The engine's view of a request's headers when it has none of them: most hits. Never mutated. */
const NO_HEADERS: HeaderMap = Object.freeze({})

/**
 * The request headers the cache engine acts on, read one by one (copying every header a player
 * sends costs more than the rest of a hit): RFC 9110 §13.1 conditionals and §14.2 Range, with
 * If-Range only beside a Range (§13.1.5).
 */
export function cacheRequestHeaders(req: IncomingRequest): HeaderMap {
  let headers: HeaderMap | null = null
  const range = req.header('range')
  if (range !== undefined) {
    headers = { range }
    const ifRange = req.header('if-range')
    if (ifRange !== undefined) headers['if-range'] = ifRange
  }
  const ifNoneMatch = req.header('if-none-match')
  if (ifNoneMatch !== undefined) (headers ??= {})['if-none-match'] = ifNoneMatch
  const ifModifiedSince = req.header('if-modified-since')
  if (ifModifiedSince !== undefined) (headers ??= {})['if-modified-since'] = ifModifiedSince
  const ifMatch = req.header('if-match')
  if (ifMatch !== undefined) (headers ??= {})['if-match'] = ifMatch
  const ifUnmodifiedSince = req.header('if-unmodified-since')
  if (ifUnmodifiedSince !== undefined) (headers ??= {})['if-unmodified-since'] = ifUnmodifiedSince
  return headers ?? NO_HEADERS
}
