// Early rejection (docs/architecture.md §7): when an upload completes, the origin asks ffprobe
// about it (the local file of a tus upload, a presigned URL of an S3 multipart one) before a
// transcode is queued. A file that is not a decodable video, or whose header declares a frame,
// rate or length beyond the configured bounds, is refused here with a coded reason, instead of
// failing on a transcoder minutes later (or costing it gigabytes to decode a 30000×30000 frame).
// ffprobe and ffmpeg run from an argv (never a shell), with a timeout and bounded output; what they
// print stays in the server's log: the reasons a creator sees are fixed strings without paths.
import { spawn } from 'node:child_process'
import { type ErrorCode, VcdnError } from '../../shared/errors/index.js'
import {
  durationOf,
  ffprobeArgs,
  firstSecondDecodeArgs,
  framesFromProgress,
  mainVideoStream,
  ratio,
  type FfprobeJson,
} from '../../shared/media/index.js'

export interface UploadBounds {
  /** Largest width × height of the video stream's coded frame. */
  readonly maxPixels: number
  readonly maxFrameRate: number
  readonly maxDurationS: number
}

export interface ProbeUploadOptions extends UploadBounds {
  /** Each tool run (metadata, first-second decode, frame count) is killed after this long. */
  readonly probeTimeoutMs: number
  /**
   * A video longer than this would be split (transcode.splitAboveS): its frames are counted to
   * tell a constant frame rate from a variable one. Absent: never counted.
   */
  readonly countFramesAboveS?: number
  /**
   * The source is a URL (an S3 multipart upload, presigned): its frames are never demuxed to count
   * them, which would download the whole source. The count the container keeps (MP4) is used
   * instead; without one, a video that could be split is not shown constant (transcoded whole).
   */
  readonly isRemote?: boolean
}

/** What a refused upload tells its creator: a registered code and a message without paths. */
export type UploadVerdict =
  | {
      readonly isVideo: true
      /** The container's (or the video stream's) length; it decides split or whole (./split-plan.ts). */
      readonly durationS: number
      /**
       * The frame rate varies (or could not be shown constant): such a source is transcoded whole,
       * as chunks end by frame count at one rate (docs/architecture.md §7.3).
       */
      readonly isVariableFrameRate: boolean
      /** How many audio streams the file has: a split video gets an audio job when there are any. */
      readonly audioStreams: number
    }
  | { readonly isVideo: false; readonly code: ErrorCode; readonly reason: string }

/** Output kept from a tool (ffprobe's JSON for one file is a few KiB; stderr only for the log). */
const MAX_OUTPUT_BYTES = 256 * 1024

interface ToolResult {
  readonly exitCode: number | null
  readonly stdout: string
  readonly stderr: string
  readonly isTimedOut: boolean
}

/** Runs `bin` with `args` (no shell); the output beyond MAX_OUTPUT_BYTES is dropped. Never rejects. */
function runTool(bin: string, args: readonly string[], timeoutMs: number): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let outBytes = 0
    let errBytes = 0
    let isTimedOut = false
    const timer = setTimeout(() => {
      isTimedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.on('data', (b: Buffer) => {
      if (outBytes < MAX_OUTPUT_BYTES) out.push(b)
      outBytes += b.length
    })
    child.stderr.on('data', (b: Buffer) => {
      if (errBytes < MAX_OUTPUT_BYTES) err.push(b)
      errBytes += b.length
    })
    const done = (exitCode: number | null): void => {
      clearTimeout(timer)
      resolve({
        exitCode,
        stdout: outBytes > MAX_OUTPUT_BYTES ? '' : Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8').slice(-2000),
        isTimedOut,
      })
    }
    child.on('error', () => done(null))
    child.on('close', (code) => done(code))
  })
}

function refuse(code: ErrorCode, reason: string): UploadVerdict {
  return { isVideo: false, code, reason }
}

/** What the metadata says of an acceptable video, before anything decodes. */
export interface ProbedVideo {
  readonly videoStreamIndex: number
  readonly durationS: number
  readonly audioStreams: number
  /** The rate a transcoder reads (avg_frame_rate, else r_frame_rate: transcoder/src/probe.ts). */
  readonly fps: number
  /** avg_frame_rate and r_frame_rate disagree: the timestamps are not on one grid. */
  readonly isRateMismatch: boolean
  /** The frame count the container keeps (nb_frames), or null when it keeps none. */
  readonly containerFrames: number | null
}

/** avg_frame_rate and r_frame_rate may differ by rounding (2997/100 against 30000/1001), not more. */
const RATE_MISMATCH = 0.005

/**
 * Whether `frames` counted over `durationS` at `fps` is a constant frame rate: within one frame
 * and 0.2 % (a container a few ms longer than its video, the last frame's duration).
 */
export function isFrameCountConstant(frames: number, durationS: number, fps: number): boolean {
  const expected = durationS * fps
  return Math.abs(frames - expected) <= 1 + 0.002 * expected
}

