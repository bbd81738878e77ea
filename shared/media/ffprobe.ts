// What the origin (early rejection at upload, docs/architecture.md §7) and the transcoder (its
// first step, §8) both ask ffprobe and ffmpeg about a source: the same argv, the same reading of
// ffprobe's JSON, the same first-second decode. Pure: running the tools stays with each caller
// (the origin bounds the output itself; the transcoder uses its ffmpeg runner).

export interface FfprobeStream {
  index?: number
  codec_type?: string
  codec_name?: string
  width?: number
  height?: number
  sample_aspect_ratio?: string
  avg_frame_rate?: string
  r_frame_rate?: string
  duration?: string
  /** The frame count the container keeps (MP4's sample table), as text; absent when it keeps none (Matroska). */
  nb_frames?: string
  /** Seconds, as text; with the format's start_time it says where the stream begins in the file. */
  start_time?: string
  channels?: number
  disposition?: { attached_pic?: number; still_image?: number }
  tags?: Record<string, string>
  side_data_list?: { side_data_type?: string; rotation?: number }[]
}

export interface FfprobeJson {
  streams?: FfprobeStream[]
  format?: { format_name?: string; duration?: string; bit_rate?: string; start_time?: string }
}

/** ffprobe's argv for a file's streams and container as JSON (errors only on stderr). */
export function ffprobeArgs(path: string): string[] {
  return ['-v', 'error', '-of', 'json', '-show_format', '-show_streams', '-i', path]
}

/**
 * ffmpeg's argv that decodes the first second of one video stream to nothing and reports progress
 * on stdout (`frame=N` lines, read with framesFromProgress): a valid header over corrupt data
 * passes ffprobe, and this catches it.
 */
export function firstSecondDecodeArgs(path: string, videoStreamIndex: number): string[] {
  return [
    '-v',
    'error',
    '-nostdin',
    '-nostats',
    '-t',
    '1',
    '-i',
    path,
    '-map',
    `0:${videoStreamIndex}`,
    '-f',
    'null',
    '-progress',
    'pipe:1',
    '-',
  ]
}

/** The frame count a `-progress` line reports, or `frames` when the line is about something else. */
export function framesFromProgress(line: string, frames: number): number {
  return line.startsWith('frame=') ? Number(line.slice(6)) || frames : frames
}

/** `num/den` or `num:den` (or a plain number) as a number; 0 when absent or not finite. */
export function ratio(text: string | undefined): number {
  if (text === undefined || text === '') return 0
  const [num, den] = text.split(/[/:]/).map(Number)
  if (num === undefined || !Number.isFinite(num)) return 0
  if (den === undefined) return num
  return den > 0 && Number.isFinite(den) ? num / den : 0
}

/** The stream that is the video: the first video stream that is not an attached cover picture. */
export function mainVideoStream(json: FfprobeJson): FfprobeStream | undefined {
  return (json.streams ?? []).find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1)
}

/** Seconds: the container's duration, else the stream's; 0 when neither is known. */
export function durationOf(json: FfprobeJson, video: FfprobeStream): number {
  return ratio(json.format?.duration) || ratio(video.duration)
}
