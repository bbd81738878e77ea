// The argv of split-and-stitch (docs/architecture.md §8), beside buildFfmpegArgs and built from the
// same pieces so a split video is encoded with exactly the settings of a whole one:
// - a chunk: decode-seek to the chunk start, the same ladder graph and x264 settings, video only,
//   every rung a video stream of one mp4 (rung i is stream i);
// - the audio job: every audio track of the whole source encoded with the settings of a whole
//   transcode (audioArgs), no video, track i of one mp4 = audio rendition i;
// - the concatenation of the chunks in order (concat demuxer, stream copy);
// - the packaging: the concatenated rungs copied, the audio copied from the audio job's mp4 (or,
//   without one, encoded once from the source), the same CMAF HLS muxer settings.
import {
  audioArgs,
  audioTracksOf,
  hlsMuxerArgs,
  inputThreadArgs,
  ladderGraph,
  threadsCheck,
  X264_PRESETS,
  x264Args,
  type AudioTrackJob,
  type FfmpegJob,
  type X264Preset,
} from './ffmpeg-args.js'
import type { Rendition } from './ladder.js'

const HEAD = ['-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-y'] as const

export interface ChunkJob {
  readonly sourcePath: string
  /** The chunk's mp4 (every rung a video stream, lowest first). */
  readonly outPath: string
  readonly renditions: readonly Rendition[]
  readonly fps: number
  readonly videoStreamIndex: number
  /** SourceInfo.videoStartS: where the video's first frame is after the file's start (default 0). */
  readonly videoStartS?: number | undefined
  /** On the GOP grid (a multiple of the segment duration), so the chunk's keyframe grid is the video's. */
  readonly startS: number
  /** undefined: to the end of the source (the last chunk). */
  readonly lengthS?: number | undefined
  readonly preset?: X264Preset | undefined
  readonly crf?: FfmpegJob['crf']
  /** A PQ/HLG source: every chunk is tone-mapped as a whole transcode is (FfmpegJob.toneMap). */
  readonly toneMap?: FfmpegJob['toneMap']
  /** As FfmpegJob.threads. */
  readonly threads?: FfmpegJob['threads']
}

function check(isOk: boolean, path: string, msg: string): void {
  if (!isOk) throw new TypeError(`job.${path} ${msg}`)
}

/** The argv (without `ffmpeg`) of one chunk's encode. */
export function buildChunkArgs(job: ChunkJob): string[] {
  check(typeof job === 'object' && job !== null, '', 'must be an object')
  check(typeof job.sourcePath === 'string' && job.sourcePath !== '', 'sourcePath', 'must be a non-empty string')
  check(typeof job.outPath === 'string' && job.outPath !== '', 'outPath', 'must be a non-empty string')
  check(Array.isArray(job.renditions) && job.renditions.length > 0, 'renditions', 'must be a non-empty array')
  check(Number.isFinite(job.fps) && job.fps > 0 && job.fps <= 240, 'fps', 'must be in (0, 240]')
  check(Number.isInteger(job.videoStreamIndex) && job.videoStreamIndex >= 0, 'videoStreamIndex', 'must be ≥ 0')
  check(Number.isFinite(job.startS) && job.startS >= 0, 'startS', 'must be ≥ 0')
  const videoStartS = job.videoStartS ?? 0
  check(Number.isFinite(videoStartS) && videoStartS >= 0, 'videoStartS', 'must be ≥ 0')
  check(job.lengthS === undefined || (Number.isFinite(job.lengthS) && job.lengthS > 0), 'lengthS', 'must be > 0')
  check(job.preset === undefined || X264_PRESETS.includes(job.preset), 'preset', 'must be an x264 preset')
  const threadsProblem = threadsCheck(job.threads)
  check(threadsProblem === null, 'threads', threadsProblem ?? '')
  return [
    ...HEAD,
    ...inputThreadArgs(job.threads),
    // -ss before -i seeks the input and, as the video is re-encoded, decodes from the keyframe before
    // the start and drops the frames before it: frame-accurate. The seek counts from the file's
    // start, so it adds where the video begins (Matroska with AAC: 21 ms after the file), less half
    // a frame so rounding never drops the chunk's first frame. The chunk's timestamps restart at 0
    // on its first frame (setpts): the forced-keyframe grid (x264Args) is measured from the chunk
    // start, and the mp4 muxer's constant frame rate has no gap before the first frame to fill
    // with a copy of it (what made such a chunk one frame longer). It ends by frame count.
    ...['-ss', seconds(Math.max(0, job.startS + videoStartS - 0.5 / job.fps))],
    ...['-i', job.sourcePath],
    ...['-filter_complex', ladderGraph(job, 'setpts=PTS-STARTPTS')],
    ...job.renditions.flatMap((_, i) => ['-map', `[v${i}]`]),
    '-an',
    ...['-map_metadata', '-1'],
    ...['-map_chapters', '-1'],
    ...x264Args(job),
    ...(job.lengthS !== undefined ? ['-frames:v', String(Math.round(job.lengthS * job.fps))] : []),
    ...['-f', 'mp4'],
    job.outPath,
  ]
}