/** The verdict on ffprobe's JSON against the bounds. Pure (exported for unit tests). */
export function verdictFromProbe(json: unknown, bounds: UploadBounds): UploadVerdict | ProbedVideo {
  const doc = (json ?? {}) as FfprobeJson
  const video = mainVideoStream(doc)
  if (video === undefined) return refuse('ERR_UPLOAD_NOT_VIDEO', 'the file has no video stream')
  const width = video.width ?? 0
  const height = video.height ?? 0
  if (!(width > 0 && height > 0)) return refuse('ERR_UPLOAD_NOT_VIDEO', 'the video stream has no frame size')
  if (width * height > bounds.maxPixels) {
    return refuse('ERR_UPLOAD_TOO_LARGE_FRAME', `the frame is ${width}x${height}, over ${bounds.maxPixels} pixels`)
  }
  const avgFps = ratio(video.avg_frame_rate)
  const rFps = ratio(video.r_frame_rate)
  const fps = avgFps || rFps
  if (fps > bounds.maxFrameRate) {
    return refuse('ERR_UPLOAD_TOO_HIGH_RATE', `the frame rate is ${Math.round(fps)}/s, over ${bounds.maxFrameRate}`)
  }
  const durationS = durationOf(doc, video)
  if (durationS > bounds.maxDurationS) {
    return refuse('ERR_UPLOAD_TOO_LONG', `the video lasts ${Math.round(durationS)} s, over ${bounds.maxDurationS} s`)
  }
  const audioStreams = (doc.streams ?? []).filter((s) => s.codec_type === 'audio').length
  const isRateMismatch = avgFps > 0 && rFps > 0 && Math.abs(avgFps - rFps) / rFps > RATE_MISMATCH
  const nbFrames = Number(video.nb_frames)
  const containerFrames = video.nb_frames !== undefined && Number.isInteger(nbFrames) && nbFrames > 0 ? nbFrames : null
  return { videoStreamIndex: video.index ?? 0, durationS, audioStreams, fps, isRateMismatch, containerFrames }
}

/** ffprobe's argv that demuxes one stream and prints how many packets (frames) it has. */
function countPacketsArgs(path: string, streamIndex: number): string[] {
  return [
    ...['-v', 'error', '-select_streams', String(streamIndex), '-count_packets'],
    ...['-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', '-i', path],
  ]
}

export type ProbeLog = (detail: { tool: string; exitCode: number | null; isTimedOut: boolean; stderr: string }) => void

/**
 * Probes the file at `path` (a local path, or a URL with opts.isRemote): metadata first (bounds
 * are checked before anything decodes), then the first second is decoded and must yield a frame.
 */
export async function probeUpload(path: string, opts: ProbeUploadOptions, log: ProbeLog): Promise<UploadVerdict> {
  const meta = await runTool('ffprobe', ffprobeArgs(path), opts.probeTimeoutMs)
  if (meta.isTimedOut) {
    // A file that keeps a reader busy this long would not transcode either.
    log({ tool: 'ffprobe', exitCode: meta.exitCode, isTimedOut: true, stderr: meta.stderr })
    return refuse('ERR_UPLOAD_NOT_VIDEO', 'the file could not be read in time')
  }
  if (meta.exitCode === null) {
    // The tool could not run (missing binary, killed): not a verdict on the file.
    log({ tool: 'ffprobe', exitCode: null, isTimedOut: false, stderr: meta.stderr })
    throw new VcdnError('ERR_UPLOAD_PROBE', 'ffprobe did not run')
  }
  if (meta.exitCode !== 0) {
    log({ tool: 'ffprobe', exitCode: meta.exitCode, isTimedOut: false, stderr: meta.stderr })
    return refuse('ERR_UPLOAD_NOT_VIDEO', 'the file is not in a container or codec that can be read')
  }
  let json: unknown
  try {
    json = JSON.parse(meta.stdout)
  } catch {
    return refuse('ERR_UPLOAD_NOT_VIDEO', 'the file is not in a container or codec that can be read')
  }
  const checked = verdictFromProbe(json, opts)
  if ('isVideo' in checked) return checked
  const decode = await runTool('ffmpeg', firstSecondDecodeArgs(path, checked.videoStreamIndex), opts.probeTimeoutMs)
  if (decode.exitCode === null && !decode.isTimedOut) {
    log({ tool: 'ffmpeg', exitCode: null, isTimedOut: false, stderr: decode.stderr })
    throw new VcdnError('ERR_UPLOAD_PROBE', 'ffmpeg did not run')
  }
  let frames = 0
  for (const line of decode.stdout.split('\n')) frames = framesFromProgress(line, frames)
  if (decode.isTimedOut || decode.exitCode !== 0 || frames === 0) {
    log({ tool: 'ffmpeg', exitCode: decode.exitCode, isTimedOut: decode.isTimedOut, stderr: decode.stderr })
    return refuse('ERR_UPLOAD_NOT_VIDEO', 'no frame decodes in the first second')
  }
  return {
    isVideo: true,
    durationS: checked.durationS,
    audioStreams: checked.audioStreams,
    isVariableFrameRate: await isVariableFrameRate(path, checked, opts, log),
  }
}

/**
 * Variable frame rate: the rates disagree, or (for a video that would be split) the demuxed frame
 * count is not its length times its rate. Matroska stores no rate, so a 30 fps file with dropped
 * frames shows 30/1 for both and only the count tells. A count that cannot be made counts as
 * variable: the video is then transcoded whole, which is always right. A remote source is not
 * demuxed: the container's own count stands in (opts.isRemote).
 */
async function isVariableFrameRate(
  path: string,
  video: ProbedVideo,
  opts: ProbeUploadOptions,
  log: ProbeLog,
): Promise<boolean> {
  if (video.isRateMismatch) return true
  if (opts.countFramesAboveS === undefined || video.durationS <= opts.countFramesAboveS) return false
  if (opts.isRemote === true) {
    return video.containerFrames === null || !isFrameCountConstant(video.containerFrames, video.durationS, video.fps)
  }
  const count = await runTool('ffprobe', countPacketsArgs(path, video.videoStreamIndex), opts.probeTimeoutMs)
  const frames = Number(count.stdout.trim().split('\n')[0])
  if (count.exitCode !== 0 || count.isTimedOut || !Number.isInteger(frames)) {
    log({ tool: 'ffprobe', exitCode: count.exitCode, isTimedOut: count.isTimedOut, stderr: count.stderr })
    return true
  }
  return !isFrameCountConstant(frames, video.durationS, video.fps)
}
