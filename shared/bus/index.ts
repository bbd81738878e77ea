// The job bus (docs/architecture.md §9): the JobBus interface and its helpers (./job.ts), the worker
// wire protocol both sides of the HTTP hand-over speak (./wire.ts), the state store a
// Kafka bus keeps job state in (./state.ts), and the Kafka bus itself (./kafka.ts), loaded only
// when asked for so the embedded default never loads the Kafka client's native library.
import type { KafkaJobBus, KafkaJobBusOptions } from './kafka.js'

export * from './job.js'
export * from './wire.js'
export { busSchema, busConfigProblems, type BusConfig } from './config.js'
export { memoryJobStateStore, type JobStateStore } from './state.js'
export type { KafkaJobBus, KafkaJobBusOptions } from './kafka.js'

/** Creates the topics when missing, connects, joins the consumer group, waits for its first assignment. */
export async function connectKafkaJobBus(opts: KafkaJobBusOptions): Promise<KafkaJobBus> {
  const { KafkaJobBus } = await import('./kafka.js')
  return KafkaJobBus.connect(opts)
}

// Control events (docs/architecture.md §9): the wire format and config fragment (./control.ts), and
// a producer and an ordered consumer for one topic (./kafka-client.ts), loaded only when asked for.
export * from './control.js'
export type {
  KafkaTopicConsumer,
  KafkaTopicProducer,
  TopicConsumerOptions,
  TopicMessage,
  TopicProducerOptions,
} from './kafka-client.js'

/** Creates the topic when missing and connects a producer to it. */
export async function connectKafkaTopicProducer(
  opts: import('./kafka-client.js').TopicProducerOptions,
): Promise<import('./kafka-client.js').KafkaTopicProducer> {
  const { KafkaTopicProducer } = await import('./kafka-client.js')
  return KafkaTopicProducer.connect(opts)
}

/** A consumer of one topic in its own group; call start() (it connects in the background, retrying). */
export async function createKafkaTopicConsumer(
  opts: import('./kafka-client.js').TopicConsumerOptions,
): Promise<import('./kafka-client.js').KafkaTopicConsumer> {
  const { KafkaTopicConsumer } = await import('./kafka-client.js')
  return new KafkaTopicConsumer(opts)
}
