// Captions (docs/architecture.md §8): caption files attached to the video (WebVTT or SRT) and the
// text subtitle streams of the source become a SUBTITLES group of segmented WebVTT. Each track is
// `subs/<name>/index.m3u8` over `seg_NNNNN.vtt` files on the video's own segment grid (same count,
// same EXTINF), each carrying X-TIMESTAMP-MAP so cue times line up with the CMAF media (RFC 8216
// §3.5), plus one whole-file `captions.vtt` that the DASH text AdaptationSet names.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { VcdnError } from '../../shared/errors/index.js'
import {
  CaptionParseError,
  formatWebVtt,
  parseCaptions,
  type Cue,
  type FfprobeStream,
} from '../../shared/media/index.js'
import { bcp47, languageName } from './audio-tracks.js'
import { runFfmpeg } from './run-ffmpeg.js'

export const SUBTITLES_DIR = 'subs'
export const SUBTITLES_FILE = 'captions.vtt'
/** Text codecs ffmpeg converts to WebVTT; bitmap subtitles (PGS, DVB, VobSub) are not text. */
const TEXT_CODECS: ReadonlySet<string> = new Set(['mov_text', 'subrip', 'srt', 'webvtt', 'ass', 'ssa', 'text'])

/** A caption file attached to the video (uploaded beside the source). */
export interface CaptionFile {
  readonly path: string
  /** BCP-47 or an ISO 639 code; undefined when unknown. */
  readonly language?: string | undefined
  readonly label?: string | undefined
}

/** A text subtitle stream of the source. */
export interface SubtitleStream {
  readonly streamIndex: number
  readonly codec: string
  readonly language: string | undefined
  readonly title: string | undefined
}

export interface SubtitleTrack {
  /** Folder under subs/: the language, `<lang>_2` for a second one, `text_<n>` without one. */
  readonly name: string
  readonly language: string | undefined
  readonly label: string
  readonly cues: readonly Cue[]
  /**
   * Media time of cue time 0: the first frame's time for an attached file (its cues count from
   * what the viewer sees first), 0 for a source stream (ffmpeg extracts it on the media timeline).
   */
  readonly offsetS: number
}

/** Published subtitle rendition: what master.ts and dash.ts describe. */
export interface SubtitleRendition {
  readonly name: string
  readonly language: string | undefined
  readonly label: string
  /** `subs/<name>/index.m3u8` */
  readonly playlistUri: string
  /** `subs/<name>/captions.vtt` */
  readonly fileUri: string
}

/** The text subtitle streams of a probe. */
export function subtitleStreamsFromProbe(streams: readonly FfprobeStream[]): SubtitleStream[] {
  return streams
    .filter((s) => s.codec_type === 'subtitle' && TEXT_CODECS.has(s.codec_name ?? ''))
    .map((s) => ({
      streamIndex: s.index ?? 0,
      codec: s.codec_name ?? '',
      language: bcp47(s.tags?.['language'] ?? s.tags?.['LANGUAGE']),
      title: s.tags?.['title'] ?? s.tags?.['TITLE'],
    }))
}

