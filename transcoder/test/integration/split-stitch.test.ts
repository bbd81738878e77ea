// Split-and-stitch across the fleet (docs/architecture.md §8), real origin and transcoders from
// dist/: a 130 s upload with splitAboveS 60 and chunkS 32 is encoded as 5 chunk jobs taken by both
// transcoders and one stitch; the published ladder has the segment boundaries and frame count of a
// whole encode of the same source and every Δpts is one frame. A transcoder killed mid-chunk costs
// that chunk alone a second run.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseMedia } from '../../../shared/hls/index.js'
import { FsStore } from '../../../shared/store/index.js'
import { makeClip, startFullStack, tempDir, waitFor, type VideoView } from '../../../shared/testing/index.js'
import { transcode } from '../../src/pipeline.js'

interface SplitView extends VideoView {
  processing: { chunks: { done: number; total: number; claims: number[] }; workers: string[] } | null
}

const SECONDS = 130
const FPS = 30
const SETTLE_MS = 900_000

/** Segment durations of a media playlist. */
function extinfs(playlistText: string): number[] {
  return parseMedia(playlistText).segments.map((s) => s.durationS)
}

/** Packet pts of the video in `init` + `segments` (a fragmented MP4 joined in a temp file). */
function packetPts(files: string[], joined: string): number[] {
  writeFileSync(joined, Buffer.concat(files.map((f) => readFileSync(f))))
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts', '-of', 'csv=p=0', joined],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  )
  return out
    .toString()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number)
    .sort((a, b) => a - b)
}

function timescaleOf(file: string): number {
  const out = execFileSync('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=time_base',
    '-of',
    'csv=p=0',
    file,
  ])
  const [num, den] = out.toString().trim().split('/').map(Number)
  return (den ?? 1) / (num ?? 1)
}

