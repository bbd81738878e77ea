// The multivariant playlist, written from measured segment sizes: ffmpeg's own BANDWIDTH is an
// estimate from encoder settings, not the bytes a player will actually fetch.
import { formatMasterPlaylist, type MasterVariant } from '../../shared/hls/index.js'
import { AUDIO_RENDITION, SEGMENT_S } from './ffmpeg-args.js'
import { bandwidthOf, type MeasuredRendition } from './measure.js'

export const AUDIO_GROUP_ID = 'aud'

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
  readonly audio: AudioRenditionSummary | null
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
  readonly audio: MeasuredRendition | null
  readonly frameRate: number
}): MasterResult {
  if (opts.video.length === 0) throw new TypeError('opts.video must not be empty')
  if (!(opts.frameRate > 0)) throw new TypeError('opts.frameRate must be positive')
  const audioBw = opts.audio ? measuredBandwidth(opts.audio) : { peak: 0, average: 0 }
  const audio: AudioRenditionSummary | null = opts.audio
    ? {
        name: AUDIO_RENDITION,
        bandwidth: audioBw.peak,
        averageBandwidth: audioBw.average,
        codecs: opts.audio.codecs,
        channels: opts.audio.channels,
        sampleRate: opts.audio.sampleRate,
      }
    : null
  const renditions = opts.video
    .map((r): VideoRenditionSummary => {
      const bw = measuredBandwidth(r)
      // RFC 8216 §4.3.4.2: BANDWIDTH (and AVERAGE-BANDWIDTH) cover every rendition played
      // together, so the audio group's rate is added to each video variant.
      return {
        name: r.name,
        width: r.width,
        height: r.height,
        bandwidth: bw.peak + audioBw.peak,
        averageBandwidth: bw.average + audioBw.average,
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
  }))
  const text = formatMasterPlaylist({
    variants,
    audio: audio
      ? [
          {
            groupId: AUDIO_GROUP_ID,
            name: AUDIO_RENDITION,
            uri: `${AUDIO_RENDITION}/index.m3u8`,
            channels: audio.channels,
          },
        ]
      : [],
  })
  return { text, renditions, audio }
}
