// The multivariant playlist, written from measured segment sizes: ffmpeg's own BANDWIDTH is an
// estimate from encoder settings, not the bytes a player will actually fetch.
import { formatMasterPlaylist, type MasterVariant } from '../../shared/hls/index.js'
import type { SubtitleRendition } from './captions.js'
import { SEGMENT_S } from './ffmpeg-args.js'
import { bandwidthOf, type MeasuredRendition } from './measure.js'

export const AUDIO_GROUP_ID = 'aud'
export const SUBTITLES_GROUP_ID = 'subs'

export interface VideoRenditionSummary {
  readonly name: string
  readonly width: number
  readonly height: number
  /** BANDWIDTH of its variant: peak video segment rate plus the audio peak, bit/s. */
  readonly bandwidth: number
  readonly averageBandwidth: number
  readonly codecs: string
  readonly frameRate: number
  /** This rung alone, bit/s (for DASH, where audio is its own Representation). */
  readonly videoBandwidth: number
}

export interface AudioRenditionSummary {
  readonly name: string
  /** NAME in the master (audio-tracks.ts). */
  readonly label: string
  /** BCP-47; absent when the source did not say. */
  readonly language?: string
  readonly isDefault: boolean
  readonly bandwidth: number
  readonly averageBandwidth: number
  readonly codecs: string
  readonly channels: number
  readonly sampleRate: number
}

export interface MasterResult {
  readonly text: string
  /** Sorted by bandwidth ascending, as in the playlist. */
  readonly renditions: readonly VideoRenditionSummary[]
  /** The default audio rendition (null without audio). */
  readonly audio: AudioRenditionSummary | null
  /** Every audio rendition, the default first (as in the playlist). */
  readonly audioTracks: readonly AudioRenditionSummary[]
}

/** One audio rendition with the labels the source's tags gave it. */
export interface LabelledAudio {
  readonly measured: MeasuredRendition
  readonly label: string
  readonly language?: string | undefined
  readonly isDefault: boolean
}

/** A lone measured rendition is the one default track, labelled by its name. */
export function labelledAudio(audio: MeasuredRendition | readonly LabelledAudio[] | null): LabelledAudio[] {
  if (audio === null) return []
  if ('segments' in audio) return [{ measured: audio, label: audio.name, isDefault: true }]
  // The default first: players without language preferences start with it (RFC 8216 §4.3.4.1.1).
  return [...audio].sort((a, b) => Number(b.isDefault) - Number(a.isDefault))
}

/** Peak and average of one rendition from its segment bytes and EXTINF durations. */
export function measuredBandwidth(r: MeasuredRendition): { peak: number; average: number } {
  return bandwidthOf(
    r.segments.map((s) => ({ bytes: s.bytes, durationS: s.extinfS })),
    SEGMENT_S,
  )
}

export function buildMaster(opts: {
  readonly video: readonly MeasuredRendition[]
  /** One rendition (the single-track form), every labelled track, or null for video only. */
  readonly audio: MeasuredRendition | readonly LabelledAudio[] | null
  readonly frameRate: number
  /** WebVTT subtitle renditions (captions.ts); every variant names their group. */
  readonly subtitles?: readonly SubtitleRendition[] | undefined
}): MasterResult {
  const subtitles = opts.subtitles ?? []
  if (opts.video.length === 0) throw new TypeError('opts.video must not be empty')
  if (!(opts.frameRate > 0)) throw new TypeError('opts.frameRate must be positive')
  const tracks = labelledAudio(opts.audio)
  const audioTracks = tracks.map((t): AudioRenditionSummary => {
    const bw = measuredBandwidth(t.measured)
    return {
      name: t.measured.name,
      label: t.label,
      ...(t.language !== undefined ? { language: t.language } : {}),
      isDefault: t.isDefault,
      bandwidth: bw.peak,
      averageBandwidth: bw.average,
      codecs: t.measured.codecs,
      channels: t.measured.channels,
      sampleRate: t.measured.sampleRate,
    }
  })
  const audio = audioTracks[0] ?? null
  // RFC 8216 §4.3.4.2: BANDWIDTH covers every rendition that may play with the variant, so with
  // several audio renditions the group's highest rate counts.
  const audioPeak = Math.max(0, ...audioTracks.map((a) => a.bandwidth))
  const audioAverage = Math.max(0, ...audioTracks.map((a) => a.averageBandwidth))
  const renditions = opts.video
    .map((r): VideoRenditionSummary => {
      const bw = measuredBandwidth(r)
      return {
        name: r.name,
        width: r.width,
        height: r.height,
        bandwidth: bw.peak + audioPeak,
        averageBandwidth: bw.average + audioAverage,
        codecs: audio ? `${r.codecs},${audio.codecs}` : r.codecs,
        frameRate: Math.round(opts.frameRate * 1000) / 1000,
        videoBandwidth: bw.peak,
      }
    })
    .sort((a, b) => a.bandwidth - b.bandwidth)
  const variants: MasterVariant[] = renditions.map((r) => ({
    uri: `${r.name}/index.m3u8`,
    bandwidth: r.bandwidth,
    averageBandwidth: r.averageBandwidth,
    codecs: r.codecs,
    width: r.width,
    height: r.height,
    frameRate: r.frameRate,
    ...(audio ? { audioGroupId: AUDIO_GROUP_ID } : {}),
    ...(subtitles.length > 0 ? { subtitlesGroupId: SUBTITLES_GROUP_ID } : {}),
  }))
  const text = formatMasterPlaylist({
    variants,
    audio: audioTracks.map((a) => ({
      groupId: AUDIO_GROUP_ID,
      name: a.label,
      uri: `${a.name}/index.m3u8`,
      channels: a.channels,
      ...(a.language !== undefined ? { language: a.language } : {}),
    })),
    subtitles: subtitles.map((r) => ({
      groupId: SUBTITLES_GROUP_ID,
      name: r.label,
      uri: r.playlistUri,
      ...(r.language !== undefined ? { language: r.language } : {}),
    })),
  })
  return { text, renditions, audio, audioTracks }
}