const safeLabel = (text: string | undefined): string | undefined => {
  const clean = (text ?? '')
    .replace(/[\u0000-\u001f\u007f"<>&]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  return clean === '' ? undefined : [...clean].slice(0, 64).join('')
}

/** Names and labels for the tracks, in order: attached files first, then the source's streams. */
export function planSubtitleTracks(
  tracks: readonly {
    readonly language: string | undefined
    readonly label?: string | undefined
    readonly cues: readonly Cue[]
    readonly offsetS: number
  }[],
): SubtitleTrack[] {
  const used = new Set<string>()
  return tracks.map((t, i) => {
    const language = bcp47(t.language)
    const base = language ?? `text_${i + 1}`
    let name = base
    for (let n = 2; used.has(name); n++) name = `${base}_${n}`
    used.add(name)
    return {
      name,
      language,
      label: safeLabel(t.label) ?? languageName(language) ?? `Subtitles ${i + 1}`,
      cues: t.cues,
      offsetS: t.offsetS,
    }
  })
}

/** An attached caption file's cues; a file the origin accepted parses, anything else is corrupt input. */
export async function readCaptionFile(file: CaptionFile): Promise<{ cues: Cue[]; title: string | undefined }> {
  try {
    const text = await readFile(file.path, 'utf8')
    // The origin stores the caption's name as the WEBVTT line's header text (W3C WebVTT §4.1).
    const title = /^\uFEFF?WEBVTT[ \t]+([^\r\n]+)/.exec(text)?.[1]?.trim()
    return { cues: parseCaptions(text), title: title === '' ? undefined : title }
  } catch (err) {
    if (err instanceof CaptionParseError) {
      throw new VcdnError('ERR_TRANSCODE_CORRUPT', `caption file (${file.language ?? 'und'}): ${err.message}`, {
        cause: err,
      })
    }
    throw err
  }
}

/**
 * The cues of one text subtitle stream, converted by ffmpeg to WebVTT. A stream ffmpeg cannot
 * convert or that has no cues gives null: the video is still playable without it.
 */
export async function extractSubtitleStream(opts: {
  readonly sourcePath: string
  readonly stream: SubtitleStream
  readonly workDir: string
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
}): Promise<Cue[] | null> {
  const out = join(opts.workDir, `subtitle_${opts.stream.streamIndex}.vtt`)
  try {
    await runFfmpeg({
      bin: 'ffmpeg',
      args: [
        ...['-hide_banner', '-nostdin', '-nostats', '-v', 'error', '-y', '-i', opts.sourcePath],
        ...['-map', `0:${opts.stream.streamIndex}`, '-c:s', 'webvtt', '-f', 'webvtt', out],
      ],
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    })
    return parseCaptions(await readFile(out, 'utf8'))
  } catch (err) {
    if (opts.signal?.aborted) throw err
    return null
  }
}

/** One segment of the video's grid, in seconds on the media timeline. */
export interface GridSegment {
  readonly startS: number
  readonly endS: number
  readonly extinfS: number
}

const SEG = (i: number): string => `seg_${String(i + 1).padStart(5, '0')}.vtt`

/** The media playlist of a subtitle track: the video's EXTINFs, WebVTT segments, no EXT-X-MAP. */
export function subtitlePlaylist(grid: readonly GridSegment[]): string {
  // RFC 8216 §4.3.3.1: each EXTINF rounded must be ≤ the target duration.
  const target = Math.max(1, ...grid.map((g) => Math.round(g.extinfS)))
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    '#EXT-X-MEDIA-SEQUENCE:1',
    '#EXT-X-PLAYLIST-TYPE:VOD',
  ]
  grid.forEach((g, i) => lines.push(`#EXTINF:${g.extinfS.toFixed(6)},`, SEG(i)))
  lines.push('#EXT-X-ENDLIST')
  return `${lines.join('\n')}\n`
}

/**
 * Writes every track under `<outDir>/subs/<name>/` and returns the renditions with the files
 * written (relative to outDir) in publishing order: segments and whole files first, playlists
 * after. `mediaStartS` is where the CMAF media timeline starts (the first video segment).
 */
export async function writeSubtitleTracks(opts: {
  readonly outDir: string
  readonly tracks: readonly SubtitleTrack[]
  readonly grid: readonly GridSegment[]
}): Promise<{ renditions: SubtitleRendition[]; media: string[]; playlists: string[] }> {
  const renditions: SubtitleRendition[] = []
  const media: string[] = []
  const playlists: string[] = []
  for (const track of opts.tracks) {
    // RFC 8216 §3.5: LOCAL cue time 0 is media time offsetS, in 90 kHz units.
    const timestampMap = `X-TIMESTAMP-MAP=MPEGTS:${Math.round(track.offsetS * 90_000)},LOCAL:00:00:00.000`
    const offsetMs = track.offsetS * 1000
    const rel = `${SUBTITLES_DIR}/${track.name}`
    await mkdir(join(opts.outDir, rel), { recursive: true })
    for (const [i, g] of opts.grid.entries()) {
      // A cue that spans a boundary is in both segments (players de-duplicate identical cues).
      const cues = track.cues.filter(
        (c) => c.startMs + offsetMs < g.endS * 1000 && c.endMs + offsetMs > g.startS * 1000,
      )
      await writeFile(join(opts.outDir, rel, SEG(i)), formatWebVtt(cues, [timestampMap]))
      media.push(`${rel}/${SEG(i)}`)
    }
    await writeFile(join(opts.outDir, rel, SUBTITLES_FILE), formatWebVtt(track.cues))
    media.push(`${rel}/${SUBTITLES_FILE}`)
    await writeFile(join(opts.outDir, rel, 'index.m3u8'), subtitlePlaylist(opts.grid))
    playlists.push(`${rel}/index.m3u8`)
    renditions.push({
      name: track.name,
      language: track.language,
      label: track.label,
      playlistUri: `${rel}/index.m3u8`,
      fileUri: `${rel}/${SUBTITLES_FILE}`,
    })
  }
  return { renditions, media, playlists }
}

/**
 * Every subtitle track of a job, written on the grid of `reference` (the lowest video rung as
 * measured): attached caption files first, then the source's text subtitle streams.
 */
export async function makeSubtitles(opts: {
  readonly sourcePath: string
  readonly captions: readonly CaptionFile[]
  readonly streams: readonly SubtitleStream[]
  readonly outDir: string
  readonly reference: {
    readonly timescale: number
    readonly segments: readonly { readonly startTs: number; readonly durationTs: number; readonly extinfS: number }[]
  }
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
}): Promise<{ renditions: SubtitleRendition[]; media: string[]; playlists: string[] }> {
  const { timescale, segments } = opts.reference
  const grid = segments.map((s) => ({
    startS: s.startTs / timescale,
    endS: (s.startTs + s.durationTs) / timescale,
    extinfS: s.extinfS,
  }))
  const firstFrameS = grid[0]?.startS ?? 0
  const inputs: { language: string | undefined; label?: string | undefined; cues: readonly Cue[]; offsetS: number }[] =
    []
  for (const file of opts.captions) {
    const { cues, title } = await readCaptionFile(file)
    inputs.push({ language: file.language, label: file.label ?? title, cues, offsetS: firstFrameS })
  }
  for (const stream of opts.streams) {
    const cues = await extractSubtitleStream({
      sourcePath: opts.sourcePath,
      stream,
      workDir: opts.outDir,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    })
    if (cues !== null) inputs.push({ language: stream.language, label: stream.title, cues, offsetS: 0 })
  }
  if (inputs.length === 0 || grid.length === 0) return { renditions: [], media: [], playlists: [] }
  return writeSubtitleTracks({
    outDir: opts.outDir,
    tracks: planSubtitleTracks(inputs),
    grid,
  })
}
