// The Kafka job bus with the origin's metadata as its state store: the same JobBus contract on a
// real KRaft broker, and the state readable from the jobs table by a second bus (another process).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { connectKafkaJobBus, type KafkaJobBusOptions } from '../../shared/bus/index.js'
import { fakeClock, jobBusContract } from '../../shared/bus/test/contract.js'
import { startKafkaBroker, tempDir, type KafkaBroker } from '../../shared/testing/index.js'
import { pino } from 'pino'
import { MetadataDb, openDb } from '../src/db.js'
import { sqliteJobStateStore } from '../src/job-state.js'
import { VideoLifecycle } from '../src/videos.js'

let broker: KafkaBroker
t.before(async () => {
  broker = await startKafkaBroker()
})
t.teardown(() => broker?.close())

function busOptions(): KafkaJobBusOptions {
  const prefix = `o${randomBytes(4).toString('hex')}.`
  return { brokers: broker.bootstrap, topicPrefix: prefix, groupId: `${prefix}group`, timeoutMs: 60_000 }
}

t.test('KafkaJobBus with the origin’s SQLite state passes the JobBus contract', async (t) => {
  jobBusContract(t, async (opts) => {
    const tmp = tempDir('vcdn-kafka-state-')
    const db = openDb(join(tmp.dir, 'meta.db'))
    const bus = await connectKafkaJobBus({ ...busOptions(), ...opts, state: sqliteJobStateStore(db) })
    return {
      bus,
      cleanup: async () => {
        await bus.close()
        db.close()
        tmp.remove()
      },
    }
  })
})

t.test('job progress, results and dead letters land in the jobs table', async (t) => {
  const tmp = tempDir('vcdn-kafka-state-')
  t.teardown(tmp.remove)
  const db = openDb(join(tmp.dir, 'meta.db'))
  t.teardown(() => db.close())
  const clock = fakeClock()
  const bus = await connectKafkaJobBus({ ...busOptions(), now: clock.now, state: sqliteJobStateStore(db) })
  t.teardown(() => bus.close())
  const ok = await bus.enqueue('transcode', 'vidOk', { sourceKey: 'src/vidOk' })
  const bad = await bus.enqueue('transcode', 'vidBad', {})
  const first = await bus.claim('w1', 30_000)
  const second = await bus.claim('w1', 30_000)
  t.same([first?.id, second?.id], [ok.id, bad.id])
  await bus.heartbeat(ok.id, 'w1', 30_000, 0.5)
  const row = db.prepare(`SELECT status, progress, worker_id, payload FROM jobs WHERE id = ?`).get(ok.id)
  t.same(row, { status: 'leased', progress: 0.5, worker_id: 'w1', payload: '{"sourceKey":"src/vidOk"}' })
  await bus.complete(ok.id, 'w1', { durationS: 20 })
  await bus.fail(bad.id, 'w1', { code: 'ERR_TRANSCODE_NOT_VIDEO', message: 'no video stream', isRetryable: false })
  const rows = db.prepare(`SELECT id, status, result, last_error FROM jobs ORDER BY created_at, id`).all()
  t.same(
    new Map((rows as { id: string }[]).map((r) => [r.id, r])),
    new Map([
      [ok.id, { id: ok.id, status: 'done', result: '{"durationS":20}', last_error: null }],
      [
        bad.id,
        {
          id: bad.id,
          status: 'failed',
          result: null,
          last_error: '{"code":"ERR_TRANSCODE_NOT_VIDEO","message":"no video stream","isRetryable":false}',
        },
      ],
    ]),
  )
  t.same(
    sqliteJobStateStore(db)
      .failed()
      .map((j) => j.videoId),
    ['vidBad'],
  )
})

t.test('the video lifecycle drives the Kafka bus through its outbox as it drives the embedded queue', async (t) => {
  const tmp = tempDir('vcdn-kafka-state-')
  t.teardown(tmp.remove)
  const meta = new MetadataDb(openDb(join(tmp.dir, 'meta.db')))
  t.teardown(() => meta.close())
  const clock = fakeClock()
  const bus = await connectKafkaJobBus({ ...busOptions(), now: clock.now, state: sqliteJobStateStore(meta.db) })
  t.teardown(() => bus.close())
  const videos = new VideoLifecycle({ meta, bus, log: pino({ level: 'silent' }), now: clock.now })
  t.teardown(() => videos.close())
  const video = videos.create('alice', '')
  const upload = { uploadId: 'u', sha256: '00', sourceKey: `sources/${video.id}/source` }
  t.equal(await videos.uploaded(video.id, upload), true)
  t.equal(videos.get(video.id)?.status, 'queued')
  const job = await bus.claim('w1', 30_000)
  t.equal(job?.videoId, video.id)
  t.same(job?.payload, { sourceKey: upload.sourceKey })
  t.equal(videos.claimed(video.id), true)
  await bus.complete(job?.id ?? '', 'w1', { durationS: 1, renditions: [], thumbnails: null })
  t.equal(videos.completed(video.id, { durationS: 1, renditions: [], thumbnails: null }), true)
  t.equal(videos.get(video.id)?.status, 'ready')
  t.equal(
    (meta.db.prepare(`SELECT count(*) AS n FROM job_outbox`).get() as { n: number }).n,
    0,
    'the outbox is empty once the bus has the job',
  )
  t.equal(await bus.claim('w2', 30_000), null, 'one job for one upload')
})
