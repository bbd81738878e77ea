// Split-and-stitch planning (docs/architecture.md §8): chunks on the segment grid, the last partial
// chunk, validation of the chunk length, and the lifecycle queuing one job per chunk (and, for a
// source with audio, one audio job first) and the stitch exactly once, after the last part.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { pino } from 'pino'
import type { Job } from '../../shared/bus/index.js'
import { tempDir } from '../../shared/testing/index.js'
import { loadOriginConfig } from '../src/config.js'
import { MetadataDb, openDb } from '../src/db.js'
import { SqliteJobQueue } from '../src/job-queue.js'
import { chunkSProblem, JOB_KIND_AUDIO, JOB_KIND_CHUNK, JOB_KIND_STITCH, planChunks } from '../src/split-plan.js'
import { VideoLifecycle } from '../src/videos.js'

const log = pino({ level: 'silent' })
const SPLIT = { splitAboveS: 60, chunkS: 32 }

t.test('a video up to splitAboveS, or of unknown length, is encoded whole', async (t) => {
  t.equal(planChunks(60, SPLIT), null)
  t.equal(planChunks(12, SPLIT), null)
  t.equal(planChunks(null, SPLIT), null)
  t.equal(planChunks(Number.NaN, SPLIT), null)
  // Longer than splitAboveS but within one chunk: nothing to split.
  t.equal(planChunks(100, { splitAboveS: 60, chunkS: 120 }), null)
})

t.test('chunks start on the segment grid and the last one takes the rest', async (t) => {
  t.same(planChunks(130, SPLIT), [
    { index: 0, startS: 0, lengthS: 32 },
    { index: 1, startS: 32, lengthS: 32 },
    { index: 2, startS: 64, lengthS: 32 },
    { index: 3, startS: 96, lengthS: 32 },
    { index: 4, startS: 128, lengthS: 2 },
  ])
  t.same(
    planChunks(128, SPLIT)?.map((c) => [c.startS, c.lengthS]),
    [
      [0, 32],
      [32, 32],
      [64, 32],
      [96, 32],
    ],
    'an exact multiple has no partial chunk',
  )
  t.same(
    planChunks(129.5, SPLIT)?.map((c) => c.lengthS),
    [32, 32, 32, 32, 2],
    'a partial last chunk is rounded up (ffmpeg reads it to the end)',
  )
  for (const c of planChunks(3600, { splitAboveS: 120, chunkS: 60 }) ?? []) t.equal(c.startS % 4, 0)
})

t.test('a remainder under a second joins the chunk before it', async (t) => {
  t.same(
    planChunks(128.4, SPLIT)?.map((c) => [c.startS, c.lengthS]),
    [
      [0, 32],
      [32, 32],
      [64, 32],
      [96, 33],
    ],
  )
})

t.test('the chunk length must be a positive multiple of the 4 s segment', async (t) => {
  t.equal(chunkSProblem(32), null)
  t.equal(chunkSProblem(60), null)
  for (const bad of [0, 30, 6, 4.5, -8]) t.match(chunkSProblem(bad), /transcode\.chunkS must be a positive multiple/)
  t.throws(() => planChunks(500, { splitAboveS: 60, chunkS: 30 }), TypeError)
  const base = { tierSecret: 'origin-test-secret-0123456789abcdef', dataDir: '/tmp/x' }
  t.throws(
    () => loadOriginConfig({ overrides: { ...base, transcode: { chunkS: 30 } }, env: {} }),
    /transcode\.chunkS must be a positive multiple of the 4 s segment duration, got 30/,
  )
  const c = loadOriginConfig({ overrides: base, env: {} })
  t.same(c.transcode, { splitAboveS: 120, chunkS: 60 }, 'defaults')
})

function setup(t: Test) {
  const tmp = tempDir('vcdn-split-')
  t.teardown(tmp.remove)
  const meta = new MetadataDb(openDb(join(tmp.dir, 'meta.db')))
  t.teardown(() => meta.close())
  // The queue's clock moves only when a test moves it (a retry's backoff).
  const clock = { nowMs: 1000 }
  const queue = new SqliteJobQueue({ db: meta.db, now: () => clock.nowMs, backoffBaseMs: 100, backoffMaxMs: 100 })
  const videos = new VideoLifecycle({ meta, bus: queue, log, now: () => 2000, split: SPLIT })
  t.teardown(() => videos.close())
  return { queue, videos, clock }
}

/** Up to `max` jobs in the order the queue hands them out, claimed by w0 and w1 in turn. */
async function claimUpTo(queue: SqliteJobQueue, max: number): Promise<Job[]> {
  const claimed: Job[] = []
  for (let i = 0; i < max; i++) {
    const job = await queue.claim(`w${i % 2}`, 60_000)
    if (job === null) break
    claimed.push(job)
  }
  return claimed
}

