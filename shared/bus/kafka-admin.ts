// What both Kafka clients of this module share (./kafka.ts, the job bus; ./kafka-client.ts, the
// control topic): a deadline on a broker round trip, and creating the topics a client needs. Each
// caller passes its own coded error (ERR_JOB_BUS_UNAVAILABLE, ERR_CONTROL_UNAVAILABLE). Loaded only
// with them, so the embedded default never loads the Kafka client's native library.
import Kafka from 'node-rdkafka'
import type { VcdnError } from '../errors/index.js'

/** The caller's coded "Kafka does not answer" error. */
export type Unavailable = (what: string, cause?: unknown) => VcdnError

/** `p`, or `unavailable` when it has not settled within `ms`. */
export function withDeadline<T>(what: string, ms: number, p: Promise<T>, unavailable: Unavailable): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(unavailable(`${what}: no answer from Kafka within ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** Creates each topic with `partitions` when it is missing (an existing topic is left as it is). */
export async function ensureTopics(
  brokers: string,
  topics: readonly string[],
  partitions: number,
  timeoutMs: number,
  unavailable: Unavailable,
): Promise<void> {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': brokers })
  try {
    for (const topic of topics) {
      await withDeadline(
        `create topic ${topic}`,
        timeoutMs,
        new Promise<void>((res, rej) =>
          admin.createTopic({ topic, num_partitions: partitions, replication_factor: 1 }, timeoutMs, (err) =>
            !err || err.code === Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS
              ? res()
              : rej(unavailable(`create topic ${topic}`, err)),
          ),
        ),
        unavailable,
      )
    }
  } finally {
    admin.disconnect()
  }
}