/** Seconds as ffmpeg reads them, to the microsecond (no exponent, no float noise). */
function seconds(s: number): string {
  return String(Math.round(s * 1e6) / 1e6)
}

/** The argv of joining the chunks listed in `listPath` (concat demuxer, every stream copied). */
export function buildConcatArgs(listPath: string, outPath: string): string[] {
  return [
    ...HEAD,
    ...['-f', 'concat'],
    ...['-safe', '0'],
    ...['-i', listPath],
    ...['-map', '0'],
    ...['-c', 'copy'],
    ...['-f', 'mp4'],
    outPath,
  ]
}

/** The concat demuxer's list: one `file` line per chunk, in order, each path quoted. */
export function concatList(paths: readonly string[]): string {
  return paths.map((p) => `file '${p.replaceAll("'", "'\\''")}'\n`).join('')
}

export interface AudioJob {
  readonly sourcePath: string
  /** The mp4 written: audio stream i is audioTracks[i], encoded. */
  readonly outPath: string
  /** Every audio track, as FfmpegJob.audioTracks (at least one). */
  readonly audioTracks: readonly AudioTrackJob[]
  /** As FfmpegJob.threads. */
  readonly threads?: FfmpegJob['threads']
}

/** The argv of a split video's audio job: every track of the source encoded as a whole transcode does. */
export function buildAudioArgs(job: AudioJob): string[] {
  check(typeof job === 'object' && job !== null, '', 'must be an object')
  check(typeof job.sourcePath === 'string' && job.sourcePath !== '', 'sourcePath', 'must be a non-empty string')
  check(typeof job.outPath === 'string' && job.outPath !== '', 'outPath', 'must be a non-empty string')
  check(Array.isArray(job.audioTracks) && job.audioTracks.length > 0, 'audioTracks', 'must be a non-empty array')
  job.audioTracks.forEach((a, i) =>
    check(Number.isInteger(a.streamIndex) && a.streamIndex >= 0, `audioTracks[${i}].streamIndex`, 'must be ≥ 0'),
  )
  const threadsProblem = threadsCheck(job.threads)
  check(threadsProblem === null, 'threads', threadsProblem ?? '')
  return [
    ...HEAD,
    ...inputThreadArgs(job.threads),
    ...['-i', job.sourcePath],
    ...job.audioTracks.flatMap((a) => ['-map', `0:${a.streamIndex}`]),
    ...['-map_metadata', '-1'],
    ...['-map_chapters', '-1'],
    ...audioArgs(),
    ...['-f', 'mp4'],
    job.outPath,
  ]
}

export interface StitchJob {
  /** The concatenated chunks: rung i is video stream i. */
  readonly videoPath: string
  /** The source, for its audio when there is no `audioPath`. */
  readonly sourcePath: string
  /**
   * The audio job's mp4 (buildAudioArgs with the same audioTracks): its streams are copied, not
   * encoded again. undefined: the source's audio is encoded here.
   */
  readonly audioPath?: string | undefined
  readonly outDir: string
  readonly renditions: readonly Rendition[]
  readonly audioStreamIndex?: number | undefined
  /** Every audio track, as FfmpegJob.audioTracks (replaces audioStreamIndex when given). */
  readonly audioTracks?: readonly AudioTrackJob[] | undefined
}

/**
 * The argv of the packaging run: the rungs stream-copied, the audio copied from the audio job's mp4
 * (or encoded once from the source without one), CMAF HLS as buildFfmpegArgs.
 */
export function buildStitchArgs(job: StitchJob): string[] {
  check(typeof job.videoPath === 'string' && job.videoPath !== '', 'videoPath', 'must be a non-empty string')
  check(typeof job.sourcePath === 'string' && job.sourcePath !== '', 'sourcePath', 'must be a non-empty string')
  check(
    job.audioPath === undefined || (typeof job.audioPath === 'string' && job.audioPath !== ''),
    'audioPath',
    'must be a non-empty string',
  )
  check(typeof job.outDir === 'string' && job.outDir !== '' && !job.outDir.includes('%'), 'outDir', 'must be set, no %')
  check(Array.isArray(job.renditions) && job.renditions.length > 0, 'renditions', 'must be a non-empty array')
  const audio = audioTracksOf(job)
  const isCopied = job.audioPath !== undefined
  return [
    ...HEAD,
    ...['-i', job.videoPath],
    ...['-i', job.audioPath ?? job.sourcePath],
    ...job.renditions.flatMap((_, i) => ['-map', `0:v:${i}`]),
    // The audio job's mp4 holds the tracks in plan order: its audio stream i is track i.
    ...audio.flatMap((a, i) => ['-map', isCopied ? `1:a:${i}` : `1:${a.streamIndex}`]),
    ...['-map_metadata', '-1'],
    ...['-map_chapters', '-1'],
    ...['-c:v', 'copy'],
    ...(audio.length === 0 ? [] : isCopied ? ['-c:a', 'copy'] : audioArgs()),
    ...hlsMuxerArgs(job.outDir, job.renditions, audio),
  ]
}
