// A chunk of a split video holds exactly its frames (docs/architecture.md §8), with real ffmpeg:
// every frame of the source once, in order, whichever container. The source's frame n has luma
// 3n mod 256 (lossless), so a chunk's frames name themselves. A Matroska file with AAC audio starts
// its video 21 ms after the file (the audio's encoder delay comes first); a chunk of it used to
// begin with a copy of its first frame (one frame too many per chunk, and the stitch refused the
// video).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { tempDir } from '../../shared/testing/index.js'
import { encodeChunk } from '../src/chunk.js'
import { probe } from '../src/probe.js'

const FPS = 30
const SECONDS = 20
const CHUNK_S = 8

/** The mean luma of every frame of video stream 0 of `path`, in order. */
function lumas(path: string): number[] {
  const out = execFileSync(
    'ffmpeg',
    [
      ...['-v', 'error', '-i', path, '-map', '0:v:0'],
      ...['-vf', 'signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file=-', '-f', 'null', '-'],
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  )
  return [...out.toString().matchAll(/YAVG=([\d.]+)/g)].map((m) => Number(m[1]))
}

function makeSource(path: string, isMatroska: boolean): void {
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y'],
    ...['-f', 'lavfi', '-i', `color=c=black:s=320x180:r=${FPS}:d=${SECONDS},geq=lum='mod(N*3\\,256)':cb=128:cr=128`],
    ...['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`],
    ...['-map', '0', '-map', '1'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac'],
    ...(isMatroska ? ['-f', 'matroska'] : ['-f', 'mp4']),
    path,
  ])
}

for (const [name, isMatroska] of [
  ['Matroska with AAC audio (the video starts 21 ms after the file)', true],
  ['MP4', false],
] as const) {
  t.test(`every chunk of a ${name} source holds exactly its own frames`, async (t) => {
    const tmp = tempDir('vcdn-chunk-frames-')
    t.teardown(tmp.remove)
    const source = join(tmp.dir, isMatroska ? 'src.mkv' : 'src.mp4')
    makeSource(source, isMatroska)
    const info = await probe(source)
    if (isMatroska) t.ok(info.videoStartS > 0, `the video starts after the file (${info.videoStartS} s)`)
    else t.equal(info.videoStartS, 0, 'the video starts with the file')
    const count = Math.ceil(SECONDS / CHUNK_S)
    const seen: number[] = []
    for (let index = 0; index < count; index++) {
      const chunk = { sourceKey: 'sources/x', index, startS: index * CHUNK_S, lengthS: CHUNK_S, count }
      const out = await encodeChunk({ sourcePath: source, workDir: tmp.dir, chunk, preset: 'ultrafast' })
      const frames = lumas(out.path)
      const first = index * CHUNK_S * FPS
      const expected = Math.min(CHUNK_S, SECONDS - index * CHUNK_S) * FPS
      t.equal(frames.length, expected, `chunk ${index}: ${expected} frames`)
      t.ok(
        Math.abs((frames[0] ?? -1) - ((first * 3) % 256)) <= 1.5,
        `chunk ${index} begins with frame ${first} (luma ${frames[0]})`,
      )
      seen.push(...frames)
    }
    const wrong = seen.map((y, n) => [n, y] as const).filter(([n, y]) => Math.abs(y - ((n * 3) % 256)) > 1.5)
    t.same(wrong.slice(0, 5), [], `the chunks in order are the source's ${SECONDS * FPS} frames, each once`)
    t.equal(seen.length, SECONDS * FPS)
  })
}
