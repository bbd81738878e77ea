// The Kafka job bus against the JobBus contract and against Kafka's own promises, on a real
// single-node KRaft broker (shared/testing/kafka-broker.ts). Each test gets its own topics and
// consumer group (a random prefix), so they share one broker without seeing each other's jobs.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import Kafka from 'node-rdkafka'
import { startKafkaBroker, type KafkaBroker } from '../../testing/index.js'
import {
  connectKafkaJobBus,
  JOB_KIND_AUDIO,
  JOB_KIND_CHUNK,
  memoryJobStateStore,
  type KafkaJobBusOptions,
} from '../index.js'
import { fakeClock, jobBusContract } from './contract.js'

const LEASE_MS = 30_000
const READ_DEADLINE_MS = 60_000

let broker: KafkaBroker
t.before(async () => {
  broker = await startKafkaBroker()
  t.comment(`broker started in ${Math.round(broker.startMs)} ms`)
})
t.teardown(() => broker?.close())

const uniquePrefix = (): string => `t${randomBytes(4).toString('hex')}.`

function busOptions(prefix: string, extra: Partial<KafkaJobBusOptions> = {}): KafkaJobBusOptions {
  return {
    brokers: broker.bootstrap,
    topicPrefix: prefix,
    groupId: `${prefix}group`,
    timeoutMs: READ_DEADLINE_MS,
    ...extra,
  }
}

/** node-rdkafka's errors are plain objects in its types: wrap one as an Error that keeps its code. */
function kerr(err: Kafka.LibrdKafkaError): Error {
  return Object.assign(new Error(err.message), { code: err.code })
}

/** Every message of a topic, read by a consumer of its own group from the start. */
async function readTopic(topic: string, count: number): Promise<Kafka.Message[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': broker.bootstrap,
      'group.id': `reader-${randomBytes(4).toString('hex')}`,
      'enable.auto.commit': false,
    },
    { 'auto.offset.reset': 'earliest' },
  )
  await new Promise<void>((res, rej) => consumer.connect({}, (err) => (err ? rej(kerr(err)) : res())))
  try {
    consumer.subscribe([topic])
    consumer.setDefaultConsumeTimeout(200)
    const got: Kafka.Message[] = []
    const deadline = Date.now() + READ_DEADLINE_MS
    while (got.length < count) {
      if (Date.now() > deadline)
        throw new Error(`${topic}: ${got.length} of ${count} messages within ${READ_DEADLINE_MS} ms`)
      const batch = await new Promise<Kafka.Message[]>((res, rej) =>
        consumer.consume(10, (err, m) => (err ? rej(kerr(err)) : res(m))),
      )
      got.push(...batch)
    }
    return got
  } finally {
    await new Promise<void>((res) => consumer.disconnect(() => res()))
  }
}

t.test('KafkaJobBus passes the JobBus contract', async (t) => {
  jobBusContract(t, async (opts) => {
    const bus = await connectKafkaJobBus({ ...busOptions(uniquePrefix()), ...opts })
    return { bus, cleanup: () => bus.close() }
  })
})

t.test('an unfinished job is not committed: the next group member runs it again', async (t) => {
  const prefix = uniquePrefix()
  const clock = fakeClock()
  // One state store for both members, as the origin's metadata would be.
  const state = memoryJobStateStore()
  const first = await connectKafkaJobBus(busOptions(prefix, { now: clock.now, state }))
  const job = await first.enqueue('transcode', 'vidA', { n: 1 })
  const done = await first.enqueue('transcode', 'vidB', { n: 2 })
  t.equal((await first.claim('w1', LEASE_MS))?.id, job.id)
  t.equal((await first.claim('w1', LEASE_MS))?.id, done.id)
  await first.complete(done.id, 'w1', { ok: true })
  await first.close() // dies holding vidA's lease

  const second = await connectKafkaJobBus(busOptions(prefix, { now: clock.now, state }))
  t.teardown(() => second.close())
  t.equal(await second.claim('w2', LEASE_MS), null, 'the dead worker’s lease is honoured until it ends')
  clock.advance(LEASE_MS + 1)
  const again = await second.claim('w2', LEASE_MS)
  t.equal(again?.id, job.id, 'the job whose offset was never committed comes back')
  t.equal(again?.attempt, 2)
  t.same(again?.payload, { n: 1 })
  t.equal(await second.claim('w2', LEASE_MS), null, 'the completed job does not')
  await second.complete(job.id, 'w2', {})
  t.equal((await second.get(job.id))?.status, 'done')
})

