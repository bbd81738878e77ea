// One transcode job as a library call: probe → one ffmpeg for the whole ladder → measure →
// playlists, DASH, thumbnails → validate. It returns the files to publish in a safe order; it
// never touches the store. The caller owns `workDir`; everything this writes lives in a fresh
// subdirectory that is removed again if the job fails.
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { VcdnError } from '../../shared/errors/index.js'
import { formatMediaPlaylist, parseMedia } from '../../shared/hls/index.js'
import {
  contentTypeFor,
  THUMBS_DIR,
  validateStoreKey,
  validateStorePrefix,
  videoStorePrefix,
} from '../../shared/namespace/index.js'
import { buildMpd } from './dash.js'
import { planAudioRenditions } from './audio-tracks.js'
import { makeSubtitles, type CaptionFile, type SubtitleRendition } from './captions.js'
import { buildFfmpegArgs, X264_PRESETS, type X264Preset } from './ffmpeg-args.js'
import { buildLadder, type Rendition } from './ladder.js'
import { buildMaster, type AudioRenditionSummary, type LabelledAudio, type VideoRenditionSummary } from './master.js'
import { measureRendition, type MeasuredRendition } from './measure.js'
import { probe } from './probe.js'
import { createProgressParser, runFfmpeg } from './run-ffmpeg.js'
import { makeThumbnails, POSTER_FILE, VTT_FILE } from './thumbs.js'
import { buildStitchArgs } from './stitch-args.js'
import { toneMapFilter } from './tone-map.js'
import { validateOutput } from './validate.js'

export { isRetryableTranscodeError } from './errors.js'
export type { X264Preset } from './ffmpeg-args.js'

export type TranscodePhase = 'probe' | 'transcode' | 'measure' | 'thumbnails' | 'validate' | 'done'

export interface TranscodeOptions {
  readonly sourcePath: string
  /** Owned by the caller; the job works in a new subdirectory of it. */
  readonly workDir: string
  readonly videoId: string
  readonly signal?: AbortSignal | undefined
  /** Overall fraction 0..1 (monotonic, ends with exactly 1 in phase 'done'). */
  readonly onProgress?: ((fraction: number, phase: TranscodePhase) => void) | undefined
  /** x264 preset; default veryfast. */
  readonly preset?: X264Preset | undefined
  /** ffmpeg threads of the ladder run (FfmpegJob.threads; 0 or undefined: ffmpeg's choice). */
  readonly threads?: number | undefined
  /** Caption files attached to the video (WebVTT or SRT), published as WebVTT subtitles. */
  readonly captions?: readonly CaptionFile[] | undefined
  /** Whole-job limit; default 10 min + 20× the source duration. */
  readonly timeoutMs?: number | undefined
  /**
   * The video is already encoded (split-and-stitch, docs/architecture.md §8): `videoPath` holds
   * every rung of the source's ladder as a video stream, lowest first; `audioPath`, when given, every
   * audio track of the plan already encoded (the audio job, ./audio-part.ts). The packaging run
   * copies them, encoding the source's audio only without `audioPath` (./stitch-args.ts); the rest
   * of the job is the same.
   */
  readonly encoded?: { readonly videoPath: string; readonly audioPath?: string | undefined } | undefined
}

/** A rung as the master playlist describes it (without the video-only rate DASH needs). */
export type TranscodeRendition = Omit<VideoRenditionSummary, 'videoBandwidth'>

export interface TranscodeOutput {
  /** Store key, e.g. 'v/{id}/720p/seg_00001.m4s'. */
  readonly key: string
  readonly path: string
  readonly contentType: string
}

