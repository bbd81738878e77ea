// Sources with several tracks, generated with lavfi: two audio languages (and, for captions, an
// embedded text subtitle stream) in Matroska, which keeps language and title tags per stream.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface MultiTrackOptions {
  readonly durationS?: number
  /** Also mux this SRT text as a subtitle stream tagged `subtitleLanguage`. */
  readonly subtitleSrt?: string
  readonly subtitleLanguage?: string
  /** Frame size, `<w>x<h>` (default 320x180). */
  readonly size?: string
}

/**
 * 320×180 video (or `size`) with an English track (440 Hz, mono) and a Spanish one (660 Hz, stereo, titled,
 * and the one the container marks default).
 */
export function makeTwoLanguageClip(dir: string, name: string, o: MultiTrackOptions = {}): string {
  const path = join(dir, name)
  const seconds = String(o.durationS ?? 4)
  const subtitle: string[] = []
  if (o.subtitleSrt !== undefined) {
    const srt = join(dir, `${name}.srt`)
    writeFileSync(srt, o.subtitleSrt)
    subtitle.push('-i', srt)
  }
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y'],
    ...['-f', 'lavfi', '-i', `testsrc2=size=${o.size ?? '320x180'}:rate=30:duration=${seconds}`],
    ...['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`],
    ...['-f', 'lavfi', '-i', `sine=frequency=660:sample_rate=48000:duration=${seconds}`],
    ...subtitle,
    ...['-map', '0', '-map', '1', '-map', '2', ...(subtitle.length > 0 ? ['-map', '3'] : [])],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-ac:a:1', '2'],
    ...(subtitle.length > 0 ? ['-c:s', 'srt', '-metadata:s:s:0', `language=${o.subtitleLanguage ?? 'fre'}`] : []),
    ...['-metadata:s:a:0', 'language=eng', '-metadata:s:a:1', 'language=spa'],
    ...['-metadata:s:a:1', 'title=Español (Latinoamérica)'],
    ...['-disposition:a:0', '0', '-disposition:a:1', 'default'],
    path,
  ])
  return path
}