t.test('a job whose member died on its last attempt is dead-lettered by the next member', async (t) => {
  const prefix = uniquePrefix()
  const state = memoryJobStateStore()
  const clock = fakeClock()
  const first = await connectKafkaJobBus(busOptions(prefix, { state, now: clock.now, maxAttempts: 1 }))
  const job = await first.enqueue('transcode', 'vidX', {})
  t.equal((await first.claim('w1', LEASE_MS))?.attempt, 1)
  await first.close() // dies mid-job on its only attempt
  const exhausted: string[] = []
  const second = await connectKafkaJobBus(
    busOptions(prefix, { state, now: clock.now, maxAttempts: 1, onLeaseExhausted: (j) => exhausted.push(j.id) }),
  )
  t.teardown(() => second.close())
  t.equal(await second.claim('w2', LEASE_MS), null, 'still leased')
  t.same(exhausted, [])
  clock.advance(LEASE_MS + 1)
  t.equal(await second.claim('w2', LEASE_MS), null, 'not run a second time')
  t.equal((await second.get(job.id))?.status, 'failed')
  t.equal((await second.get(job.id))?.lastError?.code, 'ERR_JOB_LEASE_EXPIRED')
  t.same(exhausted, [job.id])
  const [dead] = await readTopic(`${prefix}transcode.dead-letter`, 1)
  t.equal((JSON.parse(dead?.value?.toString() ?? '{}') as { id?: string }).id, job.id)
})

t.test('offsets are committed once jobs complete: a member with no shared state gets nothing', async (t) => {
  const prefix = uniquePrefix()
  const first = await connectKafkaJobBus(busOptions(prefix))
  const ids = new Set<string>()
  for (const v of ['a', 'b', 'c', 'd']) ids.add((await first.enqueue('transcode', v, {})).id)
  for (let i = 0; i < 4; i++) {
    const job = await first.claim('w1', LEASE_MS)
    t.ok(job && ids.has(job.id))
    if (job) await first.complete(job.id, 'w1', {})
  }
  await first.close()
  // Its own empty state store: only Kafka's committed offsets keep it from running them again.
  const second = await connectKafkaJobBus(busOptions(prefix, { state: memoryJobStateStore() }))
  t.teardown(() => second.close())
  t.equal(await second.claim('w2', LEASE_MS), null)
})

t.test('two members of one group split the partitions and never run a job twice', async (t) => {
  const prefix = uniquePrefix()
  const state = memoryJobStateStore()
  const a = await connectKafkaJobBus(busOptions(prefix, { state, partitions: 4 }))
  t.teardown(() => a.close())
  const ids = new Set<string>()
  for (let i = 0; i < 16; i++) ids.add((await a.enqueue('transcode', `video-${i}`, { i })).id)
  // A joins alone and buffers everything; B's arrival revokes half of A's partitions.
  const b = await connectKafkaJobBus(busOptions(prefix, { state, partitions: 4 }))
  t.teardown(() => b.close())
  const byMember = { a: [] as string[], b: [] as string[] }
  const drain = async (bus: typeof a, name: 'a' | 'b'): Promise<void> => {
    for (;;) {
      const job = await bus.claim(`${name}-worker`, LEASE_MS)
      if (job === null) return
      byMember[name].push(job.id)
      await bus.complete(job.id, `${name}-worker`, {})
    }
  }
  await Promise.all([drain(a, 'a'), drain(b, 'b')])
  const all = [...byMember.a, ...byMember.b]
  t.equal(all.length, 16, 'every job ran')
  t.equal(new Set(all).size, 16, 'none ran twice')
  t.ok(
    byMember.a.length > 0 && byMember.b.length > 0,
    `both members worked (${byMember.a.length} + ${byMember.b.length})`,
  )
})