export interface TranscodeResult {
  readonly durationS: number
  /** Sorted by bandwidth ascending (the master playlist order). */
  readonly renditions: readonly TranscodeRendition[]
  /** The default audio rendition. */
  readonly audio: AudioRenditionSummary | null
  /** Every audio rendition, the default first. */
  readonly audioTracks: readonly AudioRenditionSummary[]
  /** WebVTT subtitle renditions (attached captions, then the source's text streams). */
  readonly subtitles: readonly SubtitleRendition[]
  /** Store keys. */
  readonly thumbnails: { readonly poster: string; readonly sprites: readonly string[]; readonly vtt: string }
  /**
   * In publishing order: init and media segments, then media playlists, thumbnails, manifest.mpd
   * and master.m3u8 last — a player that can fetch the master can fetch everything it names
   * (docs/architecture.md §7.3: the master is written last, then the video is marked ready).
   */
  readonly outputs: readonly TranscodeOutput[]
  /** The job's own directory inside workDir (the caller removes it after publishing). */
  readonly jobDir: string
  /**
   * The ladder ffmpeg run alone: wall seconds and CPU seconds (from this process's waited-for
   * children, so exact with one job at a time and approximate with several). Everything else the
   * job costs is vcdn's overhead over plain ffmpeg; the transcode benchmark reports it.
   */
  readonly encode: { readonly cpuS: number; readonly wallS: number }
}

const CLOCK_TICKS_PER_S = 100

/** CPU seconds (user + system) of the children this process has waited for (Linux /proc). */
export function childCpuSeconds(): number {
  try {
    // Fields after "(comm) ": state is [0]; cutime and cstime are [13] and [14] (proc(5)).
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_S
  } catch {
    return NaN
  }
}

const PROGRESS = { probe: 0.02, transcode: 0.85, measure: 0.9, thumbnails: 0.95, validate: 0.99 } as const
const PROBE_TIMEOUT_MS = 60_000

