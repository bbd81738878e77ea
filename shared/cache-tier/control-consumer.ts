// A node's side of the control events over Kafka (docs/architecture.md §7.4, §9): with
// `control.kind = "kafka"` an edge or a shield consumes the control topic in a consumer group of
// its own (group id = node id, so every node sees every event), applies each event in order, and
// commits its offset only after applying it; a node that was down resumes from its committed
// offset when it returns. Loaded by tier.ts only with kind kafka, so the embedded default never
// loads the Kafka client.
//
// Purge generations and Kafka offsets do not fight: the generation (purge-generation.json, owned
// by Registration) stays the record of what the cache reflects. A purge event whose seq the node
// applied already (a registration caught up first) is skipped; one that follows the generation
// advances it (Registration.onLivePurge: only without a gap; a gap, e.g. a purge whose publish
// failed, is filled from the origin's purge log at the next heartbeat). After applying a purge the
// node heartbeats at once, which is its acknowledgement: the origin's purge answer waits a bounded
// time for every node's generation to reach the purge's (origin/src/node-fanout.ts).
//
// The broker down at start or later never stops the node: it serves on and keeps retrying
// (readiness is unaffected: purges still arrive by the purge log at each heartbeat). A malformed
// event (not JSON, unknown type, a path outside the content namespace) is logged, counted and
// skipped, never thrown.
import type { CacheEngine } from '../cache/index.js'
import {
  createKafkaTopicConsumer,
  parseControlEvent,
  type ControlConfig,
  type KafkaTopicConsumer,
  type TopicMessage,
} from '../bus/index.js'
import type { Logger } from '../log/index.js'
import { CONTENT_ROOT, isValidPath } from '../namespace/index.js'
import { prewarm } from './prewarm.js'
import type { Registration } from './registration.js'

/** A prewarm older than this when it is read (a node that was away long) is skipped: its viewers have come and gone. */
export const PREWARM_EVENT_MAX_AGE_MS = 10 * 60_000

export type ControlEventType = 'purge' | 'prewarm' | 'unknown'
export type ControlEventResult = 'applied' | 'skipped' | 'malformed' | 'failed'

export interface ControlConsumerOptions {
  kafka: ControlConfig['kafka']
  /** The node's id: its consumer group. */
  nodeId: string
  engine: CacheEngine
  /** The node's registration (purge generation and heartbeat), null when registration is off. */
  registration: Registration | null
  log: Logger
  now: () => number
  /** Counts every event read, by type and result (vcdn_<tier>_control_events_total). */
  count: (type: ControlEventType, result: ControlEventResult) => void
}

export class ControlConsumer {
  readonly #o: ControlConsumerOptions
  readonly #consumer: KafkaTopicConsumer
  #ack: Promise<void> | null = null
  #isAckDue = false

  private constructor(o: ControlConsumerOptions, consumer: KafkaTopicConsumer) {
    this.#o = o
    this.#consumer = consumer
  }

  /** Starts consuming in the background; resolves at once (the broker may be down). */
  static async start(o: ControlConsumerOptions): Promise<ControlConsumer> {
    let self: ControlConsumer | null = null
    const consumer = await createKafkaTopicConsumer({
      brokers: o.kafka.brokers,
      topic: o.kafka.topic,
      // One partition: every event in one order, so a purge's seq follows the one before it.
      partitions: 1,
      groupId: o.nodeId,
      timeoutMs: o.kafka.timeoutMs,
      log: o.log,
      onMessage: (m) => (self as ControlConsumer).#apply(m),
    })
    self = new ControlConsumer(o, consumer)
    consumer.start()
    return self
  }

  get isAssigned(): boolean {
    return this.#consumer.isAssigned
  }

  async #apply(m: TopicMessage): Promise<void> {
    const { engine, log, registration, count } = this.#o
    const event = parseControlEvent(m.value)
    const at = { partition: m.partition, offset: m.offset }
    if ('malformed' in event) {
      log.warn({ ...at, reason: event.malformed }, 'malformed control event skipped')
      count('unknown', 'malformed')
      return
    }
    if (event.type === 'purge') {
      const path = 'key' in event.target ? event.target.key : event.target.prefix
      if (!path.startsWith(CONTENT_ROOT) || ('key' in event.target && !isValidPath(path))) {
        log.warn(
          { ...at, seq: event.seq, path },
          'malformed control event skipped: purge outside the content namespace',
        )
        count('purge', 'malformed')
        return
      }
      const applied = registration?.seq ?? null
      if (applied !== null && event.seq <= applied) {
        count('purge', 'skipped')
        return
      }
      const r = await engine.purge(event.target, event.mode)
      log.info(
        { ...at, ...event.target, mode: event.mode, seq: event.seq, removed: r.removed },
        'control event: purged',
      )
      registration?.onLivePurge(event.seq)
      count('purge', 'applied')
      this.#acknowledge()
      return
    }
    const keys = event.keys.filter((k) => k.startsWith(CONTENT_ROOT) && isValidPath(k))
    if (keys.length !== event.keys.length) {
      log.warn({ ...at, id: event.id }, 'malformed control event skipped: prewarm key outside the content namespace')
      count('prewarm', 'malformed')
      return
    }
    if (this.#o.now() - event.atMs > PREWARM_EVENT_MAX_AGE_MS) {
      count('prewarm', 'skipped')
      return
    }
    const counts = await prewarm(engine, [...new Set(keys)])
    log.info({ ...at, id: event.id, videoId: event.videoId, keys: keys.length, ...counts }, 'control event: prewarmed')
    count('prewarm', counts.failed > 0 ? 'failed' : 'applied')
  }

  /** A heartbeat that tells the origin the new generation; one at a time, one more if asked meanwhile. */
  #acknowledge(): void {
    const registration = this.#o.registration
    if (registration === null) return
    if (this.#ack !== null) {
      this.#isAckDue = true
      return
    }
    this.#ack = (async () => {
      do {
        this.#isAckDue = false
        await registration.beatNow()
      } while (this.#isAckDue)
    })().finally(() => {
      this.#ack = null
    })
  }

  async close(): Promise<void> {
    await this.#consumer.close()
    await this.#ack
  }
}
