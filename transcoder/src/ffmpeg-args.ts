// The argv of the one ffmpeg run per job: decode once, split to every rung, encode each rung with
// libx264 on a fixed GOP, the audio once, and mux everything as CMAF fMP4 HLS renditions.
import type { Rendition } from './ladder.js'
import { SDR_BT709_TAGS, toneMapFilter, type DynamicRange, type SourceColour } from './tone-map.js'

export const X264_PRESETS = [
  'ultrafast',
  'superfast',
  'veryfast',
  'faster',
  'fast',
  'medium',
  'slow',
  'slower',
  'veryslow',
] as const
export type X264Preset = (typeof X264_PRESETS)[number]

export const SEGMENT_S = 4
export const GOP_S = 2
export const AUDIO_RENDITION = 'audio'
export const AUDIO_BITRATE_BPS = 128_000
export const AUDIO_SAMPLE_RATE = 48_000
export const AUDIO_CHANNELS = 2

export interface FfmpegJob {
  readonly sourcePath: string
  /** Output root: ffmpeg writes `<outDir>/<rendition>/{index.m3u8,init_N.mp4,seg_00001.m4s…}`. */
  readonly outDir: string
  readonly renditions: readonly Rendition[]
  /** Source frame rate: the GOP is 2 s of frames. */
  readonly fps: number
  readonly videoStreamIndex: number
  /** Absolute index of the audio stream to encode; undefined for a video-only output. */
  readonly audioStreamIndex?: number | undefined
  /**
   * Every audio track to encode, each as its own rendition (audio-tracks.ts names them); when
   * given it replaces audioStreamIndex.
   */
  readonly audioTracks?: readonly AudioTrackJob[] | undefined
  readonly preset?: X264Preset | undefined
  readonly crf?: number | undefined
  /**
   * Threads of each part of the run: the decoder, the filter graph and every encoder (`-threads N`,
   * `-filter_complex_threads N`); 0 or undefined leaves the choice to ffmpeg (about one per core).
   * 1 makes a run's CPU-seconds its wall time on a core of its own (the long-video benchmark).
   */
  readonly threads?: number | undefined
  /** A PQ/HLG source is tone-mapped once, before the split, and the ladder tagged BT.709. */
  readonly toneMap?: { readonly range: Exclude<DynamicRange, 'SDR'>; readonly colour: SourceColour } | undefined
}

export interface AudioTrackJob {
  readonly streamIndex: number
  readonly name: string
}

const NAME = /^[A-Za-z0-9_-]+$/

function validateJob(job: FfmpegJob): void {
  const fail = (path: string, msg: string): never => {
    throw new TypeError(`job.${path} ${msg}`)
  }
  if (typeof job !== 'object' || job === null) throw new TypeError('job must be an object')
  if (typeof job.sourcePath !== 'string' || job.sourcePath === '') fail('sourcePath', 'must be a non-empty string')
  if (typeof job.outDir !== 'string' || job.outDir === '') fail('outDir', 'must be a non-empty string')
  // '%' would be read by the hls muxer as a pattern.
  if (job.outDir.includes('%')) fail('outDir', 'must not contain %')
  if (!Array.isArray(job.renditions) || job.renditions.length === 0) fail('renditions', 'must be a non-empty array')
  const names = new Set<string>()
  job.renditions.forEach((r, i) => {
    if (!NAME.test(r.name) || r.name === AUDIO_RENDITION)
      fail(`renditions[${i}].name`, `must match ${NAME} and not be "${AUDIO_RENDITION}"`)
    if (names.has(r.name)) fail(`renditions[${i}].name`, 'is a duplicate')
    names.add(r.name)
    for (const k of ['width', 'height'] as const) {
      if (!(Number.isInteger(r[k]) && r[k] >= 2 && r[k] % 2 === 0))
        fail(`renditions[${i}].${k}`, 'must be an even integer ≥ 2')
    }
    if (!(Number.isInteger(r.maxrateBps) && r.maxrateBps > 0))
      fail(`renditions[${i}].maxrateBps`, 'must be a positive integer')
  })
  if (!(Number.isFinite(job.fps) && job.fps > 0 && job.fps <= 240)) fail('fps', 'must be in (0, 240]')
  if (!(Number.isInteger(job.videoStreamIndex) && job.videoStreamIndex >= 0))
    fail('videoStreamIndex', 'must be an integer ≥ 0')
  if (job.audioStreamIndex !== undefined && !(Number.isInteger(job.audioStreamIndex) && job.audioStreamIndex >= 0)) {
    fail('audioStreamIndex', 'must be an integer ≥ 0')
  }
  job.audioTracks?.forEach((a, i) => {
    if (!(Number.isInteger(a.streamIndex) && a.streamIndex >= 0))
      fail(`audioTracks[${i}].streamIndex`, 'must be an integer ≥ 0')
    if (!NAME.test(a.name) || names.has(a.name)) fail(`audioTracks[${i}].name`, `must match ${NAME} and be unique`)
    names.add(a.name)
  })
  if (job.preset !== undefined && !X264_PRESETS.includes(job.preset))
    fail('preset', `must be one of ${X264_PRESETS.join(', ')}`)
  if (job.crf !== undefined && !(Number.isInteger(job.crf) && job.crf >= 0 && job.crf <= 51))
    fail('crf', 'must be an integer in [0, 51]')
  const threadsProblem = threadsCheck(job.threads)
  if (threadsProblem !== null) fail('threads', threadsProblem)
  if (job.toneMap !== undefined && job.toneMap.range !== 'PQ' && job.toneMap.range !== 'HLG')
    fail('toneMap.range', 'must be PQ or HLG')
}