function validateOptions(o: TranscodeOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object')
  if (typeof o.sourcePath !== 'string' || o.sourcePath === '')
    throw new TypeError('options.sourcePath must be a non-empty string')
  if (typeof o.workDir !== 'string' || o.workDir === '')
    throw new TypeError('options.workDir must be a non-empty string')
  try {
    validateStorePrefix(videoStorePrefix(o.videoId))
    if (typeof o.videoId !== 'string' || o.videoId.includes('/')) throw new Error('not one segment')
  } catch {
    throw new TypeError('options.videoId must be one store-key segment ([A-Za-z0-9._-]+)')
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new TypeError('options.signal must be an AbortSignal')
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function')
    throw new TypeError('options.onProgress must be a function')
  if (o.preset !== undefined && !X264_PRESETS.includes(o.preset))
    throw new TypeError(`options.preset must be one of ${X264_PRESETS.join(', ')}`)
  if (o.timeoutMs !== undefined && !(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0))
    throw new TypeError('options.timeoutMs must be a positive number')
}

export async function transcode(opts: TranscodeOptions): Promise<TranscodeResult> {
  validateOptions(opts)
  const { signal } = opts
  let reported = 0
  const report = (fraction: number, phase: TranscodePhase): void => {
    if (fraction < reported || (fraction === reported && phase !== 'done')) return
    reported = fraction
    opts.onProgress?.(fraction, phase)
  }
  const startedMs = Date.now()
  let deadlineMs = opts.timeoutMs !== undefined ? startedMs + opts.timeoutMs : Infinity
  const remainingMs = (): number => {
    if (deadlineMs === Infinity) return 0
    const left = deadlineMs - Date.now()
    if (left <= 0) throw new VcdnError('ERR_TRANSCODE_TIMEOUT', `job ran longer than ${deadlineMs - startedMs} ms`)
    return left
  }
  const checkAborted = (): void => {
    if (signal?.aborted) throw new VcdnError('ERR_TRANSCODE_ABORTED', 'transcode', { cause: signal.reason })
  }

  checkAborted()
  const jobDir = await mkdtemp(join(opts.workDir, 'transcode-'))
  const outDir = join(jobDir, 'out')
  try {
    report(0, 'probe')
    const source = await probe(opts.sourcePath, {
      signal,
      timeoutMs: Math.min(remainingMs() || PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS),
    })
    if (deadlineMs === Infinity) deadlineMs = startedMs + 600_000 + source.durationS * 20_000
    report(PROGRESS.probe, 'probe')

    const ladder = buildLadder(source)
    const audioPlan = planAudioRenditions(source.audioTracks)
    const toneMap = source.dynamicRange === 'SDR' ? undefined : { range: source.dynamicRange, colour: source.colour }
    const transcodeSpan = PROGRESS.transcode - PROGRESS.probe
    const encodeStart = { cpuS: childCpuSeconds(), wallMs: Date.now() }
    await runFfmpeg({
      bin: 'ffmpeg',
      args:
        opts.encoded !== undefined
          ? buildStitchArgs({
              videoPath: opts.encoded.videoPath,
              audioPath: opts.encoded.audioPath,
              sourcePath: opts.sourcePath,
              outDir,
              renditions: ladder,
              audioTracks: audioPlan,
            })
          : buildFfmpegArgs({
              sourcePath: opts.sourcePath,
              outDir,
              renditions: ladder,
              fps: source.fps,
              videoStreamIndex: source.videoStreamIndex,
              audioTracks: audioPlan,
              preset: opts.preset,
              threads: opts.threads,
              toneMap,
            }),
      signal,
      timeoutMs: remainingMs(),
      onStdoutLine: createProgressParser(source.durationS, (f) =>
        report(PROGRESS.probe + f * transcodeSpan, 'transcode'),
      ),
    })
    const encode = { cpuS: childCpuSeconds() - encodeStart.cpuS, wallS: (Date.now() - encodeStart.wallMs) / 1000 }
    report(PROGRESS.transcode, 'transcode')

    const names = [...ladder.map((r) => r.name), ...audioPlan.map((a) => a.name)]
    const measured = new Map<string, MeasuredRendition>()
    for (const name of names) {
      checkAborted()
      const text = await normaliseRendition(join(outDir, name), name)
      measured.set(
        name,
        await measureRendition({
          name,
          dir: join(outDir, name),
          initUri: 'init.mp4',
          playlistText: text,
          signal,
          timeoutMs: remainingMs(),
        }),
      )
    }
    const subtitles = await makeSubtitles({
      sourcePath: opts.sourcePath,
      captions: opts.captions ?? [],
      streams: source.subtitleStreams,
      outDir,
      reference: measured.get(ladder[0]?.name ?? '') as MeasuredRendition,
      signal,
      timeoutMs: remainingMs(),
    })
    report(PROGRESS.measure, 'measure')
    const video = ladder.map((r) => measured.get(r.name) as MeasuredRendition)
    const audio = audioPlan.map((a): LabelledAudio => ({ ...a, measured: measured.get(a.name) as MeasuredRendition }))
    const reference = video[0] as MeasuredRendition
    const durationS = reference.segments.reduce((sum, s) => sum + s.durationTs, 0) / reference.timescale

    const lowest = ladder[0] as Rendition
    const posterRung = [...ladder].reverse().find((r) => Math.min(r.width, r.height) <= 720) ?? lowest
    const thumbs = await makeThumbnails({
      sourcePath: opts.sourcePath,
      videoStreamIndex: source.videoStreamIndex,
      durationS,
      posterWidth: posterRung.width,
      posterHeight: posterRung.height,
      posterSourceFilter: toneMap && toneMapFilter(toneMap.range, toneMap.colour),
      spriteSource: {
        initPath: join(outDir, lowest.name, reference.initUri),
        segmentPaths: reference.segments.map((s) => join(outDir, lowest.name, s.uri)),
        width: lowest.width,
        height: lowest.height,
      },
      outDir: join(outDir, 'thumbs'),
      signal,
      timeoutMs: remainingMs(),
    })
    report(PROGRESS.thumbnails, 'thumbnails')

    checkAborted()
    const master = buildMaster({ video, audio, frameRate: source.fps, subtitles: subtitles.renditions })
    await writeFile(join(outDir, 'master.m3u8'), master.text)
    const mpd = buildMpd({
      durationS,
      frameRate: source.fps,
      video: master.renditions.map((r) => ({
        measured: measured.get(r.name) as MeasuredRendition,
        bandwidth: r.videoBandwidth,
      })),
      audio: master.audioTracks.map((a) => ({
        measured: measured.get(a.name) as MeasuredRendition,
        bandwidth: a.bandwidth,
        language: a.language,
        label: a.label,
        isDefault: a.isDefault,
      })),
      subtitles: subtitles.renditions,
    })
    await writeFile(join(outDir, 'manifest.mpd'), mpd)

    const thumbFiles = [...thumbs.sprites, thumbs.poster, thumbs.vtt].map((f) => `${THUMBS_DIR}/${f}`)
    await validateOutput({
      outDir,
      video,
      audio: audio.map((a) => a.measured),
      requiredFiles: [...thumbFiles, 'manifest.mpd'],
    })
    report(PROGRESS.validate, 'validate')

    const prefix = videoStorePrefix(opts.videoId)
    const rel: string[] = []
    for (const name of names) {
      const m = measured.get(name) as MeasuredRendition
      rel.push(`${name}/${m.initUri}`, ...m.segments.map((s) => `${name}/${s.uri}`))
    }
    rel.push(...subtitles.media, ...names.map((n) => `${n}/index.m3u8`), ...subtitles.playlists)
    rel.push(...thumbFiles, 'manifest.mpd', 'master.m3u8')
    const outputs = rel.map((r) => {
      const key = prefix + r
      validateStoreKey(key)
      return { key, path: join(outDir, r), contentType: contentTypeFor(key) }
    })
    report(1, 'done')
    return {
      durationS,
      renditions: master.renditions.map(({ videoBandwidth: _, ...r }) => r),
      audio: master.audio,
      audioTracks: master.audioTracks,
      subtitles: subtitles.renditions,
      thumbnails: {
        poster: `${prefix}${THUMBS_DIR}/${POSTER_FILE}`,
        sprites: thumbs.sprites.map((s) => `${prefix}${THUMBS_DIR}/${s}`),
        vtt: `${prefix}${THUMBS_DIR}/${VTT_FILE}`,
      },
      outputs,
      jobDir,
      encode,
    }
  } catch (err) {
    await rm(jobDir, { recursive: true, force: true })
    throw err
  }
}

/**
 * ffmpeg names a variant's init segment init_<index>.mp4 when there are several variants;
 * docs/architecture.md §2 wants init.mp4. Rename it and rewrite the media playlist with exactly the
 * tags we publish.
 */
async function normaliseRendition(dir: string, name: string): Promise<string> {
  const files = await readdir(dir).catch(() => [] as string[])
  const init = files.find((f) => /^init(_\d+)?\.mp4$/.test(f))
  if (!init) throw new VcdnError('ERR_TRANSCODE_INVALID_OUTPUT', `${name}: ffmpeg wrote no init segment`)
  if (init !== 'init.mp4') await rename(join(dir, init), join(dir, 'init.mp4'))
  const playlistPath = join(dir, 'index.m3u8')
  let segments
  try {
    segments = parseMedia(await readFile(playlistPath, 'utf8')).segments
  } catch (err) {
    throw new VcdnError('ERR_TRANSCODE_INVALID_OUTPUT', `${name}/index.m3u8 from ffmpeg: ${(err as Error).message}`, {
      cause: err,
    })
  }
  const text = formatMediaPlaylist({ mapUri: 'init.mp4', segments, mediaSequence: 1 })
  await writeFile(playlistPath, text)
  return text
}
