// One chunk of a split video (docs/architecture.md §8): [startS, startS + lengthS) of the source,
// every rung of the source's ladder, video only, into one mp4. The ladder is built from this
// worker's probe of the same source bytes, by the same code (./ladder.ts), so every chunk and the
// stitch get the same ladder; the stitch checks the streams it receives against its own.
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ChunkJobPayload } from '../../shared/bus/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import type { X264Preset } from './ffmpeg-args.js'
import { buildLadder } from './ladder.js'
import { childCpuSeconds } from './pipeline.js'
import { probe } from './probe.js'
import { createProgressParser, runFfmpeg } from './run-ffmpeg.js'
import { buildChunkArgs } from './stitch-args.js'

export interface ChunkOptions {
  readonly sourcePath: string
  /** Owned by the caller; the chunk works in a new subdirectory of it. */
  readonly workDir: string
  readonly chunk: ChunkJobPayload
  readonly preset?: X264Preset | undefined
  /** ffmpeg threads of the encode (FfmpegJob.threads; 0 or undefined: ffmpeg's choice). */
  readonly threads?: number | undefined
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
  readonly onProgress?: ((fraction: number) => void) | undefined
}

export interface ChunkResult {
  /** The chunk's mp4: rung i is video stream i. */
  readonly path: string
  /** The job's own directory inside workDir (the caller removes it after uploading). */
  readonly jobDir: string
  readonly rungs: readonly string[]
  /** The encode alone, as TranscodeResult.encode (CPU from this process's waited-for children). */
  readonly encode: { readonly cpuS: number; readonly wallS: number }
}

const PROBE_TIMEOUT_MS = 60_000

export async function encodeChunk(opts: ChunkOptions): Promise<ChunkResult> {
  const { chunk, signal } = opts
  const jobDir = await mkdtemp(join(opts.workDir, 'chunk-'))
  try {
    const source = await probe(opts.sourcePath, { signal, timeoutMs: PROBE_TIMEOUT_MS })
    if (chunk.startS >= source.durationS) {
      throw new VcdnError(
        'ERR_TRANSCODE_INVALID_OUTPUT',
        `chunk ${chunk.index} starts at ${chunk.startS} s, after the source's end (${source.durationS} s)`,
      )
    }
    const ladder = buildLadder(source)
    const isLast = chunk.index === chunk.count - 1
    const lengthS = isLast ? source.durationS - chunk.startS : chunk.lengthS
    const path = join(jobDir, 'video.mp4')
    const encodeStart = { cpuS: childCpuSeconds(), wallMs: Date.now() }
    await runFfmpeg({
      bin: 'ffmpeg',
      args: buildChunkArgs({
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
      }),
      signal,
      timeoutMs: opts.timeoutMs,
      onStdoutLine: createProgressParser(lengthS, (f) => opts.onProgress?.(f)),
    })
    const encode = { cpuS: childCpuSeconds() - encodeStart.cpuS, wallS: (Date.now() - encodeStart.wallMs) / 1000 }
    return { path, jobDir, rungs: ladder.map((r) => r.name), encode }
  } catch (err) {
    await rm(jobDir, { recursive: true, force: true })
    throw err
  }
}
