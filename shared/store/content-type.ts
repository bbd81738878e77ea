// Media types for the content namespace (docs/architecture.md §2). The HLS type is the one RFC 8216
// §4 names; the CMAF segment type is the one registered for ISO BMFF segments (RFC 8216 §3.3 / ISO
// 23000-19).
const TYPES: Readonly<Record<string, string>> = {
  m3u8: 'application/vnd.apple.mpegurl',
  mpd: 'application/dash+xml',
  m4s: 'video/iso.segment',
  mp4: 'video/mp4',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  vtt: 'text/vtt',
  json: 'application/json',
}

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream'

export function contentTypeFor(key: string): string {
  const slash = key.lastIndexOf('/')
  const dot = key.lastIndexOf('.')
  if (dot <= slash + 1) return DEFAULT_CONTENT_TYPE // no extension, or a dot-file like '.env'
  return TYPES[key.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE
}
