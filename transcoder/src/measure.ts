// Measures what ffmpeg actually wrote, one ffprobe per rendition: the init segment followed by
// every media segment is streamed to ffprobe's stdin (a valid fragmented MP4), and each packet's
// byte position tells which segment it belongs to. From that: exact segment start times and
// durations in the track timescale (for DASH), whether each segment starts on a keyframe, and the
// bytes per segment (for BANDWIDTH). One process per rendition, however long the video.
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseMedia } from '../../shared/hls/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import { aacCodecString, avcCodecString } from './codec-string.js'
import { runFfmpeg } from './run-ffmpeg.js'

export interface MeasuredSegment {
  readonly uri: string
  readonly bytes: number
  /** EXTINF of ffmpeg's playlist, seconds. */
  readonly extinfS: number
  /** Earliest presentation time and duration in timescale units (from packets). */
  readonly startTs: number
  readonly durationTs: number
  readonly startsWithKeyframe: boolean
}

export interface MeasuredRendition {
  readonly name: string
  readonly kind: 'video' | 'audio'
  readonly dir: string
  readonly initUri: string
  readonly initBytes: number
  readonly timescale: number
  readonly codecs: string
  readonly width: number
  readonly height: number
  readonly sampleRate: number
  readonly channels: number
  readonly segments: readonly MeasuredSegment[]
}

export interface MeasureOptions {
  readonly name: string
  readonly dir: string
  readonly initUri: string
  /** Media playlist text listing the segments (ffmpeg's, or ours). */
  readonly playlistText: string
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
}

interface Packet {
  pts: number
  duration: number
  pos: number
  isKey: boolean
}

function fields(line: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const part of line.split('|').slice(1)) {
    const eq = part.indexOf('=')
    if (eq > 0) map.set(part.slice(0, eq), part.slice(eq + 1))
  }
  return map
}

const invalid = (detail: string): VcdnError => new VcdnError('ERR_TRANSCODE_INVALID_OUTPUT', detail)

export async function measureRendition(opts: MeasureOptions): Promise<MeasuredRendition> {
  let playlist
  try {
    playlist = parseMedia(opts.playlistText)
  } catch (err) {
    throw new VcdnError('ERR_TRANSCODE_INVALID_OUTPUT', `${opts.name}/index.m3u8: ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (playlist.segments.length === 0) throw invalid(`${opts.name} has no segments`)
  const initPath = join(opts.dir, opts.initUri)
  const init = await readFile(initPath)
  const paths = playlist.segments.map((s) => join(opts.dir, s.uri))
  const sizes = await Promise.all(paths.map(async (p) => (await stat(p)).size))

  const packets: Packet[] = []
  let stream = new Map<string, string>()
  await runFfmpeg({
    bin: 'ffprobe',
    args: [
      '-v',
      'error',
      '-of',
      'compact',
      '-show_entries',
      'packet=pts,duration,pos,flags:stream=codec_type,codec_name,profile,width,height,time_base,sample_rate,channels',
      '-i',
      'pipe:0',
    ],
    stdinFiles: [initPath, ...paths],
    signal: opts.signal,
    timeoutMs: opts.timeoutMs,
    onStdoutLine: (line) => {
      if (line.startsWith('packet|')) {
        const f = fields(line)
        packets.push({
          pts: Number(f.get('pts')),
          duration: Number(f.get('duration')),
          pos: Number(f.get('pos')),
          isKey: (f.get('flags') ?? '').startsWith('K'),
        })
      } else if (line.startsWith('stream|')) stream = fields(line)
    },
  })

  const kind = stream.get('codec_type')
  if (kind !== 'video' && kind !== 'audio') throw invalid(`${opts.name}: no audio or video track`)
  const [num, den] = (stream.get('time_base') ?? '').split('/').map(Number)
  if (num !== 1 || !den || !Number.isInteger(den))
    throw invalid(`${opts.name}: unexpected time base ${stream.get('time_base')}`)

  // Byte offset of each segment in the concatenated stream.
  const starts: number[] = []
  let offset = init.length
  for (const size of sizes) {
    starts.push(offset)
    offset += size
  }
  const perSegment: Packet[][] = sizes.map(() => [])
  let seg = 0
  let lastDuration = 0
  for (const p of packets) {
    if (!Number.isFinite(p.pts) || !Number.isFinite(p.pos))
      throw invalid(`${opts.name}: packet without pts or position`)
    // An AAC priming packet has no duration; its neighbours tell.
    if (Number.isFinite(p.duration) && p.duration > 0) lastDuration = p.duration
    while (seg + 1 < starts.length && p.pos >= (starts[seg + 1] as number)) seg++
    perSegment[seg]?.push(p)
  }
  const startTs = perSegment.map((ps, i) => {
    if (ps.length === 0) throw invalid(`${opts.name}/${playlist.segments[i]?.uri}: segment has no packets`)
    return Math.min(...ps.map((p) => p.pts))
  })
  const segments: MeasuredSegment[] = playlist.segments.map((s, i) => {
    const ps = perSegment[i] as Packet[]
    const start = startTs[i] as number
    const next = startTs[i + 1]
    const end =
      next !== undefined
        ? next
        : Math.max(
            ...ps.map((p) => p.pts + (Number.isFinite(p.duration) && p.duration > 0 ? p.duration : lastDuration)),
          )
    return {
      uri: s.uri,
      bytes: sizes[i] as number,
      extinfS: s.durationS,
      startTs: start,
      durationTs: end - start,
      startsWithKeyframe: ps[0]?.isKey === true,
    }
  })

  const codecs = kind === 'video' ? avcCodecString(init) : aacCodecString(stream.get('profile'))
  if (codecs === undefined) throw invalid(`${opts.name}: init segment has no avcC box`)
  return {
    name: opts.name,
    kind,
    dir: opts.dir,
    initUri: opts.initUri,
    initBytes: init.length,
    timescale: den,
    codecs,
    width: Number(stream.get('width')) || 0,
    height: Number(stream.get('height')) || 0,
    sampleRate: Number(stream.get('sample_rate')) || 0,
    channels: Number(stream.get('channels')) || 0,
    segments,
  }
}

/**
 * Bandwidths in bit/s from measured sizes (RFC 8216 §4.3.4.2). Peak: the largest segment bit
 * rate. A final segment shorter than half the target duration is folded into the one before it:
 * a 33 ms tail holding one IDR frame would otherwise claim a peak many times the real one and
 * keep players off the rung. Average: all media bytes over the total duration.
 */
export function bandwidthOf(
  segments: readonly { readonly bytes: number; readonly durationS: number }[],
  targetS: number,
): { peak: number; average: number } {
  let totalBytes = 0
  let totalS = 0
  for (const s of segments) {
    totalBytes += s.bytes
    totalS += s.durationS
  }
  const windows = segments.map((s) => ({ bytes: s.bytes, durationS: s.durationS }))
  const last = windows[windows.length - 1]
  const prev = windows[windows.length - 2]
  if (last && prev && last.durationS < targetS / 2) {
    windows.splice(-2, 2, { bytes: prev.bytes + last.bytes, durationS: prev.durationS + last.durationS })
  }
  let peak = 0
  for (const w of windows) if (w.durationS > 0) peak = Math.max(peak, (w.bytes * 8) / w.durationS)
  return { peak: Math.ceil(peak), average: totalS > 0 ? Math.ceil((totalBytes * 8) / totalS) : 0 }
}
