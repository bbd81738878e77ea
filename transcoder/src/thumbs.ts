// Poster, sprite sheets and a WebVTT thumbnail track (docs/architecture.md §2 `thumbs/`). Sprites
// are cut from the lowest rung (already small, cheap to decode, streamed to ffmpeg as init +
// segments); the poster is one frame of the source, seeked to directly, so it is sharp and costs
// one GOP decode.
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runFfmpeg } from './run-ffmpeg.js'

export const POSTER_FILE = 'poster.jpg'
export const VTT_FILE = 'thumbs.vtt'
const SPRITE = /^sprite_(\d{3})\.jpg$/

export interface ThumbnailOptions {
  readonly sourcePath: string
  readonly videoStreamIndex: number
  readonly durationS: number
  /** Poster size (even, display aspect). */
  readonly posterWidth: number
  readonly posterHeight: number
  /** Filters applied to the source frame before it is scaled to the poster (an HDR tone-map). */
  readonly posterSourceFilter?: string | undefined
  /** The lowest rung: its init segment and media segments in order. */
  readonly spriteSource: {
    readonly initPath: string
    readonly segmentPaths: readonly string[]
    readonly width: number
    readonly height: number
  }
  /** Output directory (`…/thumbs`). */
  readonly outDir: string
  readonly intervalS?: number | undefined
  readonly columns?: number | undefined
  readonly rows?: number | undefined
  /** Long side of a tile in pixels. */
  readonly tileLong?: number | undefined
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
}

export interface Thumbnails {
  readonly poster: string
  readonly sprites: readonly string[]
  readonly vtt: string
  readonly tileWidth: number
  readonly tileHeight: number
}

const even = (n: number): number => Math.max(2, Math.round(n / 2) * 2)

function validate(o: ThumbnailOptions): void {
  const posInt = (v: unknown, path: string): void => {
    if (!(Number.isInteger(v) && (v as number) > 0)) throw new TypeError(`options.${path} must be a positive integer`)
  }
  if (typeof o.sourcePath !== 'string' || o.sourcePath === '')
    throw new TypeError('options.sourcePath must be a non-empty string')
  if (typeof o.outDir !== 'string' || o.outDir === '') throw new TypeError('options.outDir must be a non-empty string')
  if (!(o.durationS > 0)) throw new TypeError('options.durationS must be positive')
  posInt(o.posterWidth, 'posterWidth')
  posInt(o.posterHeight, 'posterHeight')
  posInt(o.spriteSource.width, 'spriteSource.width')
  posInt(o.spriteSource.height, 'spriteSource.height')
  if (o.spriteSource.segmentPaths.length === 0)
    throw new TypeError('options.spriteSource.segmentPaths must not be empty')
  if (o.intervalS !== undefined && !(o.intervalS > 0)) throw new TypeError('options.intervalS must be positive')
  if (o.columns !== undefined) posInt(o.columns, 'columns')
  if (o.rows !== undefined) posInt(o.rows, 'rows')
  if (o.tileLong !== undefined) posInt(o.tileLong, 'tileLong')
}

function vttTime(s: number): string {
  const ms = Math.round(s * 1000)
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  const sec = Math.floor((ms % 60_000) / 1000)
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${pad(h)}:${pad(m)}:${pad(sec)}.${pad(ms % 1000, 3)}`
}

/** The WebVTT thumbnail track: one cue per tile, `sprite_NNN.jpg#xywh=x,y,w,h` (media fragments). */
export function buildThumbnailVtt(opts: {
  readonly durationS: number
  readonly intervalS: number
  readonly columns: number
  readonly rows: number
  readonly tileWidth: number
  readonly tileHeight: number
  readonly sheetCount: number
}): string {
  const perSheet = opts.columns * opts.rows
  const tiles = Math.min(Math.ceil(opts.durationS / opts.intervalS - 1e-9), opts.sheetCount * perSheet)
  const lines = ['WEBVTT', '']
  for (let i = 0; i < tiles; i++) {
    const sheet = Math.floor(i / perSheet)
    const k = i % perSheet
    const x = (k % opts.columns) * opts.tileWidth
    const y = Math.floor(k / opts.columns) * opts.tileHeight
    const start = i * opts.intervalS
    const end = Math.min(opts.durationS, start + opts.intervalS)
    lines.push(
      `${vttTime(start)} --> ${vttTime(end)}`,
      `sprite_${String(sheet).padStart(3, '0')}.jpg#xywh=${x},${y},${opts.tileWidth},${opts.tileHeight}`,
      '',
    )
  }
  return lines.join('\n')
}

export async function makeThumbnails(o: ThumbnailOptions): Promise<Thumbnails> {
  validate(o)
  const intervalS = o.intervalS ?? 2
  const columns = o.columns ?? 10
  const rows = o.rows ?? 10
  const tileLong = o.tileLong ?? 160
  const { width, height } = o.spriteSource
  const tileWidth = width >= height ? tileLong : even((tileLong * width) / height)
  const tileHeight = width >= height ? even((tileLong * height) / width) : tileLong
  await mkdir(o.outDir, { recursive: true })

  await runFfmpeg({
    bin: 'ffmpeg',
    args: [
      '-hide_banner',
      '-nostats',
      '-v',
      'error',
      '-y',
      '-i',
      'pipe:0',
      '-vf',
      `fps=1/${intervalS},scale=${tileWidth}:${tileHeight},setsar=1,tile=${columns}x${rows}`,
      '-q:v',
      '5',
      '-start_number',
      '0',
      join(o.outDir, 'sprite_%03d.jpg'),
    ],
    stdinFiles: [o.spriteSource.initPath, ...o.spriteSource.segmentPaths],
    signal: o.signal,
    timeoutMs: o.timeoutMs,
  })
  const sprites = (await readdir(o.outDir)).filter((f) => SPRITE.test(f)).sort()

  const posterPath = join(o.outDir, POSTER_FILE)
  // ~10% in skips black leaders and title cards; fall back to the first frame for a source whose
  // video ends before that point.
  for (const atS of [o.durationS * 0.1, 0]) {
    await runFfmpeg({
      bin: 'ffmpeg',
      args: [
        '-hide_banner',
        '-nostdin',
        '-nostats',
        '-v',
        'error',
        '-y',
        '-ss',
        atS.toFixed(3),
        '-i',
        o.sourcePath,
        '-map',
        `0:${o.videoStreamIndex}`,
        '-frames:v',
        '1',
        '-vf',
        `${o.posterSourceFilter ? `${o.posterSourceFilter},` : ''}scale=${o.posterWidth}:${o.posterHeight},setsar=1`,
        '-q:v',
        '3',
        '-update',
        '1',
        posterPath,
      ],
      signal: o.signal,
      timeoutMs: o.timeoutMs,
    })
    if ((await stat(posterPath).catch(() => null))?.size) break
  }

  const vtt = buildThumbnailVtt({
    durationS: o.durationS,
    intervalS,
    columns,
    rows,
    tileWidth,
    tileHeight,
    sheetCount: sprites.length,
  })
  await writeFile(join(o.outDir, VTT_FILE), vtt)
  return { poster: POSTER_FILE, sprites, vtt: VTT_FILE, tileWidth, tileHeight }
}