export const MAX_FFMPEG_THREADS = 64

/** Why `threads` is not a valid FfmpegJob.threads, or null. */
export function threadsCheck(threads: number | undefined): string | null {
  if (threads === undefined || (Number.isInteger(threads) && threads >= 0 && threads <= MAX_FFMPEG_THREADS)) return null
  return `must be an integer in [0, ${MAX_FFMPEG_THREADS}]`
}

/** The input-side thread options (decoder, filter graph), placed before `-i`; none for 0. */
export function inputThreadArgs(threads: number | undefined): string[] {
  if (threads === undefined || threads === 0) return []
  return ['-threads', String(threads), '-filter_complex_threads', String(threads)]
}

/** The audio tracks a job encodes: audioTracks, or the one audioStreamIndex as the `audio` rendition. */
export function audioTracksOf(job: Pick<FfmpegJob, 'audioTracks' | 'audioStreamIndex'>): readonly AudioTrackJob[] {
  return (
    job.audioTracks ??
    (job.audioStreamIndex !== undefined ? [{ streamIndex: job.audioStreamIndex, name: AUDIO_RENDITION }] : [])
  )
}

const kbps = (bps: number): string => `${Math.round(bps / 1000)}k`

type Pair = readonly [flag: string, value: string]
const push = (args: string[], pairs: readonly Pair[]): void => {
  for (const [flag, value] of pairs) args.push(flag, value)
}

/** The full argv (without the `ffmpeg` itself). */
export function buildFfmpegArgs(job: FfmpegJob): string[] {
  validateJob(job)
  const audio = audioTracksOf(job)

  const args: string[] = ['-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-y']
  args.push(...inputThreadArgs(job.threads))
  push(args, [
    ['-i', job.sourcePath],
    ['-filter_complex', ladderGraph(job)],
    ...job.renditions.map((_, i): Pair => ['-map', `[v${i}]`]),
    ...audio.map((a): Pair => ['-map', `0:${a.streamIndex}`]),
    ['-map_metadata', '-1'],
    ['-map_chapters', '-1'],
  ])
  args.push(...x264Args(job))
  if (audio.length > 0) args.push(...audioArgs())
  args.push(...hlsMuxerArgs(job.outDir, job.renditions, audio))
  return args
}

/**
 * One decode, split N ways to the rungs, labelled [v0]..[vN-1]. setsar=1 makes every rung
 * square-pixel (anamorphic sources are scaled to their display size), format=yuv420p keeps
 * 10-bit/4:4:4 sources inside High profile.
 */
