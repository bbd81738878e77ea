// A long video with every track a creator sends, split across the fleet (docs/architecture.md §8),
// real origin, shield, edge and transcoders from dist/, in ONE stack and ONE upload: a 130 s source
// with English and Spanish audio and a WebVTT caption file attached while the job is queued, with
// splitAboveS 60 and chunkS 32, is encoded as 5 chunk jobs and one audio job (both tracks, queued
// first) taken by two transcoders, one of which is killed (SIGKILL) mid-chunk: that chunk alone
// runs a second time. The published ladder has the segment boundaries and frame count of a whole
// encode of the same source and every Δpts is one frame; so does every audio rendition, which the
// stitch copied from the audio job; the master lists both audio languages and the subtitles
// rendition; hls.js in Chromium plays the signed URL from the API through the edge to the end,
// listing the tracks.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { parseMaster, parseMedia } from '../../../shared/hls/index.js'
import { FsStore } from '../../../shared/store/index.js'
import { launchChromium, startFullStack, tempDir, waitFor, type VideoView } from '../../../shared/testing/index.js'
import { transcode } from '../../src/pipeline.js'
import { makeTwoLanguageClip } from '../track-fixtures.js'

// The runner gives each file 300 s; this one took 160–175 s on a shared 2-core machine (a
// whole reference encode, the split encode with a retried chunk, and playback). Sized for a
// machine three times slower. Both calls are needed: setTimeout moves this process's own timer,
// the `# timeout=` comment the runner's.
const FILE_TIMEOUT_MS = 900_000
t.setTimeout(FILE_TIMEOUT_MS)
t.comment(`timeout=${FILE_TIMEOUT_MS}`)

const HLS_JS = createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js')

interface SplitView extends VideoView {
  processing: {
    chunks: { done: number; total: number; claims: number[] }
    audio: { done: boolean; claims: number; workers: string[] } | null
    workers: string[]
  } | null
}

interface PageState {
  ended: boolean
  fatal: string | null
  duration: number
  currentTime: number
  audio: string[]
  subtitles: string[]
  /** The text of every cue in the video's text tracks when it ended. */
  cues: string[]
  /** [type, level, sn] of every fragment hls.js loaded. */
  frags: [string, number, number | string][]
}

const SECONDS = 130
const FPS = 30
// 640x360 gives two rungs (240p, 360p), so boundaries are compared across rungs.
const SIZE = '640x360'
const SETTLE_MS = 600_000
// Muted playback at 8× (Chromium plays up to 16×): every segment is still fetched, appended and
// decoded in order, and `ended` fires only once the whole timeline has played; 130 s take ~16 s.
const PLAYBACK_RATE = 8
const PLAY_MS = 300_000
const CAPTION = [
  'WEBVTT',
  '',
  '00:00:01.000 --> 00:00:03.000',
  'Hello',
  '',
  '00:01:04.000 --> 00:01:06.000',
  'Halfway',
  '',
  '00:02:08.000 --> 00:02:09.500',
  'Goodbye',
  '',
].join('\n')

/** Segment durations of a media playlist. */
function extinfs(playlistText: string): number[] {
  return parseMedia(playlistText).segments.map((s) => s.durationS)
}

