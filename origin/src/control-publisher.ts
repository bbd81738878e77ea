// The origin's side of the control events over Kafka (docs/architecture.md §7.4, §9): with
// `control.kind = "kafka"` every purge (after it is written to the purge log, with its seq) and
// every prewarm is published on the control topic, keyed by the video id (or the purge's path when
// it names no video), instead of calling each node. The producer connects lazily and again after a
// failed connect; a publish the broker does not acknowledge in time is a coded error
// (ERR_CONTROL_UNAVAILABLE) the caller reports — a purge is still in the purge log then, and every
// registered node applies it at its next heartbeat.
import {
  connectKafkaTopicProducer,
  type ControlConfig,
  type ControlEvent,
  type KafkaTopicProducer,
} from '../../shared/bus/index.js'
import { isVcdnError, VcdnError } from '../../shared/errors/index.js'
import type { Logger } from '../../shared/log/index.js'

export interface ControlPublisherOptions {
  kafka: ControlConfig['kafka']
  log: Logger
}

/** Where an event landed: the topic and its offset there. */
export interface Published {
  topic: string
  offset: number | null
}

export class ControlPublisher {
  readonly #o: ControlPublisherOptions
  /** The producer, connected or connecting; null after a failure (the next publish tries again). */
  #producer: Promise<KafkaTopicProducer> | null = null
  #isClosed = false

  constructor(opts: ControlPublisherOptions) {
    if (typeof opts.kafka?.brokers !== 'string' || opts.kafka.brokers === '')
      throw new TypeError('ControlPublisher: options.kafka.brokers must be a non-empty string')
    if (typeof opts.kafka.topic !== 'string' || opts.kafka.topic === '')
      throw new TypeError('ControlPublisher: options.kafka.topic must be a non-empty string')
    this.#o = opts
  }

  get topic(): string {
    return this.#o.kafka.topic
  }

  /** Connect in the background (start-up): a broker that is down is logged, not fatal. */
  start(): void {
    this.#connect().catch((err: unknown) =>
      this.#o.log.warn({ err }, 'control topic: Kafka unreachable at start; publishing will retry'),
    )
  }

  /** Publishes one event; resolves once the broker acknowledged it. */
  async publish(event: ControlEvent): Promise<Published> {
    if (this.#isClosed) throw new VcdnError('ERR_CONTROL_UNAVAILABLE', 'the control publisher is closed')
    try {
      const producer = await this.#connect()
      return await producer.send(keyOf(event), Buffer.from(JSON.stringify(event)))
    } catch (err) {
      // A failed connect was forgotten (#connect): the next publish connects again. A connected
      // producer is kept: librdkafka reconnects it to the broker by itself.
      throw isVcdnError(err) ? err : new VcdnError('ERR_CONTROL_UNAVAILABLE', 'publish failed', { cause: err })
    }
  }

  #connect(): Promise<KafkaTopicProducer> {
    if (this.#producer === null) {
      const p = connectKafkaTopicProducer({
        brokers: this.#o.kafka.brokers,
        topic: this.#o.kafka.topic,
        // One partition: nodes read every event in the order the origin numbered purges.
        partitions: 1,
        timeoutMs: this.#o.kafka.timeoutMs,
      })
      this.#producer = p
      p.catch(() => {
        if (this.#producer === p) this.#producer = null
      })
    }
    return this.#producer
  }

  async close(): Promise<void> {
    this.#isClosed = true
    const p = this.#producer
    this.#producer = null
    if (p === null) return
    try {
      await (await p).close()
    } catch {
      // never connected: nothing to close
    }
  }
}

/** The message key: the video id of a content path (`/v/<id>/…`), else the path itself. */
export function keyOf(event: ControlEvent): string {
  if (event.type === 'prewarm') return event.videoId
  const path = 'key' in event.target ? event.target.key : event.target.prefix
  const m = /^\/v\/([^/]+)\//.exec(path)
  return m?.[1] ?? path
}