t.test('a retryable failure goes through the retry topic, a final one to the dead-letter topic', async (t) => {
  const prefix = uniquePrefix()
  const clock = fakeClock()
  const bus = await connectKafkaJobBus(busOptions(prefix, { now: clock.now, maxAttempts: 2, backoffBaseMs: 1000 }))
  t.teardown(() => bus.close())
  const job = await bus.enqueue('transcode', 'vid9', { sourceKey: 'src/vid9' })
  await bus.claim('w1', LEASE_MS)
  await bus.fail(job.id, 'w1', { code: 'ERR_TRANSCODE_FFMPEG', message: 'exit 1', isRetryable: true })
  clock.advance(1000)
  t.equal((await bus.claim('w1', LEASE_MS))?.attempt, 2)
  const failed = await bus.fail(job.id, 'w1', {
    code: 'ERR_TRANSCODE_FFMPEG',
    message: 'exit 1 again',
    isRetryable: true,
  })
  t.equal(failed.status, 'failed')

  const [retry] = await readTopic(`${prefix}transcode.retry`, 1)
  const retryMsg = JSON.parse(retry?.value?.toString() ?? '{}') as Record<string, unknown>
  t.equal(retry?.key?.toString(), 'vid9', 'keyed by video id')
  t.equal(retryMsg.id, job.id)
  t.equal(retryMsg.attempt, 1)
  t.equal(retryMsg.runAfterMs, clock.now(), 'carries the end of its backoff (the clock has moved by it since)')

  const [dead] = await readTopic(`${prefix}transcode.dead-letter`, 1)
  const deadMsg = JSON.parse(dead?.value?.toString() ?? '{}') as Record<string, unknown>
  t.equal(deadMsg.id, job.id)
  t.equal(deadMsg.attempt, 2)
  t.same(deadMsg.lastError, { code: 'ERR_TRANSCODE_FFMPEG', message: 'exit 1 again', isRetryable: true })
  t.same(deadMsg.payload, { sourceKey: 'src/vid9' })
})

/** Produces one raw message, as another member's bus would, and waits for its acknowledgement. */
async function produceRaw(topic: string, key: string, value: unknown): Promise<void> {
  const producer = new Kafka.HighLevelProducer({ 'metadata.broker.list': broker.bootstrap }, { acks: -1 })
  await new Promise<void>((res, rej) => producer.connect({}, (err) => (err ? rej(kerr(err)) : res())))
  producer.setPollInterval(20)
  try {
    await new Promise<void>((res, rej) => {
      producer.produce(topic, null, Buffer.from(JSON.stringify(value)), key, Date.now(), (err) =>
        err ? rej(kerr(err)) : res(),
      )
    })
  } finally {
    await new Promise<void>((res) => producer.disconnect(() => res()))
  }
}

t.test('a retry message consumed before its produce is acknowledged neither replaces nor loses the job', async (t) => {
  // fail() republishes to the retry topic and settles the job's delivery once the broker
  // acknowledges; the member may consume the retry message first. Here that message is produced
  // (exactly as fail() writes it) while the job is still leased, so the order is not left to chance.
  const prefix = uniquePrefix()
  const clock = fakeClock()
  const bus = await connectKafkaJobBus(busOptions(prefix, { now: clock.now, backoffBaseMs: 1000 }))
  const job = await bus.enqueue('transcode', 'vid-early', { n: 1 })
  const leased = await bus.claim('w1', LEASE_MS)
  t.equal(leased?.id, job.id)
  const lastError = { code: 'ERR_TRANSCODE_FFMPEG', message: 'exit 1', isRetryable: true }
  await produceRaw(`${prefix}transcode.retry`, 'vid-early', {
    id: job.id,
    kind: 'transcode',
    videoId: 'vid-early',
    payload: { n: 1 },
    attempt: 1,
    maxAttempts: job.maxAttempts,
    runAfterMs: clock.now() + 1000,
    createdAtMs: job.createdAtMs,
    seq: 0,
    lastError,
  })
  t.equal(await bus.claim('w2', LEASE_MS), null, 'the early retry waits: its job is still leased')
  t.equal((await bus.fail(job.id, 'w1', lastError)).status, 'queued')
  clock.advance(1000)
  const again = await bus.claim('w1', LEASE_MS)
  t.equal(again?.id, job.id, 'the job runs again after its backoff')
  t.equal(again?.attempt, 2)
  if (again) await bus.complete(again.id, 'w1', {})
  t.equal(await bus.claim('w1', LEASE_MS), null, 'and not a third time: the second retry message is settled')
  await bus.close()
  // Its own empty state store: only committed offsets keep it from running the job again.
  const fresh = await connectKafkaJobBus(busOptions(prefix, { state: memoryJobStateStore() }))
  t.teardown(() => fresh.close())
  t.equal(await fresh.claim('w3', LEASE_MS), null, "the job's enqueue offset was committed, not only the retry's")
})

