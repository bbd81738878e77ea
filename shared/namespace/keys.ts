// Key rules of the content namespace (docs/architecture.md §2): the grammar of a request path
// (the cache key's path), of its query, and of a store key, with their limits. Each check is one
// pass over the string and allocates nothing unless it refuses: the edge and the shield run
// validatePath() on every request.
import { VcdnError } from '../errors/index.js'

/** Longest request path accepted (bytes): the key stays a bounded SQLite primary key and file name. */
export const MAX_KEY_BYTES = 1024
/** Longest query string kept in a cache key (bytes). */
export const MAX_QUERY_BYTES = 1024
/**
 * Longest store key. The same bound as a key path; a store key of exactly this length has no
 * servable path (its path is one byte longer), which the store contract allows: objects outside
 * `/v/` (sources) are never served.
 */
export const MAX_STORE_KEY_BYTES = MAX_KEY_BYTES
// NAME_MAX on Linux filesystems: a longer segment could be stored in S3 but not on disk, so keys
// stay portable between the two stores.
export const MAX_SEGMENT_BYTES = 255

function reject(detail: string): never {
  throw new VcdnError('ERR_REQUEST_PATH', detail)
}

/** The value of a hex digit's char code, or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const lower = c | 0x20
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1
}

function isHex(c: number): boolean {
  return hexValue(c) !== -1
}

/** Whether path[i..i+3) is `%2e` (any case): an encoded '.'. */
function isEncodedDot(path: string, i: number): boolean {
  return path.charCodeAt(i) === 0x25 && path.charCodeAt(i + 1) === 0x32 && (path.charCodeAt(i + 2) | 0x20) === 0x65
}

/** Whether path[start..end) is '.' or '..', literal or percent-encoded (RFC 3986 §5.2.4). */
function isDotSegment(path: string, start: number, end: number): boolean {
  let dots = 0
  for (let i = start; i < end;) {
    if (path.charCodeAt(i) === 0x2e) i += 1
    else if (isEncodedDot(path, i)) i += 3
    else return false
    if (++dots > 2) return false
  }
  return dots > 0
}

/**
 * The problem with a raw request path (no query), or null when it is a valid key path. Refused:
 * non-absolute paths, '//' (empty segments), '.' and '..' segments (also percent-encoded, any
 * case), encoded '/' or '\' (%2f, %5c), NUL and other control characters (raw or encoded), raw
 * '\', characters outside printable ASCII (RFC 3986 §2 allows nothing else unencoded), '?' and
 * '#', invalid percent-encoding, and paths over MAX_KEY_BYTES. The path is used verbatim as the
 * cache key, an upstream URL path and a store key, so nothing here decodes it.
 */
export function pathProblem(path: string): string | null {
  if (typeof path !== 'string') return 'path is not a string'
  // Every accepted character is one byte, so the length in chars bounds the length in bytes.
  if (path.length > MAX_KEY_BYTES) return 'path is too long'
  if (path.charCodeAt(0) !== 0x2f) return 'path must start with /'
  let segmentStart = 1
  for (let i = 1; i <= path.length; i++) {
    const c = i === path.length ? 0x2f : path.charCodeAt(i)
    if (c === 0x2f) {
      if (i === segmentStart && i < path.length) return 'path contains an empty segment'
      // Dot segments would let the key escape its prefix once some tier or store decodes it.
      if (i - segmentStart <= 6 && isDotSegment(path, segmentStart, i)) return 'path contains a dot segment'
      segmentStart = i + 1
      continue
    }
    // 0x21..0x7e is printable ASCII; everything else (controls, space, DEL, non-ASCII) is refused.
    if (c < 0x21 || c > 0x7e || c === 0x5c || c === 0x3f || c === 0x23) return 'path contains a forbidden character'
    if (c === 0x25) {
      const hi = hexValue(path.charCodeAt(i + 1))
      const lo = hexValue(path.charCodeAt(i + 2))
      if (hi === -1 || lo === -1) return 'path has invalid percent-encoding'
      const byte = hi * 16 + lo
      if (byte < 0x20 || byte === 0x7f) return 'path contains an encoded control character'
      if (byte === 0x2f || byte === 0x5c) return 'path contains an encoded separator'
      i += 2
    }
  }
  return null
}

