// ffprobe first (docs/architecture.md §8): a source that is not a decodable video fails here with a
// coded, non-retryable error, before any expensive work starts.
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { VcdnError } from '../../shared/errors/index.js'
import {
  durationOf,
  ffprobeArgs,
  firstSecondDecodeArgs,
  framesFromProgress,
  mainVideoStream,
  ratio,
  type FfprobeJson,
  type FfprobeStream,
} from '../../shared/media/index.js'
import { audioTracksFromProbe, type AudioTrack } from './audio-tracks.js'
import { subtitleStreamsFromProbe, type SubtitleStream } from './captions.js'
import { FfmpegExitError, runFfmpeg } from './run-ffmpeg.js'
import { dynamicRangeOf, type DynamicRange, type SourceColour } from './tone-map.js'

export { isRetryableTranscodeError } from './errors.js'

export interface SourceInfo {
  readonly durationS: number
  /** Display size: after rotation and sample aspect ratio. */
  readonly width: number
  readonly height: number
  readonly fps: number
  readonly hasAudio: boolean
  readonly audioChannels: number
  readonly videoCodec: string
  /** Container bit rate in bit/s (0 when unknown). */
  readonly bitRate: number
  /** Absolute input stream indexes, so ffmpeg maps exactly the streams probed here. */
  readonly videoStreamIndex: number
  /**
   * Where the video's first frame is after the file's start, in seconds (ffmpeg's -ss counts from
   * the file's start): 0 for most files; e.g. 0.021 in a Matroska file with AAC audio, whose
   * encoder delay the audio starts with.
   */
  readonly videoStartS: number
  readonly audioStreamIndex: number | undefined
  /** Every audio stream, in stream order (the first is audioStreamIndex). */
  readonly audioTracks: readonly AudioTrack[]
  /** Text subtitle streams (converted to WebVTT by captions.ts). */
  readonly subtitleStreams: readonly SubtitleStream[]
  /** PQ and HLG sources are tone-mapped to the SDR ladder (tone-map.ts). */
  readonly dynamicRange: DynamicRange
  readonly colour: SourceColour
}

export interface ProbeOptions {
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
  /** Skip decoding the first second (unit tests of the metadata mapping only). */
  readonly shouldDecodeCheck?: boolean | undefined
}

// Demuxers that read a single picture; their "video" is one frame.
const IMAGE_FORMAT = /(^|,)(image2|[a-z0-9]+_pipe|apng|webp|gif)(,|$)/
const DEFAULT_PROBE_TIMEOUT_MS = 60_000

/** ffprobe's colour description of a video stream (fields shared/media does not read). */
type ColourTags = Partial<Record<'color_transfer' | 'color_primaries' | 'color_space' | 'color_range', string>>

function colourOf(stream: FfprobeStream): SourceColour {
  const c = stream as FfprobeStream & ColourTags
  const text = (v: unknown): string => (typeof v === 'string' ? v : '')
  return {
    transfer: text(c.color_transfer),
    primaries: text(c.color_primaries),
    matrix: text(c.color_space),
    range: text(c.color_range),
  }
}

function rotationOf(stream: FfprobeStream): number {
  const fromMatrix = stream.side_data_list?.find((d) => d.side_data_type === 'Display Matrix')?.rotation
  const raw = fromMatrix ?? Number(stream.tags?.['rotate'] ?? 0)
  return Number.isFinite(raw) ? raw : 0
}

