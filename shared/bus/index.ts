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
