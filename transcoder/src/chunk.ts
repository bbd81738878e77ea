// The parts of a split video (docs/architecture.md §8), each a job any transcoder may take:
// - a chunk: [startS, startS + lengthS) of the source, every rung of the source's ladder, video
//   only, into one mp4. The ladder is built from this worker's probe of the same source bytes, by
//   the same code (./ladder.ts), so every chunk and the stitch get the same ladder; the stitch
//   checks the streams it receives against its own.
// - the audio: every audio track of the whole source, encoded with the settings of a whole
//   transcode, into one mp4 (audio stream i = track i of ./audio-tracks.ts's plan, which the stitch
//   makes from its own probe by the same code). It runs beside the chunks, so the stitch only copies
//   it: the AAC encode is no longer on the critical path after the last chunk.
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ChunkJobPayload } from '../../shared/bus/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import { planAudioRenditions } from './audio-tracks.js'
import type { X264Preset } from './ffmpeg-args.js'
import { buildLadder } from './ladder.js'
import { childCpuSeconds } from './pipeline.js'
import { probe, type SourceInfo } from './probe.js'
import { createProgressParser, runFfmpeg } from './run-ffmpeg.js'
import { buildAudioArgs, buildChunkArgs } from './stitch-args.js'

interface PartOptions {
  readonly sourcePath: string
  /** Owned by the caller; the part works in a new subdirectory of it. */
  readonly workDir: string
  /** ffmpeg threads of the encode (FfmpegJob.threads; 0 or undefined: ffmpeg's choice). */
  readonly threads?: number | undefined
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
  readonly onProgress?: ((fraction: number) => void) | undefined
}

export interface ChunkOptions extends PartOptions {
  readonly chunk: ChunkJobPayload
  readonly preset?: X264Preset | undefined
}

export type AudioOptions = PartOptions

interface PartResult {
  /** The part's mp4. */
  readonly path: string
  /** The job's own directory inside workDir (the caller removes it after uploading). */
  readonly jobDir: string
  /** The encode alone, as TranscodeResult.encode (CPU from this process's waited-for children). */
  readonly encode: { readonly cpuS: number; readonly wallS: number }
}

export interface ChunkResult extends PartResult {
  /** Rung i is video stream i of `path`. */
  readonly rungs: readonly string[]
}

export interface AudioResult extends PartResult {
  /** The audio renditions, audio stream i of `path` is tracks[i]. */
  readonly tracks: readonly string[]
}

const PROBE_TIMEOUT_MS = 60_000

/**
 * Probes the source in a new directory of workDir (removed again on a failure), lets `plan` build
 * the encode's argv for `<dir>/<file>` and runs it, timed.
 */
async function encodePart<T>(
  opts: PartOptions,
  dirPrefix: string,
  file: string,
  plan: (source: SourceInfo, path: string) => { args: string[]; lengthS: number; extra: T },
): Promise<PartResult & { extra: T }> {
  const { signal } = opts
  const jobDir = await mkdtemp(join(opts.workDir, dirPrefix))
  try {
    const source = await probe(opts.sourcePath, { signal, timeoutMs: PROBE_TIMEOUT_MS })
    const path = join(jobDir, file)
    const { args, lengthS, extra } = plan(source, path)
    const encodeStart = { cpuS: childCpuSeconds(), wallMs: Date.now() }
    await runFfmpeg({
      bin: 'ffmpeg',
      args,
      signal,
      timeoutMs: opts.timeoutMs,
      onStdoutLine: createProgressParser(lengthS, (f) => opts.onProgress?.(f)),
    })
    const encode = { cpuS: childCpuSeconds() - encodeStart.cpuS, wallS: (Date.now() - encodeStart.wallMs) / 1000 }
    return { path, jobDir, encode, extra }
  } catch (err) {
    await rm(jobDir, { recursive: true, force: true })
    throw err
  }
}

export async function encodeChunk(opts: ChunkOptions): Promise<ChunkResult> {
  const { chunk } = opts
  const { extra: rungs, ...part } = await encodePart(opts, 'chunk-', 'video.mp4', (source, path) => {
    if (chunk.startS >= source.durationS) {
      throw new VcdnError(
        'ERR_TRANSCODE_INVALID_OUTPUT',
        `chunk ${chunk.index} starts at ${chunk.startS} s, after the source's end (${source.durationS} s)`,
      )
    }
    const ladder = buildLadder(source)
    const isLast = chunk.index === chunk.count - 1
    const args = buildChunkArgs({
      sourcePath: opts.sourcePath,
      outPath: path,
      renditions: ladder,
      fps: source.fps,
      videoStreamIndex: source.videoStreamIndex,
      videoStartS: source.videoStartS,
      startS: chunk.startS,
      lengthS: isLast ? undefined : chunk.lengthS,
      preset: opts.preset,
      threads: opts.threads,
      toneMap: source.dynamicRange === 'SDR' ? undefined : { range: source.dynamicRange, colour: source.colour },
    })
    return { args, lengthS: isLast ? source.durationS - chunk.startS : chunk.lengthS, extra: ladder.map((r) => r.name) }
  })
  return { ...part, rungs }
}

/** The audio job: ERR_TRANSCODE_INVALID_OUTPUT when the source has no audio track (none was planned). */
export async function encodeAudio(opts: AudioOptions): Promise<AudioResult> {
  const { extra: tracks, ...part } = await encodePart(opts, 'audio-', 'audio.mp4', (source, path) => {
    const plan = planAudioRenditions(source.audioTracks)
    if (plan.length === 0) throw new VcdnError('ERR_TRANSCODE_INVALID_OUTPUT', 'audio job: the source has no audio')
    const args = buildAudioArgs({
      sourcePath: opts.sourcePath,
      outPath: path,
      audioTracks: plan,
      threads: opts.threads,
    })
    return { args, lengthS: source.durationS, extra: plan.map((a) => a.name) }
  })
  return { ...part, tracks }
}