t.test('a long upload queues one chunk job per chunk, and the stitch once after the last chunk', async (t) => {
  const { queue, videos } = setup(t)
  const v = videos.create('alice', '')
  t.ok(
    await videos.uploaded(v.id, { uploadId: 'u', sha256: '00', sourceKey: `sources/${v.id}/source`, durationS: 130 }),
  )
  const claimed = await claimUpTo(queue, 6)
  t.same(
    claimed.map((j) => [j.kind, j.payload['index'], j.payload['startS'], j.payload['count']]),
    [0, 1, 2, 3, 4].map((k) => [JOB_KIND_CHUNK, k, k * 32, 5]),
    'five chunk jobs and no stitch yet',
  )
  for (const j of claimed) videos.claimed(v.id, { index: j.payload['index'] as number, workerId: j.workerId as string })
  t.same(videos.chunks(v.id), { done: 0, total: 5, workers: ['w0', 'w1'], attempts: [1, 1, 1, 1, 1], audio: null })
  t.ok((await videos.chunkCompleted(v.id, 4)) === false)
  t.ok(videos.retrying(v.id, { code: 'ERR_TRANSCODE_FFMPEG', message: 'x' }), 'chunk 0 waits out a retry')
  t.equal(videos.get(v.id)?.progress, 0.18, 'a retrying chunk keeps the progress of the done ones')
  videos.claimed(v.id, { index: 0, workerId: 'w1' })
  t.same(videos.chunks(v.id)?.attempts, [2, 1, 1, 1, 1], 'claims are counted per chunk')
  for (const k of [0, 1, 2]) t.equal(await videos.chunkCompleted(v.id, k), false, `chunk ${k} is not the last`)
  t.equal(await queue.claim('w0', 60_000), null, 'no stitch before every chunk is done')
  t.equal(await videos.chunkCompleted(v.id, 3), true, 'the last chunk queues the stitch')
  t.equal(await videos.chunkCompleted(v.id, 3), false, 'a repeated completion queues nothing more')
  const stitch = await queue.claim('w1', 60_000)
  t.equal(stitch?.kind, JOB_KIND_STITCH)
  t.same(
    stitch?.payload,
    { sourceKey: `sources/${v.id}/source`, count: 5, hasAudioJob: false },
    'the audio was unknown (no probe figure): no audio job, the stitch encodes it',
  )
  t.equal(await queue.claim('w1', 60_000), null, 'one stitch')
  t.equal(videos.get(v.id)?.progress, 0.9, 'progress counts chunks')
  t.ok(videos.claimed(v.id, 'stitch'))
  t.equal(videos.get(v.id)?.progress, 0.9, 'the stitch claim keeps the chunks’ progress')
})

t.test('a long upload with audio queues its audio job first, retried alone; the stitch waits for it', async (t) => {
  const { queue, videos, clock } = setup(t)
  const v = videos.create('alice', '')
  const sourceKey = `sources/${v.id}/source`
  t.ok(await videos.uploaded(v.id, { uploadId: 'u', sha256: '00', sourceKey, durationS: 130, audioStreams: 2 }))
  const claimed = await claimUpTo(queue, 7)
  t.same(
    claimed.map((j) => [j.kind, j.payload['index']]),
    [[JOB_KIND_AUDIO, undefined], ...[0, 1, 2, 3, 4].map((k) => [JOB_KIND_CHUNK, k])],
    'the audio job first, so it runs beside the chunks, then five chunk jobs, no stitch yet',
  )
  t.same(claimed[0]?.payload, { sourceKey }, 'the audio job encodes the whole source')
  const [audio, ...chunks] = claimed
  if (audio === undefined) throw new Error('no audio job')
  videos.claimed(v.id, { index: -1, workerId: 'w0' })
  for (const j of chunks) videos.claimed(v.id, { index: j.payload['index'] as number, workerId: j.workerId as string })
  t.same(videos.chunks(v.id), {
    done: 0,
    total: 5,
    workers: ['w1', 'w0'],
    attempts: [1, 1, 1, 1, 1],
    audio: { isDone: false, attempts: 1, workers: ['w0'] },
  })

  // The audio job fails (ffmpeg crashed): it alone goes back to the queue, the chunks run on.
  const failed = await queue.fail(audio.id, 'w0', { code: 'ERR_TRANSCODE_FFMPEG', message: 'x', isRetryable: true })
  t.equal(failed.status, 'queued')
  for (const k of [0, 1, 2, 3, 4])
    t.equal(await videos.chunkCompleted(v.id, k), false, `chunk ${k}: the audio is not done`)
  t.equal(videos.get(v.id)?.progress, 0.9, 'progress counts the chunks')
  clock.nowMs += 1000
  const again = await queue.claim('w1', 60_000)
  t.equal(again?.id, audio.id, 'the audio job alone is claimed again')
  t.equal(await queue.claim('w1', 60_000), null, 'no stitch while the audio is not done')
  videos.claimed(v.id, { index: -1, workerId: 'w1' })
  t.same(videos.chunks(v.id)?.audio, { isDone: false, attempts: 2, workers: ['w0', 'w1'] }, 'claimed twice')
  t.same(videos.chunks(v.id)?.attempts, [1, 1, 1, 1, 1], 'no chunk ran again')

  t.equal(await videos.chunkCompleted(v.id, -1), true, 'the audio, done last, queues the stitch')
  t.equal(await videos.chunkCompleted(v.id, -1), false, 'a repeated completion (idempotent) queues nothing more')
  const stitch = await queue.claim('w0', 60_000)
  t.equal(stitch?.kind, JOB_KIND_STITCH)
  t.same(stitch?.payload, { sourceKey, count: 5, hasAudioJob: true }, 'the stitch copies the audio job’s tracks')
  t.equal(await queue.claim('w0', 60_000), null, 'one stitch')

  // A reprocess plans the audio job again: the last split had one, so the source has audio.
  t.ok(videos.completed(v.id, { durationS: 130, renditions: [], thumbnails: null }))
  await videos.reprocess(v.id)
  t.same(videos.chunks(v.id)?.audio, { isDone: false, attempts: 0, workers: [] }, 'a reprocess has its audio job')
  t.equal((await queue.claim('w0', 60_000))?.kind, JOB_KIND_AUDIO, 'first again')
})

