// The stitch of a split video (docs/architecture.md §8): the chunks are joined in order (concat
// demuxer, stream copy), their continuity is checked against the source, and the joined rungs go
// through the ordinary pipeline (./pipeline.ts with `encoded`): the audio copied from the audio
// job's mp4 (./audio-part.ts; encoded here from the source when the video has no audio job), CMAF
// packaged once with the muxer settings of a whole transcode, measured, validated (identical
// segment boundaries across rungs, a keyframe at every segment start), master last.
//
// Continuity, checked before packaging: one video stream per rung of the source's ladder at its
// size; per rung as many frames as the source has; every Δpts exactly one frame. After packaging:
// every media playlist's EXT-X-TARGETDURATION is the segment duration, as in a whole transcode.
// A failure is ERR_TRANSCODE_INVALID_OUTPUT.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { VcdnError } from '../../shared/errors/index.js'
import { parseMedia } from '../../shared/hls/index.js'
import type { CaptionFile } from './captions.js'
import { SEGMENT_S, type X264Preset } from './ffmpeg-args.js'
import { buildLadder, type Rendition } from './ladder.js'
import { transcode, type TranscodePhase, type TranscodeResult } from './pipeline.js'
import { probe, type SourceInfo } from './probe.js'
import { runFfmpeg } from './run-ffmpeg.js'
import { buildConcatArgs, concatList } from './stitch-args.js'

export interface StitchOptions {
  readonly sourcePath: string
  /** Chunk k's mp4 (from encodeChunk), in order. */
  readonly chunkPaths: readonly string[]
  /** The audio job's mp4 (from encodeAudio), copied; undefined: the source's audio is encoded here. */
  readonly audioPath?: string | undefined
  /** Owned by the caller (the worker's job directory). */
  readonly workDir: string
  readonly videoId: string
  /** The attached caption files, packaged as a whole transcode packages them. */
  readonly captions?: readonly CaptionFile[] | undefined
  readonly preset?: X264Preset | undefined
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
  readonly onProgress?: ((fraction: number, phase: TranscodePhase) => void) | undefined
}

const PROBE_TIMEOUT_MS = 60_000
const CONCAT_SHARE = 0.1

function invalid(detail: string): never {
  throw new VcdnError('ERR_TRANSCODE_INVALID_OUTPUT', `stitch: ${detail}`)
}

export async function stitch(opts: StitchOptions): Promise<TranscodeResult> {
  if (opts.chunkPaths.length === 0) throw new TypeError('options.chunkPaths must not be empty')
  const { signal } = opts
  const listPath = join(opts.workDir, 'chunks.txt')
  const videoPath = join(opts.workDir, 'video.mp4')
  await writeFile(listPath, concatList(opts.chunkPaths))
  await runFfmpeg({ bin: 'ffmpeg', args: buildConcatArgs(listPath, videoPath), signal, timeoutMs: opts.timeoutMs })
  const source = await probe(opts.sourcePath, { signal, timeoutMs: PROBE_TIMEOUT_MS })
  await checkContinuity(videoPath, opts.sourcePath, source, buildLadder(source), signal)
  opts.onProgress?.(CONCAT_SHARE, 'transcode')

  const result = await transcode({
    sourcePath: opts.sourcePath,
    workDir: opts.workDir,
    videoId: opts.videoId,
    encoded: { videoPath, audioPath: opts.audioPath },
    captions: opts.captions,
    signal,
    preset: opts.preset,
    timeoutMs: opts.timeoutMs,
    onProgress: (f, phase) => opts.onProgress?.(CONCAT_SHARE + (1 - CONCAT_SHARE) * f, phase),
  })
  for (const o of result.outputs) {
    if (!o.key.endsWith('/index.m3u8')) continue
    const target = parseMedia(await readFile(o.path, 'utf8')).targetDurationS
    if (target !== SEGMENT_S) invalid(`${o.key}: EXT-X-TARGETDURATION is ${target}, want ${SEGMENT_S}`)
  }
  return result
}

interface StreamPackets {
  width: number
  height: number
  timeBase: number
  pts: number[]
}

/** ffprobe's packets of every video stream of `path` (compact output, one line per entry). */
async function videoPackets(path: string, signal: AbortSignal | undefined): Promise<Map<number, StreamPackets>> {
  const streams = new Map<number, StreamPackets>()
  await runFfmpeg({
    bin: 'ffprobe',
    args: [
      ...['-v', 'error', '-select_streams', 'v', '-of', 'compact'],
      ...['-show_entries', 'stream=index,width,height,time_base:packet=stream_index,pts', path],
    ],
    signal,
    onStdoutLine: (line) => {
      const f = new Map(
        line
          .split('|')
          .slice(1)
          .map((kv) => kv.split('=') as [string, string]),
      )
      const isPacket = line.startsWith('packet|')
      if (!isPacket && !line.startsWith('stream|')) return
      // ffprobe prints the packets before the stream entries: an entry is created on first sight.
      const index = Number(f.get(isPacket ? 'stream_index' : 'index'))
      let s = streams.get(index)
      if (s === undefined) {
        s = { width: 0, height: 0, timeBase: 0, pts: [] }
        streams.set(index, s)
      }
      if (isPacket) s.pts.push(Number(f.get('pts')))
      else {
        const [num, den] = (f.get('time_base') ?? '').split('/').map(Number)
        s.width = Number(f.get('width'))
        s.height = Number(f.get('height'))
        s.timeBase = (num ?? 0) / (den ?? 1)
      }
    },
  })
  return streams
}

/** How many video packets (frames) the source's video stream has, by demuxing it. */
async function sourceFrames(path: string, source: SourceInfo, signal: AbortSignal | undefined): Promise<number> {
  let frames = NaN
  await runFfmpeg({
    bin: 'ffprobe',
    args: [
      ...['-v', 'error', '-select_streams', String(source.videoStreamIndex), '-count_packets'],
      ...['-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', path],
    ],
    signal,
    onStdoutLine: (line) => {
      if (line.trim() !== '') frames = Number(line.trim())
    },
  })
  return frames
}

async function checkContinuity(
  videoPath: string,
  sourcePath: string,
  source: SourceInfo,
  ladder: readonly Rendition[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const streams = await videoPackets(videoPath, signal)
  const rungs = [...streams.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s)
  if (rungs.length !== ladder.length) invalid(`${rungs.length} video streams, the ladder has ${ladder.length}`)
  const expectedFrames = await sourceFrames(sourcePath, source, signal)
  const frameS = 1 / source.fps
  rungs.forEach((s, i) => {
    const rung = ladder[i] as Rendition
    if (s.width !== rung.width || s.height !== rung.height)
      invalid(`stream ${i} is ${s.width}x${s.height}, rung ${rung.name} is ${rung.width}x${rung.height}`)
    if (s.pts.length !== expectedFrames)
      invalid(`${rung.name} has ${s.pts.length} frames, the source ${expectedFrames}`)
    const pts = [...s.pts].sort((a, b) => a - b)
    for (let k = 1; k < pts.length; k++) {
      const deltaS = ((pts[k] as number) - (pts[k - 1] as number)) * s.timeBase
      // One tick of the stream's time base absorbs the rounding of 1/fps to whole ticks.
      if (Math.abs(deltaS - frameS) > s.timeBase + 1e-9)
        invalid(`${rung.name}: frame ${k} is ${deltaS.toFixed(6)} s after the one before, want ${frameS.toFixed(6)} s`)
    }
  })
}
