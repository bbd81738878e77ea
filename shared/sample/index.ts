// The generated sample clip (ffmpeg's lavfi test pattern + a 440 Hz tone): the demo's default
// input and the source of the tests and benchmarks. One argv, so they all ingest the same kind of file.

export interface SampleClip {
  seconds: number
  width: number
  height: number
  fps?: number | string
  /** Default true: an AAC tone track. */
  hasAudio?: boolean
  crf?: number
  /** x264 preset; default ultrafast (the clip is an input, its quality does not matter). */
  preset?: string
}

/** ffmpeg arguments that write the clip to `path` (an mp4, H.264 yuv420p [+ AAC]). */
export function sampleClipArgs(o: SampleClip, path: string): string[] {
  const hasAudio = o.hasAudio !== false
  return [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${o.width}x${o.height}:rate=${o.fps ?? 30}`],
    ...(hasAudio ? ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'] : []),
    ...['-t', String(o.seconds), '-c:v', 'libx264', '-preset', o.preset ?? 'ultrafast', '-pix_fmt', 'yuv420p'],
    ...(o.crf !== undefined ? ['-crf', String(o.crf)] : []),
    ...(hasAudio ? ['-c:a', 'aac', '-shortest'] : []),
    path,
  ]
}
