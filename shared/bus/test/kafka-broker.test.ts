// The test broker itself (shared/testing/kafka-broker.ts): a real single-node KRaft Kafka from the
// jars `make kafka` fetched. It starts, takes a new topic, and a message round-trips through it
// with the client the Kafka job bus uses (node-rdkafka). Timings are printed for the README.
import t from 'tap'
import { connect, createServer } from 'node:net'
import Kafka from 'node-rdkafka'
import { startKafkaBroker } from '../../testing/index.js'

const DEADLINE_MS = 60_000

/** node-rdkafka's errors are plain objects in its types: wrap one as an Error that keeps its code. */
function kerr(err: Kafka.LibrdKafkaError): Error {
  return Object.assign(new Error(err.message), { code: err.code })
}

function withDeadline<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${what}: no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

t.test('the KRaft broker starts on loopback, creates a topic and round-trips a message', async (t) => {
  const broker = await startKafkaBroker()
  t.teardown(() => broker.close())
  t.comment(`broker started in ${Math.round(broker.startMs)} ms on ${broker.bootstrap}`)
  t.match(broker.bootstrap, /^127\.0\.0\.1:\d+$/)

  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': broker.bootstrap })
  t.teardown(() => admin.disconnect())
  await withDeadline(
    'createTopic',
    new Promise<void>((res, rej) =>
      admin.createTopic({ topic: 'roundtrip', num_partitions: 2, replication_factor: 1 }, DEADLINE_MS, (err) =>
        err ? rej(kerr(err)) : res(),
      ),
    ),
  )

  const producer = new Kafka.HighLevelProducer({ 'metadata.broker.list': broker.bootstrap }, { acks: -1 })
  await withDeadline(
    'producer connect',
    new Promise<unknown>((res, rej) => producer.connect({}, (err, m) => (err ? rej(kerr(err)) : res(m)))),
  )
  t.teardown(() => new Promise<void>((res) => producer.disconnect(() => res())))
  const offset = await withDeadline(
    'produce',
    new Promise<number>((res, rej) => {
      producer.produce(
        'roundtrip',
        null,
        Buffer.from('hello kafka'),
        'video-1',
        Date.now(),
        (err: Kafka.LibrdKafkaError | null, off?: number | null) => (err ? rej(kerr(err)) : res(off ?? -1)),
      )
    }),
  )
  t.equal(offset, 0, 'the first message of its partition')

  const consumer = new Kafka.KafkaConsumer(
    { 'metadata.broker.list': broker.bootstrap, 'group.id': 'roundtrip-test', 'enable.auto.commit': false },
    { 'auto.offset.reset': 'earliest' },
  )
  await withDeadline(
    'consumer connect',
    new Promise<unknown>((res, rej) => consumer.connect({}, (err, m) => (err ? rej(kerr(err)) : res(m)))),
  )
  t.teardown(() => new Promise<void>((res) => consumer.disconnect(() => res())))
  consumer.subscribe(['roundtrip'])
  consumer.setDefaultConsumeTimeout(200)
  const got = await withDeadline(
    'consume',
    (async () => {
      for (;;) {
        const batch = await new Promise<Kafka.Message[]>((res, rej) =>
          consumer.consume(10, (err, msgs) => (err ? rej(kerr(err)) : res(msgs))),
        )
        if (batch.length > 0) return batch
      }
    })(),
  )
  t.equal(got.length, 1)
  t.equal(got[0]?.value?.toString(), 'hello kafka')
  t.equal(got[0]?.key?.toString(), 'video-1')
})

t.test('a stopped broker is gone and a restarted one serves again', async (t) => {
  const broker = await startKafkaBroker()
  t.teardown(() => broker.close())
  await broker.stop()
  const refused = await new Promise<boolean>((res) => {
    const sock = connect(broker.port, '127.0.0.1')
    sock.once('connect', () => (sock.destroy(), res(false)))
    sock.once('error', () => res(true))
  })
  t.ok(refused, 'nothing listens on the broker port once it is stopped')
  await broker.restart()
  t.comment(`restart took ${Math.round(broker.startMs)} ms`)
  t.match(broker.output(), /Kafka Server started/)
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': broker.bootstrap })
  t.teardown(() => admin.disconnect())
  await withDeadline(
    'createTopic after restart',
    new Promise<void>((res, rej) =>
      admin.createTopic({ topic: 'after-restart', num_partitions: 1, replication_factor: 1 }, DEADLINE_MS, (err) =>
        err ? rej(kerr(err)) : res(),
      ),
    ),
  )
  t.pass('the restarted broker took a topic')
})

t.test('a port taken before the JVM binds it: the start is retried on new ports', async (t) => {
  // Stop 21's CI: another server started beside the broker took its port in the seconds between
  // choosing it and the JVM's bind; the broker exited and the test failed.
  const taken = createServer()
  t.teardown(() => new Promise<void>((res) => taken.close(() => res())))
  const attempts: number[] = []
  const broker = await startKafkaBroker({
    beforeSpawn: async ({ port, attempt }) => {
      attempts.push(port)
      if (attempt === 1) await new Promise<void>((res) => taken.listen(port, '127.0.0.1', () => res()))
    },
  })
  t.teardown(() => broker.close())
  t.equal(attempts.length, 2, 'a second attempt after the first could not bind')
  t.not(broker.port, attempts[0], 'on a port other than the taken one')
  t.equal(broker.port, attempts[1])
  await new Promise<void>((res, rej) => {
    const s = connect(broker.port, '127.0.0.1', () => (s.end(), res()))
    s.once('error', rej)
  })
  t.pass('the broker listens on its new port')
})