/** A raw request path as its key path (unchanged); throws ERR_REQUEST_PATH as pathProblem() says. */
export function validatePath(path: string): string {
  const problem = pathProblem(path)
  if (problem !== null) reject(problem)
  return path
}

/** Whether `path` is a valid key path (pathProblem() finds nothing). */
export function isValidPath(path: string): boolean {
  return pathProblem(path) === null
}

/**
 * A raw query string (without '?') that may be kept in a cache key: printable ASCII without '#',
 * valid percent-encoding, at most MAX_QUERY_BYTES. Throws ERR_REQUEST_PATH.
 */
export function validateQuery(query: string): string {
  if (query.length > MAX_QUERY_BYTES) reject('query is too long')
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i)
    if (c < 0x21 || c > 0x7e || c === 0x23) reject('query contains a forbidden character')
    if (c === 0x25) {
      if (!isHex(query.charCodeAt(i + 1)) || !isHex(query.charCodeAt(i + 2)))
        reject('query has invalid percent-encoding')
      i += 2
    }
  }
  return query
}

// A store key segment is what may appear between slashes: a strict subset of a valid path
// segment, portable to every filesystem and S3. '~' is deliberately absent: FsStore names its temp
// and metadata files with it, so they can never collide with (or be listed as) an object.
const SEGMENT_CHAR = /^[A-Za-z0-9._-]$/
const SEGMENT = /^[A-Za-z0-9._-]+$/

function storeKeyError(detail: string): VcdnError {
  return new VcdnError('ERR_STORE_KEY', detail)
}

/** True for a single path segment that may appear in a store key (used to skip foreign files). */
export function isStoreKeySegment(name: string): boolean {
  return SEGMENT.test(name) && name !== '.' && name !== '..' && name.length <= MAX_SEGMENT_BYTES
}

/**
 * Store keys are content paths without the leading '/': segments of [A-Za-z0-9._-]+ of at most
 * MAX_SEGMENT_BYTES, no empty, '.' or '..' segments (so a key can never escape the store root), at
 * most MAX_STORE_KEY_BYTES. Throws ERR_STORE_KEY. Every valid store key shorter than that is, with a
 * leading '/', a valid key path.
 */
export function validateStoreKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw storeKeyError('key is empty')
  if (key.length > MAX_STORE_KEY_BYTES) throw storeKeyError(`key is longer than ${MAX_STORE_KEY_BYTES}`)
  for (const segment of key.split('/')) {
    if (!isStoreKeySegment(segment)) throw storeKeyError(`invalid segment ${JSON.stringify(segment.slice(0, 64))}`)
  }
}

/**
 * A listing prefix: '' (everything) or the start of a valid store key. Every complete segment must
 * be valid; the last one may be partial (so 'v/ab' matches 'v/abc/…') and may be empty ('v/abc/').
 */
export function validateStorePrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw storeKeyError('prefix is not a string')
  if (prefix.length > MAX_STORE_KEY_BYTES) throw storeKeyError(`prefix is longer than ${MAX_STORE_KEY_BYTES}`)
  if (prefix === '') return
  const segments = prefix.split('/')
  const last = segments.length - 1
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] ?? ''
    if (i === last) {
      if (segment.length > MAX_SEGMENT_BYTES) throw storeKeyError('prefix segment too long')
      for (const ch of segment) {
        if (!SEGMENT_CHAR.test(ch)) throw storeKeyError('invalid character in prefix')
      }
    } else if (!isStoreKeySegment(segment)) {
      throw storeKeyError(`invalid prefix segment ${JSON.stringify(segment.slice(0, 64))}`)
    }
  }
}
