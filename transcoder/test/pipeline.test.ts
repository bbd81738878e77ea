import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseMaster, parseMedia } from '../../shared/hls/index.js'
import { tempDir } from '../../shared/testing/index.js'
import { isRetryableTranscodeError, transcode, type TranscodeResult } from '../src/pipeline.js'
import { makeAudioOnly, makeClip, makeGarbage, makeTruncated } from './fixtures.js'
import { checkWellFormedXml } from './xml.js'

const tmp = tempDir('vcdn-pipeline-')
t.teardown(() => tmp.remove())
const landscape = makeClip(tmp.dir, 'landscape.mp4', { width: 1280, height: 720, durationS: 8 })

function freshWorkDir(name: string): string {
  const dir = join(tmp.dir, name)
  mkdirSync(dir)
  return dir
}

/** First-packet flag of every segment, with ffprobe over init + segment (independent of measure.ts). */
function firstPacketIsKey(dir: string, seg: string): boolean {
  const bytes = Buffer.concat([readFileSync(join(dir, 'init.mp4')), readFileSync(join(dir, seg))])
  const out = spawnSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', '-i', 'pipe:0'],
    { input: bytes },
  )
  return out.stdout.toString().split('\n')[0]?.split(',')[1]?.startsWith('K') === true
}

t.test('an 8 s 720p clip becomes a valid 240p–720p ladder with audio, DASH and thumbnails', async (t) => {
  const workDir = freshWorkDir('landscape')
  const progress: [number, string][] = []
  const result: TranscodeResult = await transcode({
    sourcePath: landscape,
    workDir,
    videoId: 'vid_1',
    preset: 'ultrafast',
    onProgress: (f, phase) => progress.push([f, phase]),
  })
  const out = (key: string): string => {
    const o = result.outputs.find((x) => x.key === `v/vid_1/${key}`)
    if (!o) throw new Error(`no output ${key}`)
    return o.path
  }

  t.ok(Math.abs(result.durationS - 8) < 0.1)
  t.same(
    result.renditions.map((r) => `${r.name}=${r.width}x${r.height}`),
    ['240p=426x240', '360p=640x360', '480p=854x480', '720p=1280x720'],
    'no 1080p',
  )
  t.match(result.audio, { name: 'audio', codecs: 'mp4a.40.2', channels: 2, sampleRate: 48000 })
  for (const r of result.renditions) {
    t.match(r.codecs, /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/)
    t.equal(r.frameRate, 30)
  }

  // Publishing order: media first, then playlists, thumbnails, the MPD, the master last.
  const keys = result.outputs.map((o) => o.key)
  t.equal(keys.at(-1), 'v/vid_1/master.m3u8')
  t.equal(keys.at(-2), 'v/vid_1/manifest.mpd')
  const lastMedia = Math.max(...keys.map((k, i) => (/\.(m4s|mp4)$/.test(k) ? i : -1)))
  const firstPlaylist = keys.findIndex((k) => k.endsWith('index.m3u8'))
  t.ok(lastMedia < firstPlaylist, 'every segment precedes every playlist')
  t.ok(keys.every((k) => /^v\/vid_1\/[A-Za-z0-9._/-]+$/.test(k)))
  t.equal(new Set(keys).size, keys.length)
  for (const o of result.outputs) t.ok(statSync(o.path).size > 0, `${o.key} is non-empty`)
  t.match(
    result.outputs.find((o) => o.key.endsWith('.m4s')),
    { contentType: 'video/iso.segment' },
  )
  t.match(
    result.outputs.find((o) => o.key.endsWith('.m3u8')),
    { contentType: 'application/vnd.apple.mpegurl' },
  )

  // Every playlist parses in strict mode and has the CMAF VOD tags.
  const master = parseMaster(readFileSync(out('master.m3u8'), 'utf8'))
  t.same(
    master.variants.map((v) => v.uri),
    ['240p/index.m3u8', '360p/index.m3u8', '480p/index.m3u8', '720p/index.m3u8'],
  )
  t.same(
    master.audio.map((a) => [a.groupId, a.name, a.uri, a.isDefault]),
    [['aud', 'audio', 'audio/index.m3u8', true]],
  )
  const bandwidths = master.variants.map((v) => v.bandwidth)
  t.same(
    [...bandwidths].sort((a, b) => a - b),
    bandwidths,
    'sorted by bandwidth',
  )

  const rungDurations: number[][] = []
  const audioPlaylist = parseMedia(readFileSync(out('audio/index.m3u8'), 'utf8'))
  const audioPeak = Math.max(
    ...audioPlaylist.segments.map((s) => (statSync(out(`audio/${s.uri}`)).size * 8) / Math.max(s.durationS, 2)),
  )
  for (const v of master.variants) {
    const name = v.uri.split('/')[0] as string
    const text = readFileSync(out(v.uri), 'utf8')
    const p = parseMedia(text)
    t.equal(p.version, 7)
    t.equal(p.mapUri, 'init.mp4')
    t.equal(p.playlistType, 'VOD')
    t.ok(p.isIndependentSegments && p.isEndList)
    t.same(
      p.segments.map((s) => s.uri),
      p.segments.map((_, i) => `seg_${String(i + 1).padStart(5, '0')}.m4s`),
      'numbered from 1',
    )
    rungDurations.push(p.segments.map((s) => s.durationS))
    const dir = join(out(v.uri), '..')
    for (const s of p.segments) t.ok(firstPacketIsKey(dir, s.uri), `${name}/${s.uri} starts with a keyframe`)
    // BANDWIDTH ≥ measured peak of the rung (+ the audio played with it; short tails folded as in master.ts).
    const peak = Math.max(...p.segments.map((s) => (statSync(join(dir, s.uri)).size * 8) / Math.max(s.durationS, 2)))
    t.ok(
      v.bandwidth >= peak + audioPeak * 0.999,
      `${name} BANDWIDTH ${v.bandwidth} ≥ peak ${Math.round(peak + audioPeak)}`,
    )
    t.ok((v.averageBandwidth ?? 0) <= v.bandwidth)
  }
  t.equal(rungDurations[0]?.length, 2, '8 s → two 4 s segments')
  for (const d of rungDurations) {
    t.equal(d.length, rungDurations[0]?.length)
    d.forEach((x, i) => t.ok(Math.abs(x - (rungDurations[0]?.[i] ?? 0)) <= 0.001))
  }
  t.equal(audioPlaylist.mapUri, 'init.mp4')

  const mpd = readFileSync(out('manifest.mpd'), 'utf8')
  checkWellFormedXml(mpd)
  t.equal(mpd.match(/<Representation /g)?.length, 5)
  t.match(mpd, /contentType="audio"/)

  t.same(result.thumbnails, {
    poster: 'v/vid_1/thumbs/poster.jpg',
    sprites: ['v/vid_1/thumbs/sprite_000.jpg'],
    vtt: 'v/vid_1/thumbs/thumbs.vtt',
  })
  t.equal(readFileSync(out('thumbs/poster.jpg')).subarray(0, 2).toString('hex'), 'ffd8', 'poster is a JPEG')
  const vtt = readFileSync(out('thumbs/thumbs.vtt'), 'utf8')
  t.match(vtt, /^WEBVTT\n/)
  t.equal(vtt.match(/sprite_000\.jpg#xywh=\d+,\d+,160,90/g)?.length, 4, 'one tile every 2 s')

  t.equal(progress.at(-1)?.[0], 1, 'progress reached 1')
  t.ok(
    progress.some(([f, p]) => p === 'transcode' && f > 0.02 && f < 0.85),
    'progress reported during the encode',
  )
  t.ok(
    progress.every(([f], i) => i === 0 || f >= (progress[i - 1]?.[0] ?? 0)),
    'monotonic',
  )
  t.ok(result.jobDir.startsWith(workDir))
})

t.test('a portrait clip without audio gets portrait video-only renditions', async (t) => {
  const source = makeClip(tmp.dir, 'portrait.mp4', { width: 720, height: 1280, durationS: 4, hasAudio: false })
  const result = await transcode({
    sourcePath: source,
    workDir: freshWorkDir('portrait'),
    videoId: 'portrait',
    preset: 'ultrafast',
  })
  t.same(
    result.renditions.map((r) => `${r.name}=${r.width}x${r.height}`),
    ['240p=240x426', '360p=360x640', '480p=480x854', '720p=720x1280'],
  )
  t.equal(result.audio, null)
  t.notOk(result.outputs.some((o) => o.key.includes('/audio/')))
  const masterPath = result.outputs.at(-1)?.path as string
  const master = parseMaster(readFileSync(masterPath, 'utf8'))
  t.equal(master.audio.length, 0)
  t.ok(
    master.variants.every(
      (v) => v.audioGroupId === undefined && v.codecs?.startsWith('avc1.') && !v.codecs.includes('mp4a'),
    ),
  )
  t.match(
    readFileSync(result.outputs.find((o) => o.key.endsWith('.vtt'))?.path as string, 'utf8'),
    /#xywh=\d+,\d+,90,160/,
  )
})

t.test('sources that are not videos fail with coded non-retryable errors and leave nothing behind', async (t) => {
  const table: [string, string, string][] = [
    ['audio only', makeAudioOnly(tmp.dir), 'ERR_TRANSCODE_NOT_VIDEO'],
    ['random bytes', makeGarbage(tmp.dir), 'ERR_TRANSCODE_CORRUPT'],
    ['truncated mp4', makeTruncated(tmp.dir, landscape), 'ERR_TRANSCODE_CORRUPT'],
  ]
  for (const [name, sourcePath, code] of table) {
    const workDir = freshWorkDir(`bad-${name.replace(/\W/g, '-')}`)
    let progressed = 0
    const err = await transcode({ sourcePath, workDir, videoId: 'bad', onProgress: (f) => (progressed = f) }).catch(
      (e: unknown) => e,
    )
    t.match(err, { code, status: 422 }, name)
    t.equal(isRetryableTranscodeError(err), false, `${name} is not retryable`)
    t.same(readdirSync(workDir), [], `${name}: work files removed`)
    t.ok(progressed < 1)
  }
})

t.test('an abort kills ffmpeg mid-encode, rejects promptly and removes the work files', async (t) => {
  const workDir = freshWorkDir('abort')
  const ac = new AbortController()
  let abortedAt = 0
  const run = transcode({
    sourcePath: landscape,
    workDir,
    videoId: 'abort',
    preset: 'ultrafast',
    signal: ac.signal,
    onProgress: (_f, phase) => {
      if (phase === 'transcode' && abortedAt === 0) {
        abortedAt = Date.now()
        ac.abort(new Error('worker shutting down'))
      }
    },
  })
  const err = await run.catch((e: unknown) => e)
  t.match(err, { code: 'ERR_TRANSCODE_ABORTED' })
  t.equal(isRetryableTranscodeError(err), true, 'an aborted job runs again elsewhere')
  t.ok(Date.now() - abortedAt < 3000, `rejected ${Date.now() - abortedAt} ms after the abort`)
  t.same(readdirSync(workDir), [])
})

t.test('validates its options naming the field', async (t) => {
  const base = { sourcePath: landscape, workDir: tmp.dir, videoId: 'x' }
  await t.rejects(transcode({ ...base, videoId: '../etc' }), /options\.videoId/)
  await t.rejects(transcode({ ...base, videoId: 'a/b' }), /options\.videoId/)
  await t.rejects(transcode({ ...base, preset: 'fastest' as never }), /options\.preset/)
  await t.rejects(transcode({ ...base, timeoutMs: 0 }), /options\.timeoutMs/)
  await t.rejects(transcode({ ...base, sourcePath: '' }), /options\.sourcePath/)
  t.notOk(existsSync(join(tmp.dir, 'x')))
})