/** Packet pts of the video (or `stream`) in `init` + `segments` (a fragmented MP4 joined in a temp file). */
function packetPts(files: string[], joined: string, stream = 'v:0'): number[] {
  writeFileSync(joined, Buffer.concat(files.map((f) => readFileSync(f))))
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', stream, '-show_entries', 'packet=pts', '-of', 'csv=p=0', joined],
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

/** Whether a transcoder's work dir has a job whose part directory `<prefix>*` holds `file` (ffmpeg writing it). */
function isEncoding(workDir: string, prefix: string, file: string): boolean {
  if (!existsSync(workDir)) return false
  for (const job of readdirSync(workDir)) {
    for (const d of readdirSync(join(workDir, job)).filter((n) => n.startsWith(prefix))) {
      if (existsSync(join(workDir, job, d, file))) return true
    }
  }
  return false
}

/** The distinct numeric sequence numbers hls.js loaded for fragments of `type`. */
function loadedSns(state: PageState, type: string): number[] {
  const sns = state.frags.filter(([ty, , sn]) => ty === type && typeof sn === 'number').map(([, , sn]) => sn as number)
  return [...new Set(sns)].sort((a, b) => a - b)
}

t.test(
  'a long video with two audio languages and a caption, split across two transcoders one of which is killed, plays to the end',
  async (t) => {
    const tmp = tempDir('vcdn-split-')
    t.teardown(tmp.remove)
    const clip = makeTwoLanguageClip(tmp.dir, 'long.mp4', { durationS: SECONDS, size: SIZE })
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

    // No transcoder yet: the chunk jobs wait in the queue while the caption is attached.
    const id = await stack.upload(clip)
    const attached = await fetch(`${stack.origin.url}/v1/videos/${id}/captions?lang=en&name=English`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.uploaderToken}`, 'content-type': 'text/vtt' },
      body: CAPTION,
    })
    t.equal(attached.status, 201, `the caption is attached (${await attached.clone().text()})`)
    await attached.arrayBuffer()

    // Both transcoders take chunks. The survivor starts first and takes the audio job (queued
    // before the chunks); the victim then takes a chunk and is killed while ffmpeg writes its mp4.
    const survivor = await stack.startTranscoder()
    const survivorWork = join(tmp.dir, `work-${stack.transcoders.length}`)
    await waitFor(() => isEncoding(survivorWork, 'audio-', 'audio.mp4'), {
      timeoutMs: 180_000,
      what: 'the survivor to be encoding the audio',
    })
    const victim = await stack.startTranscoder()
    const victimWork = join(tmp.dir, `work-${stack.transcoders.length}`)
    await waitFor(() => isEncoding(victimWork, 'chunk-', 'video.mp4'), {
      timeoutMs: 180_000,
      what: 'the victim to be encoding a chunk',
    })
    await victim.kill9()
    t.teardown(() => survivor.stop())

    const v = (await stack.settle(id, SETTLE_MS)) as SplitView
    t.equal(v.status, 'ready', `ready (${JSON.stringify(v.error)})`)
    if (v.status !== 'ready')
      t.comment(
        survivor
          .output()
          .split('\n')
          .filter((l) => l.includes('"job failed"'))
          .join('\n'),
      )
    const got = (await stack.api<SplitView>('GET', `/v1/videos/${id}`)).body
    const claims = got.processing?.chunks.claims ?? []
    t.match(got.processing?.chunks, { done: 5, total: 5 }, 'five chunks, all done')
    t.equal(claims.length, 5)
    t.same(
      claims.filter((c) => c !== 1),
      [2],
      `the killed chunk was claimed twice, every other chunk once (${JSON.stringify(claims)})`,
    )
    t.same([...(got.processing?.workers ?? [])].sort(), ['worker-1', 'worker-2'], 'both transcoders took chunks')
    t.match(got.processing?.audio, { done: true, claims: 1 }, 'one audio job, done, claimed once')
    t.same(
      v.renditions.map((r) => [r.name, r.width, r.height]),
      ref.renditions.map((r) => [r.name, r.width, r.height]),
      'the same ladder',
    )
    t.ok(v.renditions.length >= 2, 'several rungs, so boundaries are compared across rungs')
    // The stitch's completion makes the video ready, then deletes the chunks (origin/src/api/jobs.ts).
    await waitFor(async () => (await store.list(`work/${id}/`)).length === 0, {
      timeoutMs: 60_000,
      what: 'the chunks to be removed after publishing',
    })
    t.pass('the chunks are removed after publishing')
    // The long-video benchmark reads each chunk's CPU and encode figures from these lines (the
    // killed transcoder completed none).
    const chunkLines = (victim.output() + survivor.output())
      .split('\n')
      .filter((l) => l.includes('"chunk completed"') && l.includes(`"videoId":"${id}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    t.equal(chunkLines.length, 5, 'a chunk completed line per chunk')
    const audioLines = (victim.output() + survivor.output())
      .split('\n')
      .filter((l) => l.includes('"audio completed"') && l.includes(`"videoId":"${id}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    t.equal(audioLines.length, 1, 'an audio completed line for the audio job')
    for (const l of [...chunkLines, ...audioLines]) {
      const figures = [l['cpuS'], l['encodeCpuS'], l['encodeWallS']]
      t.ok(
        figures.every((x) => typeof x === 'number' && x > 0),
        `${typeof l['chunk'] === 'number' ? `chunk ${l['chunk']}` : 'the audio job'} logs its CPU-seconds and its encode's`,
      )
    }

    const published = join(tmp.dir, 'store', 'v', id)
    const videoSegments = new Map<string, number>()
    for (const r of v.renditions) {
      const text = readFileSync(join(published, r.name, 'index.m3u8'), 'utf8')
      const refText = readFileSync(join(refOut, r.name, 'index.m3u8'), 'utf8')
      t.equal(parseMedia(text).targetDurationS, parseMedia(refText).targetDurationS, `${r.name}: TARGETDURATION`)
      t.same(extinfs(text), extinfs(refText), `${r.name}: the segment boundaries of the whole encode`)
      videoSegments.set(r.name, parseMedia(text).segments.length)
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

    // The master (RFC 8216 §4.3.4.1): one audio rendition per language, one subtitles rendition.
    const master = parseMaster(readFileSync(join(published, 'master.m3u8'), 'utf8'))
    t.same(master.audio.map((a) => a.language).sort(), ['en', 'es'], 'two audio renditions with their LANGUAGE')
    t.same(
      master.subtitles?.map((s) => [s.language, s.name, s.uri]),
      [['en', 'English', 'subs/en/index.m3u8']],
      'one subtitles rendition',
    )
    for (const variant of master.variants) t.equal(variant.subtitlesGroupId, 'subs', `${variant.uri}: SUBTITLES group`)
    const audioUri = master.audio[0]?.uri ?? ''
    const audioSegments = parseMedia(readFileSync(join(published, audioUri), 'utf8')).segments.length
    // The audio the stitch copied from the audio job: the segments, boundaries and AAC frames of the
    // whole encode's (the muxer may round the last segment's EXTINF by a few samples differently).
    for (const a of master.audio) {
      const name = a.uri?.split('/')[0] ?? ''
      const text = readFileSync(join(published, name, 'index.m3u8'), 'utf8')
      const refText = readFileSync(join(refOut, name, 'index.m3u8'), 'utf8')
      const got = extinfs(text)
      const want = extinfs(refText)
      t.equal(got.length, want.length, `${name}: the segment count of the whole encode`)
      t.ok(
        got.every((d, k) => Math.abs(d - (want[k] ?? NaN)) < 0.001),
        `${name}: the segment boundaries of the whole encode (to 1 ms)`,
      )
      const files = (dir: string, playlist: string): string[] => [
        join(dir, name, 'init.mp4'),
        ...parseMedia(playlist).segments.map((s) => join(dir, name, s.uri)),
      ]
      const pts = packetPts(files(published, text), join(tmp.dir, `${name}.mp4`), 'a:0')
      const refPts = packetPts(files(refOut, refText), join(tmp.dir, `ref-${name}.mp4`), 'a:0')
      t.equal(pts.length, refPts.length, `${name}: the AAC frame count of the whole encode (${pts.length})`)
      t.ok(pts.length > SECONDS * 40, `${name}: AAC frames for the whole ${SECONDS} s`)
      const bad = pts.slice(1).filter((p, k) => p - (pts[k] as number) !== 1024).length
      t.equal(bad, 0, `${name}: every Δpts is one AAC frame (1024 samples)`)
    }
    const subsSegments = parseMedia(readFileSync(join(published, 'subs/en/index.m3u8'), 'utf8')).segments.length

    // Playback: hls.js on a page of another origin plays the API's signed URL through the edge.
    const hlsUrl = v.playback?.hls ?? ''
    t.match(hlsUrl, new RegExp(`^${stack.edge.url}/.*/v/${id}/master\\.m3u8`), 'a signed edge URL')
    const page = `<!doctype html><video muted playsinline></video><script src="/hls.min.js"></script><script>
const state = (window.state = { ended: false, fatal: null, duration: 0, currentTime: 0, audio: [], subtitles: [], cues: [], frags: [] })
const v = document.querySelector('video')
const hls = new Hls()
hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) state.fatal = d.type + ' ' + d.details })
hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, (_e, d) => { state.audio = d.audioTracks.map((a) => a.lang) })
hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_e, d) => { state.subtitles = d.subtitleTracks.map((s) => s.lang) })
// Captions on, as a viewer turns them on in the video's own menu: hls.js follows the native text
// track's mode (a subtitleTrack set while the track is disabled is switched back off).
v.textTracks.addEventListener('addtrack', (e) => { e.track.mode = 'showing' })
hls.on(Hls.Events.FRAG_LOADED, (_e, d) => state.frags.push([d.frag.type, d.frag.level, d.frag.sn]))
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch(() => undefined))
v.addEventListener('playing', () => (v.playbackRate = ${PLAYBACK_RATE}))
v.addEventListener('ended', () => {
  state.ended = true
  state.duration = v.duration
  state.currentTime = v.currentTime
  state.cues = [...v.textTracks].flatMap((tr) => [...(tr.cues || [])].map((c) => c.text))
})
hls.loadSource(${JSON.stringify(hlsUrl)})
hls.attachMedia(v)
</script>`
    const site = createServer((req, res) => {
      if (req.url === '/hls.min.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(HLS_JS))
      else res.writeHead(200, { 'content-type': 'text/html' }).end(page)
    })
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => site.close(() => resolve())))
    const address = site.address()
    const sitePort = typeof address === 'object' && address !== null ? address.port : 0

    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    await tab.goto(`http://127.0.0.1:${sitePort}/`)
    const settled = await tab
      .waitForFunction(
        () => {
          const s = (window as unknown as { state?: PageState }).state
          return s !== undefined && (s.ended || s.fatal !== null)
        },
        undefined,
        { timeout: PLAY_MS, polling: 250 },
      )
      .then(
        () => true,
        () => false,
      )
    const state = await tab.evaluate(() => (window as unknown as { state: PageState }).state)
    const summary = { ...state, frags: state.frags.length }
    t.ok(settled, `the player ended or failed within ${PLAY_MS / 1000} s (${JSON.stringify(summary)})`)
    t.equal(state.fatal, null, 'no fatal player error')
    t.equal(state.ended, true, 'played to the end')
    t.ok(Math.abs(state.duration - SECONDS) < 1, `the whole duration (${state.duration} s)`)
    t.ok(state.currentTime >= state.duration - 0.5, `ended at the end (${state.currentTime} s)`)
    t.same([...state.audio].sort(), ['en', 'es'], 'hls.js lists both audio tracks')
    t.same(state.subtitles, ['en'], 'hls.js lists the subtitle track')
    // Every segment of the timeline came through the edge: each video sequence number (from
    // whichever level ABR chose), every segment of the audio track played, every caption segment.
    const rungSegments = [...videoSegments.values()]
    t.same(new Set(rungSegments).size, 1, 'every rung has the same number of segments')
    t.equal(loadedSns(state, 'main').length, rungSegments[0], 'every video segment was fetched')
    t.equal(loadedSns(state, 'audio').length, audioSegments, 'every audio segment was fetched')
    t.equal(loadedSns(state, 'subtitle').length, subsSegments, 'every caption segment was fetched')
    t.same(state.cues, ['Hello', 'Halfway', 'Goodbye'], 'the caption cues reached the text track')
  },
)
