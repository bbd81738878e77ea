// The one extension table of the content namespace (docs/architecture.md §2): for each file
// extension, the media type the store records and the origin sends, and the content class that
// decides both how long the origin lets caches keep it (`cacheControl.<class>`) and which
// per-class default freshness a cache applies when an upstream states none (`defaultTtlMs.<class>`,
// RFC 9111 §4.2.2). One column serves both: they answer the same question — may this name's bytes
// change while it is cached.
//
// - segment: media and images written once per name (RFC 8216 §3: a media segment's URI names
//   fixed bytes); immutable, dropped only by purge when a video is reprocessed or deleted.
// - playlist: documents that name other objects and may be rewritten under the same name: HLS
//   playlists (RFC 8216 §4), DASH MPDs, and WebVTT. The only WebVTT file in the namespace is the
//   thumbnail track (`thumbs/thumbs.vtt`), which lists sprite URIs with their regions and is
//   rewritten whenever the sprites are; a WebVTT subtitle segment (RFC 8216 §3.5) would be listed
//   in a media playlist instead. Short freshness and revalidation cost a 304 when wrong; a year of
//   immutability would serve a stale index.
// - other: anything else (short freshness).

export type ContentClass = 'playlist' | 'segment' | 'other'

interface Extension {
  readonly mediaType: string
  readonly contentClass: ContentClass
}

const EXTENSIONS: ReadonlyMap<string, Extension> = new Map<string, Extension>([
  // RFC 8216 §4: the HLS playlist media type.
  ['m3u8', { mediaType: 'application/vnd.apple.mpegurl', contentClass: 'playlist' }],
  // ISO/IEC 23009-1 Annex C: the DASH MPD media type.
  ['mpd', { mediaType: 'application/dash+xml', contentClass: 'playlist' }],
  // W3C WebVTT §6: text/vtt.
  ['vtt', { mediaType: 'text/vtt', contentClass: 'playlist' }],
  // RFC 8216 §3.3 / ISO 23000-19: CMAF (ISO BMFF) media segments.
  ['m4s', { mediaType: 'video/iso.segment', contentClass: 'segment' }],
  ['mp4', { mediaType: 'video/mp4', contentClass: 'segment' }],
  // RFC 8216 §3.2: MPEG-2 Transport Stream segments (RFC 3555 §4.2.9 video/MP2T).
  ['ts', { mediaType: 'video/mp2t', contentClass: 'segment' }],
  ['jpg', { mediaType: 'image/jpeg', contentClass: 'segment' }],
  ['jpeg', { mediaType: 'image/jpeg', contentClass: 'segment' }],
  ['json', { mediaType: 'application/json', contentClass: 'other' }],
])

/** The media type of a path or key without a known extension. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream'

/**
 * The table row of a path or store key (without a query): its extension, compared
 * case-insensitively; none for a name without a dot or a dot-file (`.env`).
 */
function extensionOf(path: string): Extension | undefined {
  const slash = path.lastIndexOf('/')
  const dot = path.lastIndexOf('.')
  if (dot <= slash + 1) return undefined
  return EXTENSIONS.get(path.slice(dot + 1).toLowerCase())
}

/** The media type of a path or store key (`Content-Type`). */
export function contentTypeFor(path: string): string {
  return extensionOf(path)?.mediaType ?? DEFAULT_CONTENT_TYPE
}

/** The content class of a path or store key: the origin's Cache-Control class and the cache's TTL class. */
export function contentClassOf(path: string): ContentClass {
  return extensionOf(path)?.contentClass ?? 'other'
}
