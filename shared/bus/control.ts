// Control events (docs/architecture.md §7.4, §9): with `control.kind = "kafka"` the origin publishes
// every purge and prewarm on one topic that every edge and shield consumes in its own consumer
// group. This file is the wire format both sides speak and the config fragment all three tiers
// share; it loads no Kafka client (./kafka-client.ts does, when asked for).
//
// An event is JSON, keyed by the video id (or the purge's prefix or key when it names no video):
//   {"v":1,"type":"purge","seq":N,"target":{"key"|"prefix":"/v/…"},"mode":"hard"|"soft","atMs":…}
//   {"v":1,"type":"prewarm","id":"…","videoId":"…","keys":["/v/…",…],"atMs":…}
// A purge carries its generation (`seq`, the origin's purge log): a node applies a purge whose seq
// it has applied already at most once more, harmlessly, so a redelivery is idempotent; a prewarm
// is idempotent by nature (a key present stays present).

/** What `control.*` holds in the origin, edge and shield config. */
export interface ControlConfig {
  kind: 'http' | 'kafka'
  kafka: { brokers: string; topic: string; timeoutMs: number }
}

/** Schema fragment for the `control` key (shared/config Schema shape). */
export const controlSchema = {
  control: {
    kind: {
      type: 'string',
      default: 'http',
      oneOf: ['http', 'kafka'],
      doc: 'how purges and prewarms reach edges and shields: http (the origin calls each registered node) or kafka (one topic every node consumes in its own consumer group; docs/architecture.md §9)',
    },
    kafka: {
      brokers: {
        type: 'string',
        default: '',
        doc: 'bootstrap brokers host:port[,host:port…] (required when control.kind is kafka)',
      },
      topic: {
        type: 'string',
        default: 'vcdn.control',
        doc: 'the control-event topic (created with one partition when missing)',
      },
      timeoutMs: {
        type: 'integer',
        default: 10_000,
        min: 100,
        unit: 'ms',
        doc: 'bound on each broker round trip (connect, produce acknowledgement); a node retries with backoff after it',
      },
    },
  },
} as const

/** The problems with `control` the schema cannot express (empty when none). */
export function controlProblems(control: ControlConfig): string[] {
  if (control.kind !== 'kafka') return []
  const problems: string[] = []
  if (!/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/.test(control.kafka.brokers))
    problems.push('control.kafka.brokers must be host:port[,host:port…] when control.kind is kafka')
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(control.kafka.topic))
    problems.push('control.kafka.topic must be 1-249 characters of A-Z a-z 0-9 . _ -')
  return problems
}

export type ControlPurgeTarget = { key: string } | { prefix: string }

export interface PurgeEvent {
  v: 1
  type: 'purge'
  seq: number
  target: ControlPurgeTarget
  mode: 'hard' | 'soft'
  atMs: number
}

export interface PrewarmEvent {
  v: 1
  type: 'prewarm'
  id: string
  videoId: string
  keys: string[]
  atMs: number
}

export type ControlEvent = PurgeEvent | PrewarmEvent

/** Bounds a node applies to an event before it trusts it. */
const MAX_KEY_CHARS = 2048
export const MAX_CONTROL_PREWARM_KEYS = 10_000

const isPath = (x: unknown): x is string => typeof x === 'string' && x.startsWith('/') && x.length <= MAX_KEY_CHARS
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

/**
 * The event a message value holds, or a reason it is not one (never throws: a node logs, counts
 * and skips a malformed event). Paths are checked for shape here; the node checks them against
 * the content namespace before it acts.
 */
export function parseControlEvent(value: Buffer | null | undefined): ControlEvent | { malformed: string } {
  if (value === null || value === undefined) return { malformed: 'no value' }
  let x: unknown
  try {
    x = JSON.parse(value.toString('utf8'))
  } catch {
    return { malformed: 'not JSON' }
  }
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return { malformed: 'not an object' }
  const e = x as Record<string, unknown>
  if (e['v'] !== 1) return { malformed: 'unknown version' }
  if (!isCount(e['atMs'])) return { malformed: 'atMs' }
  if (e['type'] === 'purge') {
    if (!isCount(e['seq']) || e['seq'] === 0) return { malformed: 'seq' }
    if (e['mode'] !== 'hard' && e['mode'] !== 'soft') return { malformed: 'mode' }
    const t = e['target'] as Record<string, unknown> | null
    if (t === null || typeof t !== 'object') return { malformed: 'target' }
    let target: ControlPurgeTarget
    if (isPath(t['key']) && t['prefix'] === undefined) target = { key: t['key'] }
    else if (isPath(t['prefix']) && t['key'] === undefined) target = { prefix: t['prefix'] }
    else return { malformed: 'target' }
    return { v: 1, type: 'purge', seq: e['seq'], target, mode: e['mode'], atMs: e['atMs'] }
  }
  if (e['type'] === 'prewarm') {
    const keys = e['keys']
    if (typeof e['id'] !== 'string' || e['id'] === '') return { malformed: 'id' }
    if (typeof e['videoId'] !== 'string') return { malformed: 'videoId' }
    if (!Array.isArray(keys) || keys.length > MAX_CONTROL_PREWARM_KEYS || !keys.every(isPath))
      return { malformed: 'keys' }
    return { v: 1, type: 'prewarm', id: e['id'], videoId: e['videoId'], keys, atMs: e['atMs'] }
  }
  return { malformed: 'unknown type' }
}
