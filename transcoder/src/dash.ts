// A static DASH MPD over the same CMAF files as the HLS playlists (ISO/IEC 23009-1, live
// profile: SegmentTemplate + SegmentTimeline), so one set of segments serves both protocols.
import type { SubtitleRendition } from './captions.js'
import type { MeasuredRendition } from './measure.js'

export interface DashInput {
  readonly durationS: number
  readonly frameRate: number
  /** Video rungs with their own bandwidth (without audio). */
  readonly video: readonly { readonly measured: MeasuredRendition; readonly bandwidth: number }[]
  /** One track (the single-track form), every track, or null for video only. */
  readonly audio: DashAudio | readonly DashAudio[] | null
  /** WebVTT subtitle tracks: one text AdaptationSet each, over the whole file. */
  readonly subtitles?: readonly SubtitleRendition[] | undefined
}

export interface DashAudio {
  readonly measured: MeasuredRendition
  readonly bandwidth: number
  /** BCP-47 (@lang); `und` when absent. */
  readonly language?: string | undefined
  /** A <Label> for players' menus. */
  readonly label?: string | undefined
  /** Role main for the default track, alternate for the others (ISO/IEC 23009-1 §5.8.5.5). */
  readonly isDefault?: boolean | undefined
}

const xmlAttr = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')

function isoDuration(seconds: number): string {
  return `PT${Math.max(0, seconds).toFixed(3)}S`
}

/** 29.97 → "30000/1001", 25 → "25" (DASH @frameRate is a FrameRateType). */
export function dashFrameRate(fps: number): string {
  const whole = Math.round(fps)
  if (Math.abs(fps - whole) < 0.001) return String(whole)
  const ntsc = Math.round((fps * 1001) / 1000)
  if (Math.abs((ntsc * 1000) / 1001 - fps) < 0.001) return `${ntsc * 1000}/1001`
  return `${Math.round(fps * 1000)}/1000`
}

/** <S> elements with runs of equal contiguous durations collapsed into @r. */
export function segmentTimeline(
  segments: readonly { readonly startTs: number; readonly durationTs: number }[],
): string {
  const out: string[] = []
  let i = 0
  while (i < segments.length) {
    const s = segments[i] as { startTs: number; durationTs: number }
    let r = 0
    let expected = s.startTs + s.durationTs
    while (i + r + 1 < segments.length) {
      const n = segments[i + r + 1] as { startTs: number; durationTs: number }
      if (n.durationTs !== s.durationTs || n.startTs !== expected) break
      expected += n.durationTs
      r++
    }
    out.push(`<S t="${s.startTs}" d="${s.durationTs}"${r > 0 ? ` r="${r}"` : ''}/>`)
    i += r + 1
  }
  return out.join('')
}

function template(m: MeasuredRendition, indent: string): string {
  return [
    `${indent}<SegmentTemplate timescale="${m.timescale}" initialization="$RepresentationID$/${xmlAttr(m.initUri)}" media="$RepresentationID$/seg_$Number%05d$.m4s" startNumber="1">`,
    `${indent}  <SegmentTimeline>${segmentTimeline(m.segments)}</SegmentTimeline>`,
    `${indent}</SegmentTemplate>`,
  ].join('\n')
}

export function buildMpd(input: DashInput): string {
  if (input.video.length === 0) throw new TypeError('input.video must not be empty')
  if (!(input.durationS > 0)) throw new TypeError('input.durationS must be positive')
  const fr = dashFrameRate(input.frameRate)
  const maxW = Math.max(...input.video.map((v) => v.measured.width))
  const maxH = Math.max(...input.video.map((v) => v.measured.height))
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="${isoDuration(input.durationS)}" minBufferTime="PT4S">`,
    '  <Period id="0" start="PT0S">',
    // segmentAlignment: boundaries are identical across rungs (validated before publishing);
    // startWithSAP=1: every segment starts with an IDR frame.
    `    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" maxWidth="${maxW}" maxHeight="${maxH}" frameRate="${fr}">`,
  ]
  // Per-Representation templates: each track keeps the timescale ffmpeg chose for it.
  for (const v of [...input.video].sort((a, b) => a.bandwidth - b.bandwidth)) {
    const m = v.measured
    lines.push(
      `      <Representation id="${xmlAttr(m.name)}" bandwidth="${Math.ceil(v.bandwidth)}" codecs="${xmlAttr(m.codecs)}" width="${m.width}" height="${m.height}" sar="1:1">`,
      template(m, '        '),
      '      </Representation>',
    )
  }
  lines.push('    </AdaptationSet>')
  const audio = input.audio === null ? [] : 'measured' in input.audio ? [input.audio] : input.audio
  // One AdaptationSet per audio track: a language is a choice the viewer makes, not a rung.
  audio.forEach((a, i) => {
    const m = a.measured
    lines.push(
      `    <AdaptationSet id="${i + 1}" contentType="audio" mimeType="audio/mp4" lang="${xmlAttr(a.language ?? 'und')}" segmentAlignment="true" startWithSAP="1">`,
      ...(a.isDefault === undefined
        ? []
        : [`      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="${a.isDefault ? 'main' : 'alternate'}"/>`]),
      ...(a.label === undefined ? [] : [`      <Label>${xmlAttr(a.label).replace(/>/g, '&gt;')}</Label>`]),
      `      <Representation id="${xmlAttr(m.name)}" bandwidth="${Math.ceil(a.bandwidth)}" codecs="${xmlAttr(m.codecs)}" audioSamplingRate="${m.sampleRate}">`,
      `        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="${m.channels}"/>`,
      template(m, '        '),
      '      </Representation>',
      '    </AdaptationSet>',
    )
  })
  // Side-loaded WebVTT (DASH-IF IOP §6.4.5): one file per track through BaseURL.
  const firstText = audio.length + 1
  ;(input.subtitles ?? []).forEach((r, i) => {
    lines.push(
      `    <AdaptationSet id="${firstText + i}" contentType="text" mimeType="text/vtt" lang="${xmlAttr(r.language ?? 'und')}">`,
      '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>',
      `      <Label>${xmlAttr(r.label).replace(/>/g, '&gt;')}</Label>`,
      `      <Representation id="subs_${xmlAttr(r.name)}" bandwidth="256">`,
      `        <BaseURL>${xmlAttr(r.fileUri)}</BaseURL>`,
      '      </Representation>',
      '    </AdaptationSet>',
    )
  })
  lines.push('  </Period>', '</MPD>')
  return `${lines.join('\n')}\n`
}
