// The one home of hls-parser (docs/style.md "Layout"). Parsing is always strict: a playlist the
// library would merely warn about is an error here, because the transcoder validates its output
// with these functions before publishing and the edge trusts what it parsed.
import HLS from 'hls-parser'
import type { MasterPlaylistInfo, MediaPlaylistInfo, MediaSegmentInfo, VariantInfo } from './types.js'

export class HlsParseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HlsParseError'
  }
}

type Parsed = ReturnType<typeof HLS.parse>

// hls-parser keeps its options in module-global state; parsing is synchronous, so setting them
// around each call and restoring them afterwards cannot interleave with another caller.
function parseStrict(text: string): Parsed {
  if (typeof text !== 'string') throw new TypeError('playlist text must be a string')
  const saved = HLS.getOptions()
  HLS.setOptions({ strictMode: true, silent: true })
  try {
    return HLS.parse(text)
  } catch (err) {
    throw new HlsParseError(`invalid playlist: ${(err as Error).message}`, { cause: err })
  } finally {
    HLS.setOptions({ strictMode: saved.strictMode ?? false, silent: saved.silent ?? false })
  }
}

export function parseMedia(text: string): MediaPlaylistInfo {
  const playlist = parseStrict(text)
  if (playlist.isMasterPlaylist) throw new HlsParseError('expected a media playlist, got a multivariant playlist')
  const segments: MediaSegmentInfo[] = playlist.segments.map((s) => ({ uri: s.uri, durationS: s.duration }))
  const first = playlist.segments[0]
  return {
    version: playlist.version,
    targetDurationS: playlist.targetDuration,
    mediaSequence: playlist.mediaSequenceBase ?? 0,
    playlistType: playlist.playlistType,
    isEndList: playlist.endlist,
    isIndependentSegments: playlist.independentSegments,
    mapUri: first?.map?.uri,
    segments,
    totalDurationS: segments.reduce((sum, s) => sum + s.durationS, 0),
  }
}

export function parseMaster(text: string): MasterPlaylistInfo {
  const playlist = parseStrict(text)
  if (!playlist.isMasterPlaylist) throw new HlsParseError('expected a multivariant playlist, got a media playlist')
  const audio = new Map<string, MasterPlaylistInfo['audio'][number]>()
  const subtitles = new Map<string, MasterPlaylistInfo['audio'][number]>()
  const variants: VariantInfo[] = playlist.variants.map((v) => {
    for (const r of v.subtitles) {
      subtitles.set(`${r.groupId}\n${r.name}`, {
        groupId: r.groupId,
        name: r.name,
        uri: r.uri,
        isDefault: r.isDefault,
        isAutoselect: r.autoselect,
        ...(r.language !== undefined ? { language: r.language } : {}),
      })
    }
    for (const r of v.audio) {
      audio.set(`${r.groupId}\n${r.name}`, {
        groupId: r.groupId,
        name: r.name,
        uri: r.uri,
        isDefault: r.isDefault,
        isAutoselect: r.autoselect,
        ...(r.language !== undefined ? { language: r.language } : {}),
      })
    }
    return {
      uri: v.uri,
      bandwidth: v.bandwidth,
      averageBandwidth: v.averageBandwidth,
      codecs: v.codecs,
      resolution: v.resolution ? { width: v.resolution.width, height: v.resolution.height } : undefined,
      frameRate: v.frameRate,
      audioGroupId: v.audio[0]?.groupId,
      ...(v.subtitles[0] !== undefined ? { subtitlesGroupId: v.subtitles[0].groupId } : {}),
    }
  })
  return {
    version: playlist.version,
    isIndependentSegments: playlist.independentSegments,
    variants,
    audio: [...audio.values()],
    ...(subtitles.size > 0 ? { subtitles: [...subtitles.values()] } : {}),
  }
}

/** Segment URIs and durations of a media playlist: what the edge prefetcher walks. */
export function mediaSegments(text: string): readonly MediaSegmentInfo[] {
  return parseMedia(text).segments
}

/** The URI of the segment after `uri` in a parsed media playlist, `count` of them at most. */
export function nextSegments(playlist: MediaPlaylistInfo, uri: string, count: number): readonly string[] {
  const i = playlist.segments.findIndex((s) => s.uri === uri)
  if (i < 0 || count <= 0) return []
  return playlist.segments.slice(i + 1, i + 1 + count).map((s) => s.uri)
}
