// A producer and an ordered consumer for one Kafka topic (node-rdkafka; docs/architecture.md §9),
// used by the control events (./control.ts): the origin publishes, every edge and shield consumes
// in its own consumer group. Loaded only through ./index.ts's lazy functions, so the embedded
// default never loads the Kafka client's native library.
//
// The consumer hands messages to its handler one at a time, in partition order, and commits a
// message's offset only after the handler settled: a node that stops between the two sees the
// message again on restart (handlers are idempotent). A broker that is down at start or goes away
// later never ends the process: connecting is retried with backoff (logged), and consuming resumes
// once librdkafka reconnects.
import Kafka from 'node-rdkafka'
import { VcdnError } from '../errors/index.js'
import { ensureTopics, withDeadline as raceDeadline } from './kafka-admin.js'

export interface TopicMessage {
  key: string | null
  value: Buffer | null
  partition: number
  offset: number
}

export interface TopicLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

function unavailable(what: string, cause?: unknown): VcdnError {
  return new VcdnError('ERR_CONTROL_UNAVAILABLE', what, cause === undefined ? undefined : { cause })
}

function withDeadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  return raceDeadline(what, ms, p, unavailable)
}

export interface TopicProducerOptions {
  brokers: string
  topic: string
  /** Partitions when the topic is created here (control events: 1, one total order). */
  partitions: number
  timeoutMs: number
}

/** Publishes to one topic; every message acknowledged by all in-sync replicas, once (idempotence). */
export class KafkaTopicProducer {
  readonly #o: TopicProducerOptions
  readonly #producer: Kafka.HighLevelProducer