/** Maps ffprobe's JSON to SourceInfo, or throws the coded reason the file is not a video. Pure. */
export function sourceInfoFromProbe(json: FfprobeJson): SourceInfo {
  const streams = json.streams ?? []
  const video = mainVideoStream(json)
  const audio = streams.find((s) => s.codec_type === 'audio')
  if (!video) {
    throw new VcdnError(
      'ERR_TRANSCODE_NOT_VIDEO',
      audio ? 'source has audio but no video stream' : 'source has no video stream',
    )
  }
  if (IMAGE_FORMAT.test(json.format?.format_name ?? '') || video.disposition?.still_image === 1) {
    throw new VcdnError(
      'ERR_TRANSCODE_NOT_VIDEO',
      `source is a still image (${json.format?.format_name ?? video.codec_name})`,
    )
  }
  const durationS = durationOf(json, video)
  if (!(durationS > 0)) throw new VcdnError('ERR_TRANSCODE_NOT_VIDEO', 'source has no duration')
  const codedW = video.width ?? 0
  const codedH = video.height ?? 0
  if (!(codedW > 0 && codedH > 0)) throw new VcdnError('ERR_TRANSCODE_CORRUPT', 'video stream has no dimensions')
  // Anamorphic sources: the display width is the coded width times the sample aspect ratio.
  const sar = ratio(video.sample_aspect_ratio) || 1
  let width = Math.round(codedW * (sar > 0 ? sar : 1))
  let height = codedH
  if (Math.abs(rotationOf(video)) % 180 === 90) [width, height] = [height, width]
  // avg_frame_rate is what plays; r_frame_rate can be a container tick rate (1000/1 in VFR mkv).
  let fps = ratio(video.avg_frame_rate)
  if (!(fps > 0 && fps <= 240)) fps = ratio(video.r_frame_rate)
  if (!(fps > 0 && fps <= 240)) fps = 30
  const colour = colourOf(video)
  return {
    durationS,
    width,
    height,
    fps,
    hasAudio: audio !== undefined,
    audioChannels: audio?.channels ?? 0,
    videoCodec: video.codec_name ?? 'unknown',
    bitRate: ratio(json.format?.bit_rate),
    videoStreamIndex: video.index ?? 0,
    videoStartS: videoStartOf(json, video),
    audioStreamIndex: audio?.index,
    audioTracks: audioTracksFromProbe(streams),
    subtitleStreams: subtitleStreamsFromProbe(streams),
    dynamicRange: dynamicRangeOf(colour.transfer),
    colour,
  }
}

/** The video's start after the file's start (0 when either is unknown, or for a negative gap). */
function videoStartOf(json: FfprobeJson, video: FfprobeStream): number {
  const stream = Number(video.start_time)
  const file = Number(json.format?.start_time ?? 0)
  if (!Number.isFinite(stream) || !Number.isFinite(file)) return 0
  return Math.max(0, Math.round((stream - file) * 1e6) / 1e6)
}

/** A tool failure on the input (not a crash of the tool itself) means the bytes are bad. */
function asCorrupt(err: unknown, what: string): unknown {
  if (
    err instanceof VcdnError &&
    err.code === 'ERR_TRANSCODE_FFMPEG' &&
    err.cause instanceof FfmpegExitError &&
    err.cause.exitCode !== null
  ) {
    const line = err.cause.stderrTail.split('\n').filter(Boolean).pop() ?? ''
    return new VcdnError('ERR_TRANSCODE_CORRUPT', `${what}: ${line}`, { cause: err })
  }
  return err
}

export async function probe(path: string, opts: ProbeOptions = {}): Promise<SourceInfo> {
  if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string')
  // A missing or unreadable file is the caller's problem (a failed download), not a verdict on the
  // video: let the fs error through, so it stays retryable.
  await access(path, constants.R_OK)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
  const chunks: string[] = []
  try {
    await runFfmpeg({
      bin: 'ffprobe',
      args: ffprobeArgs(path),
      signal: opts.signal,
      timeoutMs,
      onStdoutLine: (line) => chunks.push(line),
    })
  } catch (err) {
    throw asCorrupt(err, 'ffprobe cannot read the source')
  }
  let json: FfprobeJson
  try {
    json = JSON.parse(chunks.join('\n')) as FfprobeJson
  } catch (err) {
    throw new VcdnError('ERR_TRANSCODE_CORRUPT', 'ffprobe output is not JSON', { cause: err })
  }
  const info = sourceInfoFromProbe(json)
  if (opts.shouldDecodeCheck !== false) await decodeCheck(path, info, opts.signal, timeoutMs)
  return info
}

// A valid header over corrupt data passes ffprobe; decoding the first second catches it before
// the ladder runs (and before a retry loop would).
async function decodeCheck(
  path: string,
  info: SourceInfo,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<void> {
  let frames = 0
  try {
    await runFfmpeg({
      bin: 'ffmpeg',
      args: firstSecondDecodeArgs(path, info.videoStreamIndex),
      signal,
      timeoutMs,
      onStdoutLine: (line) => {
        frames = framesFromProgress(line, frames)
      },
    })
  } catch (err) {
    throw asCorrupt(err, 'the first second does not decode')
  }
  if (frames === 0) throw new VcdnError('ERR_TRANSCODE_CORRUPT', 'no frame decodes in the first second')
}