t.test('jobs are keyed by video id: one video stays in one partition', async (t) => {
  const prefix = uniquePrefix()
  const bus = await connectKafkaJobBus(busOptions(prefix, { partitions: 4 }))
  t.teardown(() => bus.close())
  for (let i = 0; i < 6; i++) await bus.enqueue('transcode', i % 2 === 0 ? 'even' : 'odd', { i })
  const msgs = await readTopic(`${prefix}transcode`, 6)
  const partitionsOf = (key: string): Set<number> =>
    new Set(msgs.filter((m) => m.key?.toString() === key).map((m) => m.partition))
  t.equal(partitionsOf('even').size, 1)
  t.equal(partitionsOf('odd').size, 1)
})

t.test("a split video's chunk jobs are keyed per chunk: they spread over the partitions", async (t) => {
  const prefix = uniquePrefix()
  const bus = await connectKafkaJobBus(busOptions(prefix, { partitions: 4, kinds: [JOB_KIND_CHUNK] }))
  t.teardown(() => bus.close())
  const count = 8
  for (let index = 0; index < count; index++) {
    await bus.enqueue(JOB_KIND_CHUNK, 'long', {
      sourceKey: 'sources/long',
      index,
      startS: index * 32,
      lengthS: 32,
      count,
    })
  }
  const msgs = await readTopic(`${prefix}${JOB_KIND_CHUNK}`, count)
  t.same(
    msgs.map((m) => m.key?.toString()).sort(),
    Array.from({ length: count }, (_, i) => `long/${i}`).sort(),
    'each keyed by its video and index',
  )
  const partitions = new Set(msgs.map((m) => m.partition))
  t.ok(partitions.size > 1, `on more than one partition (${[...partitions].join(', ')}), so more than one member`)
  // A retry keeps the chunk's key (and so its partition).
  const job = await bus.claim('w1', LEASE_MS)
  if (job === null) throw new Error('nothing to claim')
  await bus.fail(job.id, 'w1', { code: 'ERR_TRANSCODE_FFMPEG', message: 'crashed', isRetryable: true })
  const [retry] = await readTopic(`${prefix}${JOB_KIND_CHUNK}.retry`, 1)
  t.equal(retry?.key?.toString(), `long/${String(job.payload['index'])}`, 'the retry message has the same key')
})

t.test("a split video's audio job is keyed <videoId>/audio, apart from its chunks and its stitch", async (t) => {
  const prefix = uniquePrefix()
  const bus = await connectKafkaJobBus(busOptions(prefix, { partitions: 4, kinds: [JOB_KIND_AUDIO] }))
  t.teardown(() => bus.close())
  await bus.enqueue(JOB_KIND_AUDIO, 'long', { sourceKey: 'sources/long' })
  const [msg] = await readTopic(`${prefix}${JOB_KIND_AUDIO}`, 1)
  t.equal(msg?.key?.toString(), 'long/audio')
})

t.test('a broker restarted mid-run loses no job and runs none twice', async (t) => {
  const prefix = uniquePrefix()
  const clock = fakeClock()
  const bus = await connectKafkaJobBus(busOptions(prefix, { now: clock.now }))
  const ids = new Set<string>()
  for (let i = 0; i < 6; i++) ids.add((await bus.enqueue('transcode', `video-${i}`, { i })).id)
  const before = [await bus.claim('w1', LEASE_MS), await bus.claim('w2', LEASE_MS)]
  await broker.restart() // a clean stop and start: same ports, same log dir
  t.comment(`broker back in ${Math.round(broker.startMs)} ms`)
  const completed: string[] = []
  for (const job of before) {
    if (job === null) continue
    await bus.complete(job.id, job.workerId ?? '', {})
    completed.push(job.id)
  }
  for (;;) {
    const job = await bus.claim('w3', LEASE_MS)
    if (job === null) break
    await bus.complete(job.id, 'w3', {})
    completed.push(job.id)
  }
  t.equal(completed.length, 6, 'every job ran to completion')
  t.same(new Set(completed), ids, 'each once')
  await bus.close()
  // A member with an empty state store: only the committed offsets keep it from rerunning them.
  const fresh = await connectKafkaJobBus(busOptions(prefix, { state: memoryJobStateStore() }))
  t.teardown(() => fresh.close())
  t.equal(await fresh.claim('w4', LEASE_MS), null, 'every offset was committed after the restart')
})

t.test('a broker that is down is a coded error at connect, not a hang', async (t) => {
  const bus = connectKafkaJobBus({ brokers: '127.0.0.1:1', topicPrefix: uniquePrefix(), timeoutMs: 3000 })
  await t.rejects(bus, { code: 'ERR_JOB_BUS_UNAVAILABLE' })
})
