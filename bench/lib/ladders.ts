// Tiny real HLS ladders for the players scenario: per video two fMP4 rungs (144p and 360p, 2 s
// segments, libx264 ultrafast) encoded by ffmpeg from a test pattern whose hue differs per video,
// so every video's bytes differ. Encoded once and kept under .cache/bench/ (a `.done` mark per
// video), so reruns only read files.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../../shared/testing/index.js'

const execFileAsync = promisify(execFile)

/** The rungs of every ladder: (width × height, video bitrate). BANDWIDTH in the master is 1.2× the bitrate. */
export const RUNGS = [
  { name: '144p', width: 256, height: 144, bitrate: 200_000 },
  { name: '360p', width: 640, height: 360, bitrate: 700_000 },
] as const
const SEGMENT_S = 2
/** Bumped when the encoding changes, so an old cache is not reused. */
const FORMAT = 'v1'
// Each ffmpeg run is bounded: a tiny clip takes seconds even on a busy machine.
const FFMPEG_TIMEOUT_MS = 120_000

export interface Ladder {
  /** The video id (`/v/{id}/master.m3u8`). */
  readonly id: string
  /** Files by path relative to the video directory (`master.m3u8`, `144p/seg_00001.m4s`, …). */
  readonly files: ReadonlyMap<string, Buffer>
}

/** The directory the ladders of this length are cached in. */
export function laddersDir(videoSeconds: number): string {
  return join(ROOT, '.cache', 'bench', `players-${FORMAT}-${videoSeconds}s`)
}

/**
 * `videos` ladders of `videoSeconds` each (ids `p00000` …), encoded where not cached yet, read into
 * memory (a ladder of 20 s is ~2.5 MB). `log` reports progress of the encoding.
 */
export async function ensureLadders(
  videos: number,
  videoSeconds: number,
  log: (line: string) => void = () => undefined,
): Promise<Ladder[]> {
  const base = laddersDir(videoSeconds)
  const ladders: Ladder[] = []
  let encoded = 0
  for (let i = 0; i < videos; i++) {
    const id = `p${String(i).padStart(5, '0')}`
    const dir = join(base, id)
    if (!existsSync(join(dir, '.done'))) {
      await encodeLadder(dir, i, videoSeconds)
      encoded++
      if (encoded % 10 === 0) log(`players: encoded ${encoded} ladders`)
    }
    ladders.push({ id, files: readTree(dir) })
  }
  if (encoded > 0) log(`players: encoded ${encoded} ladder(s) into ${base}`)
  return ladders
}

async function encodeLadder(dir: string, seed: number, seconds: number): Promise<void> {
  rmSync(dir, { recursive: true, force: true })
  for (const rung of RUNGS) {
    const out = join(dir, rung.name)
    mkdirSync(out, { recursive: true })
    const gop = String(SEGMENT_S * 25)
    const args = [
      ...['-v', 'error', '-y', '-f', 'lavfi'],
      ...['-i', `testsrc2=duration=${seconds}:size=${rung.width}x${rung.height}:rate=25`],
      ...['-vf', `hue=h=${(seed * 37) % 360}`],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
      ...['-b:v', String(rung.bitrate), '-maxrate', String(rung.bitrate), '-bufsize', String(rung.bitrate)],
      ...['-g', gop, '-keyint_min', gop, '-sc_threshold', '0'],
      ...['-f', 'hls', '-hls_time', String(SEGMENT_S), '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4'],
      ...['-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', 'seg_%05d.m4s', 'index.m3u8'],
    ]
    await execFileAsync('ffmpeg', args, { cwd: out, timeout: FFMPEG_TIMEOUT_MS })
  }
  // RFC 8216 §4.3.4.2: BANDWIDTH is the peak rate; the rate control keeps under 1.2× the target.
  const master = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS']
  for (const rung of RUNGS) {
    master.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${Math.round(rung.bitrate * 1.2)},RESOLUTION=${rung.width}x${rung.height},CODECS="avc1.42c01e"`,
      `${rung.name}/index.m3u8`,
    )
  }
  writeFileSync(join(dir, 'master.m3u8'), master.join('\n') + '\n')
  writeFileSync(join(dir, '.done'), '')
}

function readTree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>()
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (!e.name.startsWith('.')) files.set(relative(dir, p), readFileSync(p))
    }
  }
  walk(dir)
  return files
}
