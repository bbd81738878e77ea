// The content layout (docs/architecture.md §2): one path per object at every tier, and the same
// path without its leading '/' as the store key. Every `/v/…` path and `v/…` store key the code
// builds comes from here.

/** The directory every video lives under: the edge's and shield's default `paths`. */
export const CONTENT_ROOT = '/v/'

/** The HLS multivariant playlist of a video (RFC 8216 §4.3.4), written last. */
export const MASTER_PLAYLIST = 'master.m3u8'
/** The DASH MPD over the same CMAF segments. */
export const DASH_MANIFEST = 'manifest.mpd'
/** A rendition's media playlist (RFC 8216 §4.3.3). */
export const MEDIA_PLAYLIST = 'index.m3u8'
/** A rendition's CMAF init segment (RFC 8216 §4.3.2.5 EXT-X-MAP). */
export const INIT_SEGMENT = 'init.mp4'
/** The thumbnails directory of a video (poster, sprites, WebVTT thumbnail track). */
export const THUMBS_DIR = 'thumbs'

// A video id is one URL-safe path segment (the origin generates 16 of these characters), at most
// as long as a store key segment (keys.ts MAX_SEGMENT_BYTES).
const VIDEO_ID = /^[A-Za-z0-9_-]{1,255}$/

/** Whether `id` can name a video: 1 to 255 of [A-Za-z0-9_-]. */
export function isVideoId(id: string): boolean {
  return VIDEO_ID.test(id)
}

/** `/v/{videoId}/`: a video's directory, the ACL of a playback token and the purge prefix. */
export function videoDir(videoId: string): string {
  return `${CONTENT_ROOT}${videoId}/`
}

/** `/v/{videoId}/{file}`; `file` may have directories of its own (`720p/index.m3u8`). */
export function contentPath(videoId: string, file: string): string {
  return `${CONTENT_ROOT}${videoId}/${file}`
}

/** Whether `path` is exactly one video directory, `/v/{videoId}/` (what a playback token should grant). */
export function isVideoDir(path: string): boolean {
  if (!path.startsWith(CONTENT_ROOT) || !path.endsWith('/')) return false
  const id = path.slice(CONTENT_ROOT.length, -1)
  return id.length > 0 && !id.includes('/')
}

/**
 * `/v/{videoId}/{file}` → its parts; null for anything else (outside `/v/`, no file, an empty
 * id). No allocation beyond the two parts.
 */
export function parseContentPath(path: string): { videoId: string; file: string } | null {
  if (!path.startsWith(CONTENT_ROOT)) return null
  const slash = path.indexOf('/', CONTENT_ROOT.length)
  if (slash <= CONTENT_ROOT.length || slash === path.length - 1) return null
  return { videoId: path.slice(CONTENT_ROOT.length, slash), file: path.slice(slash + 1) }
}

/** The store key of a content path: the path without its leading '/'. */
export function storeKeyOf(path: string): string {
  return path.slice(1)
}

/** The content path of a store key: '/' + key. */
export function pathOfStoreKey(key: string): string {
  return `/${key}`
}

/** `v/{videoId}/`: the store prefix holding every output of a video. */
export function videoStorePrefix(videoId: string): string {
  return storeKeyOf(videoDir(videoId))
}

/** `sources/{videoId}/`: the store prefix of a video's uploaded source (never served under /v/). */
export function sourceStorePrefix(videoId: string): string {
  return `sources/${videoId}/`
}

/** `sources/{videoId}/source`: the uploaded source object. */
export function sourceStoreKey(videoId: string): string {
  return `${sourceStorePrefix(videoId)}source`
}