t.test('a reprocess plans from what the upload probe measured, even of a video that never became ready', async (t) => {
  const { queue, videos } = setup(t)
  const v = videos.create('alice', '')
  const sourceKey = `sources/${v.id}/source`
  t.ok(await videos.uploaded(v.id, { uploadId: 'u', sha256: '00', sourceKey, durationS: 130, audioStreams: 1 }))
  t.same(
    (await claimUpTo(queue, 7)).map((j) => j.kind),
    [JOB_KIND_AUDIO, ...Array<string>(5).fill(JOB_KIND_CHUNK)],
    'split, with its audio job',
  )
  t.ok(videos.failed(v.id, { code: 'ERR_TRANSCODE_FFMPEG', message: 'x' }), 'failed before it was ever ready')
  t.equal(videos.get(v.id)?.durationS, null, 'no transcode measured its length')
  t.match(videos.get(v.id), { sourceDurationS: 130, sourceAudioStreams: 1 }, 'the probe’s figures are kept')
  await videos.reprocess(v.id)
  t.same(
    (await claimUpTo(queue, 7)).map((j) => j.kind),
    [JOB_KIND_AUDIO, ...Array<string>(5).fill(JOB_KIND_CHUNK)],
    'the reprocess is split as the first transcode was, its audio job first',
  )
})

t.test('a long upload without audio plans no audio job, and its stitch encodes none', async (t) => {
  const { queue, videos } = setup(t)
  const v = videos.create('alice', '')
  const sourceKey = `sources/${v.id}/source`
  t.ok(await videos.uploaded(v.id, { uploadId: 'u', sha256: '00', sourceKey, durationS: 130, audioStreams: 0 }))
  const kinds = (await claimUpTo(queue, 7)).map((j) => j.kind)
  t.same(kinds, Array(5).fill(JOB_KIND_CHUNK), 'five chunk jobs, no audio job')
  t.equal(videos.chunks(v.id)?.audio, null)
  for (const k of [0, 1, 2, 3]) await videos.chunkCompleted(v.id, k)
  t.equal(await videos.chunkCompleted(v.id, 4), true, 'the last chunk queues the stitch')
  t.same((await queue.claim('w', 60_000))?.payload, { sourceKey, count: 5, hasAudioJob: false })
})

t.test('a short upload is one transcode job', async (t) => {
  const { queue, videos } = setup(t)
  const v = videos.create('alice', '')
  await videos.uploaded(v.id, { uploadId: 'u', sha256: '00', sourceKey: `sources/${v.id}/source`, durationS: 20 })
  t.equal((await queue.claim('w', 60_000))?.kind, 'transcode')
  t.equal(videos.chunks(v.id), null)
})

t.test('a long upload whose frame rate varies is one transcode job, and so is its reprocess', async (t) => {
  const { queue, videos } = setup(t)
  const v = videos.create('alice', '')
  const sourceKey = `sources/${v.id}/source`
  await videos.uploaded(v.id, { uploadId: 'u', sha256: '00', sourceKey, durationS: 130, isVariableFrameRate: true })
  const job = await queue.claim('w', 60_000)
  t.equal(job?.kind, 'transcode', 'whole, not chunks')
  t.equal(await queue.claim('w', 60_000), null, 'and nothing else')
  t.equal(videos.chunks(v.id), null)
  t.equal(videos.get(v.id)?.isSourceVariableFrameRate, true, 'kept with the video')
  t.ok(videos.claimed(v.id))
  t.ok(videos.completed(v.id, { durationS: 130, renditions: [], thumbnails: null }))
  await videos.reprocess(v.id)
  t.equal((await queue.claim('w', 60_000))?.kind, 'transcode', 'a reprocess of it is whole too')
})
