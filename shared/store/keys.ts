import { VcdnError } from '../errors/index.js'

export const MAX_KEY_LENGTH = 1024
// NAME_MAX on Linux filesystems: a longer segment could be stored in S3 but not on disk, so keys
// stay portable between the two stores.
export const MAX_SEGMENT_LENGTH = 255

// A segment is what may appear between slashes. '~' is deliberately absent: FsStore names its temp
// and metadata files with it, so they can never collide with (or be listed as) an object.
const SEGMENT_CHAR = /^[A-Za-z0-9._-]$/
const SEGMENT = /^[A-Za-z0-9._-]+$/

/**
 * Store keys are content paths without the leading '/' (docs/architecture.md §2): segments of
 * [A-Za-z0-9._-]+, no empty, '.' or '..' segments (so a key can never escape the store root), at
 * most 1024 chars.
 */
export function validateStoreKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new VcdnError('ERR_STORE_KEY', 'key is empty')
  if (key.length > MAX_KEY_LENGTH) throw new VcdnError('ERR_STORE_KEY', `key is longer than ${MAX_KEY_LENGTH}`)
  const segments = key.split('/')
  for (const segment of segments) {
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..' || segment.length > MAX_SEGMENT_LENGTH) {
      throw new VcdnError('ERR_STORE_KEY', `invalid segment ${JSON.stringify(segment.slice(0, 64))}`)
    }
  }
}

/**
 * A listing prefix: '' (everything) or the start of a valid key. Every complete segment must be
 * valid; the last one may be partial (so 'v/ab' matches 'v/abc/…') and may be empty ('v/abc/').
 */
export function validateStorePrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw new VcdnError('ERR_STORE_KEY', 'prefix is not a string')
  if (prefix.length > MAX_KEY_LENGTH) throw new VcdnError('ERR_STORE_KEY', `prefix is longer than ${MAX_KEY_LENGTH}`)
  if (prefix === '') return
  const segments = prefix.split('/')
  const last = segments.length - 1
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] ?? ''
    if (i === last) {
      if (segment.length > MAX_SEGMENT_LENGTH) throw new VcdnError('ERR_STORE_KEY', 'prefix segment too long')
      for (const ch of segment) {
        if (!SEGMENT_CHAR.test(ch)) throw new VcdnError('ERR_STORE_KEY', 'invalid character in prefix')
      }
    } else if (!SEGMENT.test(segment) || segment === '.' || segment === '..' || segment.length > MAX_SEGMENT_LENGTH) {
      throw new VcdnError('ERR_STORE_KEY', `invalid prefix segment ${JSON.stringify(segment.slice(0, 64))}`)
    }
  }
}

/** True for a single path segment that may appear in a key (used to skip foreign files). */
export function isKeySegment(name: string): boolean {
  return SEGMENT.test(name) && name !== '.' && name !== '..'
}