export function ladderGraph(
  job: Pick<FfmpegJob, 'renditions' | 'videoStreamIndex' | 'toneMap'>,
  /** Filters before everything else, e.g. a chunk's timestamps restarted at 0 (stitch-args.ts). */
  lead = '',
): string {
  const labels = job.renditions.map((_, i) => `[s${i}]`).join('')
  // A PQ/HLG source is tone-mapped once, before the split (tone-map.ts).
  const toneMap = job.toneMap ? `${toneMapFilter(job.toneMap.range, job.toneMap.colour)},` : ''
  const graph = [
    `[0:${job.videoStreamIndex}]${lead === '' ? '' : `${lead},`}${toneMap}split=${job.renditions.length}${labels}`,
  ]
  job.renditions.forEach((r, i) => graph.push(`[s${i}]scale=${r.width}:${r.height},setsar=1,format=yuv420p[v${i}]`))
  return graph.join(';')
}

/**
 * The video encoder settings of every rung (output video stream i is rung i). The 2 s keyframe grid
 * is measured from the output's start, so an encode that starts on the grid (a chunk,
 * docs/architecture.md §8) continues the same grid.
 */
export function x264Args(
  job: Pick<FfmpegJob, 'renditions' | 'fps' | 'preset' | 'crf' | 'toneMap' | 'threads'>,
): string[] {
  const gopFrames = Math.max(1, Math.round(GOP_S * job.fps))
  const args: string[] = []
  push(args, [
    ['-c:v', 'libx264'],
    ['-profile:v', 'high'],
    ['-preset', job.preset ?? 'veryfast'],
    ['-crf', String(job.crf ?? 23)],
  ])
  if (job.toneMap) args.push(...SDR_BT709_TAGS)
  // Capped CRF: quality-driven, but never above the rung's rate over a 2 s VBV buffer.
  job.renditions.forEach((r, i) =>
    push(args, [
      [`-maxrate:v:${i}`, kbps(r.maxrateBps)],
      [`-bufsize:v:${i}`, kbps(2 * r.maxrateBps)],
    ]),
  )
  // Fixed GOP, no scene-cut keyframes, and keyframes forced on the 2 s grid by time so every rung
  // cuts its segments at the same instants (segment boundaries identical across renditions).
  push(args, [
    ['-g', String(gopFrames)],
    ['-keyint_min', String(gopFrames)],
    ['-sc_threshold', '0'],
    ['-force_key_frames', `expr:gte(t,n_forced*${GOP_S})`],
    ['-forced-idr', '1'],
  ])
  // As an output option -threads sets the encoders' threads (x264's frame threads).
  if (job.threads !== undefined && job.threads > 0) args.push('-threads', String(job.threads))
  return args
}

/** The audio encode, the same for every track (each its own rendition). */
export function audioArgs(): string[] {
  return [
    ...['-c:a', 'aac'],
    ...['-b:a', kbps(AUDIO_BITRATE_BPS)],
    ...['-ac', String(AUDIO_CHANNELS)],
    ...['-ar', String(AUDIO_SAMPLE_RATE)],
  ]
}

/** The CMAF HLS muxer: output video stream i is rung i, audio stream i the rendition audio[i]. */
export function hlsMuxerArgs(
  outDir: string,
  renditions: readonly Rendition[],
  audio: readonly Pick<AudioTrackJob, 'name'>[],
): string[] {
  const streamMap = renditions.map((r, i) => `v:${i},name:${r.name}`)
  // One variant stream per audio track: each becomes its own rendition folder.
  audio.forEach((a, i) => streamMap.push(`a:${i},name:${a.name}`))
  const args: string[] = []
  push(args, [
    ['-max_muxing_queue_size', '4096'],
    ['-f', 'hls'],
    ['-hls_segment_type', 'fmp4'],
    ['-hls_time', String(SEGMENT_S)],
    ['-hls_playlist_type', 'vod'],
    ['-hls_flags', 'independent_segments'],
    // Segment numbering starts at 1 (docs/architecture.md §2: seg_00001.m4s).
    ['-start_number', '1'],
    ['-hls_segment_filename', `${outDir}/%v/seg_%05d.m4s`],
    // With several variants the muxer appends _<index> (init_0.mp4); the pipeline renames it.
    ['-hls_fmp4_init_filename', 'init.mp4'],
    ['-var_stream_map', streamMap.join(' ')],
  ])
  args.push(`${outDir}/%v/index.m3u8`)
  return args
}
