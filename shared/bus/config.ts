// Which job bus a tier runs and how it reaches Kafka (docs/architecture.md §9): one table, used by
// the origin (which produces) and the transcoders (which consume in one group), so both read the
// same keys. `embedded` is the default: the origin's SQLite queue, claimed over HTTP.
import type { Schema } from '../config/index.js'

export const busSchema = {
  kind: {
    type: 'string',
    default: 'embedded',
    oneOf: ['embedded', 'kafka'],
    doc: 'job bus: embedded (the origin SQLite queue, claimed over HTTP) or kafka (docs/architecture.md §9)',
  },
  kafka: {
    brokers: {
      type: 'string',
      default: '',
      doc: 'bootstrap brokers host:port[,host:port…] (required when kind is kafka)',
    },
    topicPrefix: { type: 'string', default: 'vcdn.jobs.', doc: 'prepended to every job topic name' },
    groupId: { type: 'string', default: 'vcdn-transcoders', doc: 'the consumer group of the transcoders' },
    partitions: {
      type: 'integer',
      default: 4,
      min: 1,
      max: 1000,
      doc: 'partitions of the job topics when the bus creates them (how many transcoders can share one kind)',
    },
    timeoutMs: {
      type: 'integer',
      default: 30_000,
      min: 100,
      unit: 'ms',
      doc: 'bound on each broker round trip (connect, produce acknowledgement, read up to date)',
    },
    sessionTimeoutMs: {
      type: 'integer',
      default: 45_000,
      min: 6_000,
      max: 1_800_000,
      unit: 'ms',
      doc: 'a transcoder silent this long leaves the group and its unfinished jobs go to the others',
    },
  },
} satisfies Schema

export interface BusConfig {
  kind: 'embedded' | 'kafka'
  kafka: {
    brokers: string
    topicPrefix: string
    groupId: string
    partitions: number
    timeoutMs: number
    sessionTimeoutMs: number
  }
}

/** What the table alone cannot check; each problem names its key under `at` (e.g. "bus"). */
export function busConfigProblems(bus: BusConfig, at: string): string[] {
  if (bus.kind !== 'kafka') return []
  const problems: string[] = []
  const brokers = bus.kafka.brokers.split(',').map((b) => b.trim())
  if (bus.kafka.brokers === '') problems.push(`${at}.kafka.brokers is required when ${at}.kind is kafka`)
  else if (!brokers.every((b) => /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$/.test(b)))
    problems.push(`${at}.kafka.brokers must be host:port[,host:port…]`)
  if (bus.kafka.groupId === '') problems.push(`${at}.kafka.groupId must not be empty`)
  return problems
}