  private constructor(o: TopicProducerOptions) {
    this.#o = o
    this.#producer = new Kafka.HighLevelProducer(
      { 'metadata.broker.list': o.brokers, 'enable.idempotence': true },
      { acks: -1, 'message.timeout.ms': o.timeoutMs },
    )
  }

  /** Creates the topic when missing and connects; rejects (coded) when the broker does not answer in time. */
  static async connect(o: TopicProducerOptions): Promise<KafkaTopicProducer> {
    const p = new KafkaTopicProducer(o)
    try {
      await ensureTopics(o.brokers, [o.topic], o.partitions, o.timeoutMs, unavailable)
      await withDeadline(
        'producer connect',
        o.timeoutMs,
        new Promise<void>((res, rej) =>
          p.#producer.connect({}, (err) => (err ? rej(unavailable('producer connect', err)) : res())),
        ),
      )
      p.#producer.setPollInterval(20)
    } catch (err) {
      await p.close()
      throw err
    }
    return p
  }

  get topic(): string {
    return this.#o.topic
  }

  /** Resolves with the message's offset once the broker acknowledged it. */
  send(key: string, value: Buffer): Promise<{ topic: string; offset: number | null }> {
    return withDeadline(
      `produce to ${this.#o.topic}`,
      this.#o.timeoutMs,
      new Promise((res, rej) => {
        this.#producer.produce(this.#o.topic, null, value, key, Date.now(), (err, offset) =>
          err
            ? rej(unavailable(`produce to ${this.#o.topic}`, err))
            : res({ topic: this.#o.topic, offset: typeof offset === 'number' ? offset : null }),
        )
      }),
    )
  }

  close(): Promise<void> {
    return new Promise((res) => (this.#producer.isConnected() ? this.#producer.disconnect(() => res()) : res()))
  }
}

export interface TopicConsumerOptions {
  brokers: string
  topic: string
  /** Partitions when the topic is created here. */
  partitions: number
  groupId: string
  timeoutMs: number
  /** Applies one message; a rejection is logged and the message is committed all the same (never retried forever). */
  onMessage: (m: TopicMessage) => Promise<void>
  log: TopicLog
  /** Called once the group assigned partitions (every later message will be seen). */
  onAssigned?: () => void
}

const CONSUME_BATCH = 16
const CONSUME_WAIT_MS = 200
const BACKOFF_FIRST_MS = 500
const BACKOFF_MAX_MS = 30_000
const CLOSE_WAIT_MS = 2000

/** Consumes one topic in order in its own consumer group until close(); start() never rejects. */
export class KafkaTopicConsumer {
  readonly #o: TopicConsumerOptions
  #consumer: Kafka.KafkaConsumer | null = null
  #isClosed = false
  #isAssigned = false
  #loop: Promise<void> = Promise.resolve()
  #wake: (() => void) | null = null

  constructor(o: TopicConsumerOptions) {
    this.#o = o
  }

  /** Whether the group assigned this member its partitions (and the loop reads them). */
  get isAssigned(): boolean {
    return this.#isAssigned
  }

  /** Connects in the background (retrying with backoff while the broker is away) and consumes. */
  start(): void {
    this.#loop = this.#run()
  }

  async #run(): Promise<void> {
    let backoffMs = BACKOFF_FIRST_MS
    while (!this.#isClosed) {
      try {
        await this.#connect()
        break
      } catch (err) {
        this.#o.log.warn(
          { err, topic: this.#o.topic, retryInMs: backoffMs },
          'control topic: cannot reach Kafka; serving on, retrying',
        )
        await this.#disconnect()
        await this.#pause(backoffMs)
        backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS)
      }
    }
    while (!this.#isClosed) {
      const consumer = this.#consumer as Kafka.KafkaConsumer
      let batch: Kafka.Message[]
      try {
        batch = await new Promise<Kafka.Message[]>((res, rej) =>
          consumer.consume(CONSUME_BATCH, (err, msgs) => (err ? rej(unavailable('consume', err)) : res(msgs))),
        )
      } catch (err) {
        // A broker that is down or restarting: librdkafka reconnects by itself.
        this.#o.log.warn({ err, topic: this.#o.topic }, 'control topic: consume failed; retrying')
        await this.#pause(BACKOFF_FIRST_MS)
        continue
      }
      for (const m of batch) {
        if (this.#isClosed) return
        try {
          await this.#o.onMessage({
            key: m.key === undefined || m.key === null ? null : m.key.toString(),
            value: m.value ?? null,
            partition: m.partition,
            offset: m.offset,
          })
        } catch (err) {
          this.#o.log.warn({ err, partition: m.partition, offset: m.offset }, 'control event failed; skipped')
        }
        try {
          consumer.commitMessageSync(m)
        } catch (err) {
          // Not committed: the message comes again after a restart, and applying it twice is harmless.
          this.#o.log.warn({ err, partition: m.partition, offset: m.offset }, 'control topic: commit failed')
        }
      }
    }
  }

  async #connect(): Promise<void> {
    const o = this.#o
    await ensureTopics(o.brokers, [o.topic], o.partitions, o.timeoutMs, unavailable)
    const consumer = new Kafka.KafkaConsumer(
      {
        'metadata.broker.list': o.brokers,
        'group.id': o.groupId,
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        'fetch.wait.max.ms': 100,
        rebalance_cb: (err: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]) => {
          if (err.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
            consumer.assign(assignment)
            this.#isAssigned = true
            o.log.info({ topic: o.topic, groupId: o.groupId }, 'control topic: partitions assigned')
            o.onAssigned?.()
          } else if (err.code === Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) {
            consumer.unassign()
            this.#isAssigned = false
          }
        },
      },
      // A group with no committed offset (a new node) reads the topic from its start: every event
      // is checked against what the node applied (purge generations) or its age (prewarms).
      { 'auto.offset.reset': 'earliest' },
    )
    this.#consumer = consumer
    // The deadline leaves room for librdkafka's own connect timeout, after which it disconnects itself.
    await withDeadline(
      'consumer connect',
      2 * o.timeoutMs,
      new Promise<void>((res, rej) =>
        consumer.connect({ timeout: o.timeoutMs }, (err) => (err ? rej(unavailable('consumer connect', err)) : res())),
      ),
    )
    consumer.setDefaultConsumeTimeout(CONSUME_WAIT_MS)
    consumer.subscribe([o.topic])
    o.log.info({ topic: o.topic, groupId: o.groupId }, 'control topic: connected')
  }

  #pause(ms: number): Promise<void> {
    return new Promise((res) => {
      const timer = setTimeout(() => {
        this.#wake = null
        res()
      }, ms)
      this.#wake = () => {
        clearTimeout(timer)
        this.#wake = null
        res()
      }
    })
  }

  async #disconnect(): Promise<void> {
    const c = this.#consumer
    this.#consumer = null
    if (c === null) return
    await new Promise<void>((res) => (c.isConnected() ? c.disconnect(() => res()) : res()))
  }

  /**
   * Stops reading. A message being applied gets CLOSE_WAIT_MS to finish (a long prewarm must not
   * hold up a shutdown); one cut short is not committed, so it is applied again after a restart.
   */
  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#wake?.()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.#loop, new Promise((res) => (timer = setTimeout(res, CLOSE_WAIT_MS)))])
    clearTimeout(timer)
    await this.#disconnect()
  }
}
