// The cache key is the request path itself, kept percent-encoded as received. Validation runs
// before anything else touches the path (DESIGN.md §5 "Key"), so the key can be used verbatim
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
