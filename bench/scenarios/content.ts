// The objects the scenarios serve: a ~1 KB HLS media playlist and 2 MB CMAF segments.
export const VIDEO_PREFIX = '/v/bench/'
export const PLAYLIST_PATH = '/v/bench/720p/index.m3u8'
export const SEGMENT_PATH = '/v/bench/720p/seg_00001.m4s'
export const SEGMENT_BYTES = 2 * 1024 * 1024

/** A VOD media playlist (RFC 8216 §4.3) of about 1 KB. */
export function mediaPlaylist(targetBytes = 1024): Buffer {
  const head = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    '#EXT-X-TARGETDURATION:4',
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    '#EXT-X-MAP:URI="init.mp4"',
  ]
  const lines = [...head]
  const end = '#EXT-X-ENDLIST'
  for (let i = 1; i < 1000; i++) {
    const entry = ['#EXTINF:4.000,', `seg_${String(i).padStart(5, '0')}.m4s`]
    if ([...lines, ...entry, end].join('\n').length + 1 > targetBytes) break
    lines.push(...entry)
  }
  lines.push(end)
  return Buffer.from(lines.join('\n') + '\n')
}

/** Deterministic incompressible filler (xorshift), different per seed. */
export function segmentBody(bytes = SEGMENT_BYTES, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(bytes)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    if (i + 4 <= bytes) b.writeUInt32LE(x, i)
    else for (let j = i; j < bytes; j++) b[j] = (x >>> (8 * (j - i))) & 0xff
  }
  return b
}

/** large-hit's working set: this many distinct 2 MB segments (seeds 1..n), larger than any CPU cache. */
export const LARGE_SEGMENTS = 200

/** The i-th (1-based) segment of large-hit; its body is segmentBody(SEGMENT_BYTES, i). */
export function largeSegmentPath(i: number): string {
  return `/v/bench/large/seg_${String(i).padStart(5, '0')}.m4s`
}
