// VideoLifecycle: every event against every status (allowed → the new status, refused →
// ERR_VIDEO_STATE and nothing written), and the status change and its job committing together.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { pino } from 'pino'
import type { EnqueueOptions, Job, JobBus } from '../../shared/bus/index.js'
import { tempDir } from '../../shared/testing/index.js'
import { MetadataDb, openDb, type VideoStatus } from '../src/db.js'
import { SqliteJobQueue } from '../src/job-queue.js'
import { VIDEO_EVENTS, VIDEO_STATUSES, VideoLifecycle, type VideoEvent } from '../src/videos.js'

const log = pino({ level: 'silent' })
const RESULT = { durationS: 4, renditions: [], thumbnails: null }
const SHOWN = { code: 'ERR_TRANSCODE_CORRUPT', message: 'x' }

function setup(t: Test, bus?: (queue: SqliteJobQueue) => JobBus) {
  const tmp = tempDir('vcdn-videos-')
  t.teardown(tmp.remove)
  const meta = new MetadataDb(openDb(join(tmp.dir, 'meta.db')))
  t.teardown(() => meta.close())
  const queue = new SqliteJobQueue({ db: meta.db, now: () => 1000 })
  const videos = new VideoLifecycle({ meta, bus: bus === undefined ? queue : bus(queue), log, now: () => 2000 })
  t.teardown(() => videos.close())
  /** A video in `status`, with a source (as any video past its upload has). */
  const videoIn = (status: VideoStatus): string => {
    const v = videos.create('alice', '')
    meta.setStatus(v.id, status, 1500, { sourceKey: `sources/${v.id}/source` })
    return v.id
  }
  return { meta, queue, videos, videoIn }
}

/** Runs one event on a video; resolves to whether it happened. */
async function run(videos: VideoLifecycle, event: VideoEvent, id: string): Promise<boolean> {
  switch (event) {
    case 'uploaded':
      return videos.uploaded(id, { uploadId: 'none', sha256: '00', sourceKey: `sources/${id}/source` })
    case 'rejected':
      return videos.rejected(id, { uploadId: 'none', sha256: '00' }, SHOWN)
    case 'claimed':
      return videos.claimed(id)
    case 'completed':
      return videos.completed(id, RESULT)
    case 'retrying':
      return videos.retrying(id, SHOWN)
    case 'failed':
      return videos.failed(id, SHOWN)
    case 'reprocess':
      return (await videos.reprocess(id)).status === 'queued'
  }
}

// The table the docs' diagram draws (docs/architecture.md §7.3): event → statuses it starts from.
const ALLOWED: Record<VideoEvent, VideoStatus[]> = {
  uploaded: ['uploading'],
  rejected: ['uploading'],
  claimed: ['queued', 'processing'],
  completed: ['processing'],
  retrying: ['processing'],
  failed: ['queued', 'processing'],
  reprocess: ['ready', 'failed'],
}
const TO: Record<VideoEvent, VideoStatus> = {
  uploaded: 'queued',
  rejected: 'failed',
  claimed: 'processing',
  completed: 'ready',
  retrying: 'queued',
  failed: 'failed',
  reprocess: 'queued',
}

t.test('the lifecycle table is the one the docs draw', async (t) => {
  for (const event of Object.keys(ALLOWED) as VideoEvent[]) {
    t.same([...VIDEO_EVENTS[event].from].sort(), [...ALLOWED[event]].sort(), `${event} starts from`)
    t.equal(VIDEO_EVENTS[event].to, TO[event], `${event} ends in`)
  }
  t.same(Object.keys(VIDEO_EVENTS).sort(), Object.keys(ALLOWED).sort())
})

for (const event of Object.keys(ALLOWED) as VideoEvent[]) {
  for (const from of VIDEO_STATUSES) {
    const isAllowed = ALLOWED[event].includes(from)
    const name = isAllowed
      ? `${event} moves a ${from} video to ${TO[event]}`
      : `${event} is refused for a ${from} video with ERR_VIDEO_STATE, and nothing changes`
    t.test(name, async (t) => {
      const { meta, queue, videos, videoIn } = setup(t)
      const id = videoIn(from)
      const before = meta.getVideo(id)
      if (isAllowed) {
        t.equal(await run(videos, event, id), true)
        t.equal(meta.getVideo(id)?.status, TO[event])
      } else {
        await t.rejects(run(videos, event, id), { code: 'ERR_VIDEO_STATE' })
        t.same(meta.getVideo(id), before, 'the row is as it was')
        t.equal(await queue.claim('w', 1000), null, 'no job was queued')
      }
    })
  }
}

t.test('every event on a deleted video changes nothing and queues nothing', async (t) => {
  const { queue, videos, videoIn } = setup(t)
  for (const event of Object.keys(ALLOWED) as VideoEvent[]) {
    const id = videoIn(ALLOWED[event][0] as VideoStatus)
    videos.delete(id)
    if (event === 'reprocess') await t.rejects(run(videos, event, id), { code: 'ERR_VIDEO_NOT_FOUND' })
    else t.equal(await run(videos, event, id), false, event)
    t.equal(videos.get(id), null)
  }
  t.equal(await queue.claim('w', 1000), null)
})

t.test('an upload queues exactly one transcode job with the source key', async (t) => {
  const { queue, videos, videoIn } = setup(t)
  const id = videoIn('uploading')
  await run(videos, 'uploaded', id)
  const job = await queue.claim('w', 1000)
  t.equal(job?.videoId, id)
  t.same(job?.payload, { sourceKey: `sources/${id}/source` })
  t.equal(await queue.claim('w', 1000), null)
})

t.test('a reprocess without a source is refused', async (t) => {
  const { meta, videos } = setup(t)
  const v = videos.create('alice', '')
  meta.setStatus(v.id, 'failed', 1500)
  await t.rejects(videos.reprocess(v.id), { code: 'ERR_VIDEO_STATE' })
  t.equal(meta.getVideo(v.id)?.status, 'failed')
})

t.test('a job the bus refuses stays in the outbox and reaches the bus on the next flush, once', async (t) => {
  let isDown = true
  const handed: string[] = []
  const { queue, videos, videoIn } = setup(t, (q) => ({
    enqueue: async (kind: string, videoId: string, payload: Record<string, unknown>, opts?: EnqueueOptions) => {
      if (isDown) throw new Error('bus down')
      handed.push(opts?.id ?? '')
      return q.enqueue(kind, videoId, payload, opts)
    },
    claim: (w, l) => q.claim(w, l),
    heartbeat: (j, w, l, p) => q.heartbeat(j, w, l, p),
    complete: (j, w, r) => q.complete(j, w, r),
    fail: (j, w, e) => q.fail(j, w, e),
    get: (j) => q.get(j),
    deadLetters: () => q.deadLetters(),
  }))
  const id = videoIn('ready')
  const video = await videos.reprocess(id)
  t.equal(video.status, 'queued', 'the status changed though the bus refused its job')
  t.equal(await queue.claim('w', 1000), null, 'not on the bus yet')
  isDown = false
  await videos.start()
  const job: Job | null = await queue.claim('w', 1000)
  t.equal(job?.videoId, id)
  t.same(job?.payload, { sourceKey: `sources/${id}/source`, isReprocess: true })
  await videos.start()
  t.equal(handed.length, 1, 'a flushed row is not sent again')
})

t.test('deleting a video forgets its queued jobs', async (t) => {
  const { queue, videos, videoIn } = setup(t)
  const id = videoIn('uploading')
  await run(videos, 'uploaded', id)
  videos.delete(id)
  t.equal(await queue.claim('w', 1000), null)
})
