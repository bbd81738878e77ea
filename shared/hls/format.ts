// Text builders for the playlists the transcoder publishes. They are written here, not by
// hls-parser's stringify, so every tag is one we chose and can cite.
import type { MasterPlaylist, VodMediaPlaylist } from './types.js'

const URI_SAFE = /^[A-Za-z0-9._/-]+$/

function assertUri(uri: string, path: string): void {
  // A quoted-string may not contain '"' or line breaks (RFC 8216 §4.2); our URIs are store-key
  // segments anyway.
  if (!URI_SAFE.test(uri)) throw new TypeError(`${path} must match ${URI_SAFE}: ${JSON.stringify(uri)}`)
}

function assertPositive(n: number, path: string): void {
  if (!Number.isFinite(n) || n <= 0) throw new TypeError(`${path} must be a positive number, got ${n}`)
}

/**
 * A VOD CMAF media playlist. Version 7 because EXT-X-MAP in a playlist without I-frames-only
 * needs version 6+ (RFC 8216 §4.3.2.5, §7) and we keep every playlist on the same version.
 */
export function formatMediaPlaylist(playlist: VodMediaPlaylist): string {
  assertUri(playlist.mapUri, 'mapUri')
  if (playlist.segments.length === 0) throw new TypeError('segments must not be empty')
  const sequence = playlist.mediaSequence ?? 1
  if (!Number.isInteger(sequence) || sequence < 0) throw new TypeError('mediaSequence must be an integer ≥ 0')
  let maxS = 0
  playlist.segments.forEach((s, i) => {
    assertUri(s.uri, `segments[${i}].uri`)
    assertPositive(s.durationS, `segments[${i}].durationS`)
    maxS = Math.max(maxS, s.durationS)
  })
  // RFC 8216 §4.3.3.1: each EXTINF rounded to the nearest integer must be ≤ the target duration.
  const target = Math.max(1, Math.round(maxS))
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    `#EXT-X-MEDIA-SEQUENCE:${sequence}`,
    '#EXT-X-PLAYLIST-TYPE:VOD',
    // Every segment starts with an IDR frame (fixed GOP); RFC 8216 §4.3.5.1.
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-MAP:URI="${playlist.mapUri}"`,
  ]
  for (const s of playlist.segments) lines.push(`#EXTINF:${s.durationS.toFixed(6)},`, s.uri)
  lines.push('#EXT-X-ENDLIST')
  return `${lines.join('\n')}\n`
}

/** A multivariant playlist (RFC 8216 §4.3.4), variants in the order given. */
export function formatMasterPlaylist(master: MasterPlaylist): string {
  if (master.variants.length === 0) throw new TypeError('variants must not be empty')
  const groups = new Set(master.audio.map((a) => a.groupId))
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS']
  master.audio.forEach((a, i) => {
    assertUri(a.uri, `audio[${i}].uri`)
    if (!/^[A-Za-z0-9_-]+$/.test(a.groupId)) throw new TypeError(`audio[${i}].groupId is not a safe token`)
    // A quoted-string: no '"', CR or LF (RFC 8216 §4.2); names come from the source's tags.
    if (!/^[^"\u0000-\u001f\u007f]+$/u.test(a.name)) throw new TypeError(`audio[${i}].name is not a safe string`)
    if (a.language !== undefined && !/^[A-Za-z0-9-]+$/.test(a.language))
      throw new TypeError(`audio[${i}].language is not a language tag`)
    const attrs = [
      'TYPE=AUDIO',
      `GROUP-ID="${a.groupId}"`,
      `NAME="${a.name}"`,
      ...(a.language ? [`LANGUAGE="${a.language}"`] : []),
      // The first rendition of a group is the default one (RFC 8216 §4.3.4.1.1).
      `DEFAULT=${i === master.audio.findIndex((b) => b.groupId === a.groupId) ? 'YES' : 'NO'}`,
      'AUTOSELECT=YES',
      ...(a.channels ? [`CHANNELS="${a.channels}"`] : []),
      `URI="${a.uri}"`,
    ]
    lines.push(`#EXT-X-MEDIA:${attrs.join(',')}`)
  })
  const subtitleGroups = new Set((master.subtitles ?? []).map((r) => r.groupId))
  ;(master.subtitles ?? []).forEach((r, i) => {
    assertUri(r.uri, `subtitles[${i}].uri`)
    if (!/^[A-Za-z0-9_-]+$/.test(r.groupId)) throw new TypeError(`subtitles[${i}].groupId is not a safe token`)
    if (!/^[^"\u0000-\u001f\u007f]+$/u.test(r.name)) throw new TypeError(`subtitles[${i}].name is not a safe string`)
    if (r.language !== undefined && !/^[A-Za-z0-9-]+$/.test(r.language))
      throw new TypeError(`subtitles[${i}].language is not a language tag`)
    // AUTOSELECT=YES lets a player pick captions by the viewer's language; none is on by default
    // unless asked (RFC 8216 §4.3.4.1: DEFAULT=YES means play it without a choice).
    const attrs = [
      'TYPE=SUBTITLES',
      `GROUP-ID="${r.groupId}"`,
      `NAME="${r.name}"`,
      ...(r.language ? [`LANGUAGE="${r.language}"`] : []),
      `DEFAULT=${r.isDefault === true ? 'YES' : 'NO'}`,
      'AUTOSELECT=YES',
      `URI="${r.uri}"`,
    ]
    lines.push(`#EXT-X-MEDIA:${attrs.join(',')}`)
  })
  master.variants.forEach((v, i) => {
    assertUri(v.uri, `variants[${i}].uri`)
    assertPositive(v.bandwidth, `variants[${i}].bandwidth`)
    assertPositive(v.averageBandwidth, `variants[${i}].averageBandwidth`)
    assertPositive(v.frameRate, `variants[${i}].frameRate`)
    if (!/^[A-Za-z0-9.,]+$/.test(v.codecs)) throw new TypeError(`variants[${i}].codecs is not a codec list`)
    if (v.audioGroupId !== undefined && !groups.has(v.audioGroupId)) {
      // RFC 8216 §4.3.4.2: AUDIO must match the GROUP-ID of an EXT-X-MEDIA tag.
      throw new TypeError(`variants[${i}].audioGroupId names no audio rendition group`)
    }
    if (v.subtitlesGroupId !== undefined && !subtitleGroups.has(v.subtitlesGroupId))
      throw new TypeError(`variants[${i}].subtitlesGroupId names no subtitles rendition group`)
    const attrs = [
      `BANDWIDTH=${Math.ceil(v.bandwidth)}`,
      `AVERAGE-BANDWIDTH=${Math.ceil(v.averageBandwidth)}`,
      `CODECS="${v.codecs}"`,
      `RESOLUTION=${v.width}x${v.height}`,
      `FRAME-RATE=${v.frameRate.toFixed(3)}`,
      ...(v.audioGroupId !== undefined ? [`AUDIO="${v.audioGroupId}"`] : []),
      ...(v.subtitlesGroupId !== undefined ? [`SUBTITLES="${v.subtitlesGroupId}"`] : []),
    ]
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(',')}`, v.uri)
  })
  return `${lines.join('\n')}\n`
}