t.test('split-and-stitch', async (t) => {
  const tmp = tempDir('vcdn-split-')
  t.teardown(tmp.remove)
  const clip = makeClip(join(tmp.dir, 'long.mp4'), { seconds: SECONDS, width: 640, height: 360, fps: FPS })
  const stack = await startFullStack({
    dir: tmp.dir,
    transcoders: 0,
    transcoder: { preset: 'ultrafast', leaseMs: 2000 },
    origin: {
      transcode: { splitAboveS: 60, chunkS: 32 },
      jobs: { maxAttempts: 3, backoffBaseMs: 100, backoffMaxMs: 1000 },
    },
  })
  t.teardown(() => stack.close())
  const store = new FsStore({ dir: join(tmp.dir, 'store') })

  // The reference: the same source encoded whole by the same pipeline and settings.
  const refWork = join(tmp.dir, 'ref')
  await mkdir(refWork)
  const ref = await transcode({ sourcePath: clip, workDir: refWork, videoId: 'ref', preset: 'ultrafast' })
  const refOut = join(ref.jobDir, 'out')

  t.test('chunks taken by both transcoders; the ladder matches a whole encode, every Δpts one frame', async (t) => {
    const first = await stack.startTranscoder()
    const second = await stack.startTranscoder()
    t.teardown(async () => {
      await first.stop()
      await second.stop()
    })
    const id = await stack.upload(clip)
    const v = (await stack.settle(id, SETTLE_MS)) as SplitView
    t.equal(v.status, 'ready', `ready (${JSON.stringify(v.error)})`)
    const got = (await stack.api<SplitView>('GET', `/v1/videos/${id}`)).body
    t.same(got.processing?.chunks, { done: 5, total: 5, claims: [1, 1, 1, 1, 1] }, 'five chunks, each run once')
    t.same([...(got.processing?.workers ?? [])].sort(), ['worker-1', 'worker-2'], 'both transcoders took chunks')
    t.same(
      v.renditions.map((r) => [r.name, r.width, r.height]),
      ref.renditions.map((r) => [r.name, r.width, r.height]),
      'the same ladder',
    )
    t.ok(v.renditions.length >= 2, 'several rungs, so boundaries are compared across rungs')
    t.same(await store.list(`work/${id}/`), [], 'the chunks are removed after publishing')
    // The long-video benchmark reads each chunk's CPU and encode figures from these lines.
    const chunkLines = (first.output() + second.output())
      .split('\n')
      .filter((l) => l.includes('"chunk completed"') && l.includes(`"videoId":"${id}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    t.equal(chunkLines.length, 5, 'a chunk completed line per chunk')
    for (const l of chunkLines) {
      const figures = [l['cpuS'], l['encodeCpuS'], l['encodeWallS']]
      t.ok(
        figures.every((x) => typeof x === 'number' && x > 0),
        `chunk ${String(l['chunk'])} logs its CPU-seconds and its encode's`,
      )
    }

    const published = join(tmp.dir, 'store', 'v', id)
    for (const r of v.renditions) {
      const text = readFileSync(join(published, r.name, 'index.m3u8'), 'utf8')
      const refText = readFileSync(join(refOut, r.name, 'index.m3u8'), 'utf8')
      t.equal(parseMedia(text).targetDurationS, parseMedia(refText).targetDurationS, `${r.name}: TARGETDURATION`)
      t.same(extinfs(text), extinfs(refText), `${r.name}: the segment boundaries of the whole encode`)
      const segs = parseMedia(text).segments.map((s) => join(published, r.name, s.uri))
      const pts = packetPts([join(published, r.name, 'init.mp4'), ...segs], join(tmp.dir, `${r.name}.mp4`))
      const refSegs = parseMedia(refText).segments.map((s) => join(refOut, r.name, s.uri))
      const refPts = packetPts([join(refOut, r.name, 'init.mp4'), ...refSegs], join(tmp.dir, `ref-${r.name}.mp4`))
      t.equal(pts.length, SECONDS * FPS, `${r.name}: every source frame`)
      t.equal(pts.length, refPts.length, `${r.name}: the frame count of the whole encode`)
      const frameTicks = timescaleOf(join(tmp.dir, `${r.name}.mp4`)) / FPS
      const bad = pts.slice(1).filter((p, k) => p - (pts[k] as number) !== frameTicks).length
      t.equal(bad, 0, `${r.name}: every Δpts is one frame (${frameTicks} ticks)`)
    }
  })

  t.test('a transcoder killed mid-chunk: only that chunk runs again', async (t) => {
    const victim = await stack.startTranscoder()
    const victimWork = join(tmp.dir, `work-${stack.transcoders.length}`)
    const id = await stack.upload(clip)
    // The victim is encoding its chunk: ffmpeg is writing the chunk's mp4 in its job directory.
    await waitFor(
      () => {
        if (!existsSync(victimWork)) return false
        for (const job of readdirSync(victimWork)) {
          for (const d of readdirSync(join(victimWork, job)).filter((n) => n.startsWith('chunk-'))) {
            if (existsSync(join(victimWork, job, d, 'video.mp4'))) return true
          }
        }
        return false
      },
      { timeoutMs: 120_000, what: 'the victim to be encoding a chunk' },
    )
    await victim.kill9()
    const survivor = await stack.startTranscoder()
    t.teardown(() => survivor.stop())
    const v = (await stack.settle(id, SETTLE_MS)) as SplitView
    t.equal(v.status, 'ready', `ready (${JSON.stringify(v.error)})`)
    const got = (await stack.api<SplitView>('GET', `/v1/videos/${id}`)).body
    const claims = got.processing?.chunks.claims ?? []
    t.equal(claims.length, 5)
    t.same(
      claims.filter((c) => c !== 1),
      [2],
      `the killed chunk was claimed twice, every other chunk once (${JSON.stringify(claims)})`,
    )
    t.same(
      v.renditions.map((r) => r.name),
      ref.renditions.map((r) => r.name),
      'the same ladder',
    )
  })
})
