// One options object, validated once, every problem reported at once with its exact path, then
// frozen (docs/style.md "Code" / "Config").

import { VcdnError } from '../errors/index.js'
import type { QueryPolicy } from './normalize-key.js'
import type { CacheLogger, CacheOptions, DefaultTtls, FetchUpstream } from './types.js'

const MiB = 1024 * 1024

export interface ResolvedOptions {
  readonly dir: string
  readonly maxBytes: number
  readonly memoryMaxBytes: number
  readonly memoryObjectMaxBytes: number
  readonly highWatermark: number
  readonly lowWatermark: number
  readonly negativeTtlMs: number
  /** Only the kinds an operator configured; the rest get RFC 9111 §4.2.2 heuristics or nothing. */
  readonly defaultTtlMs: Readonly<Partial<DefaultTtls>>
  readonly staleIfErrorMs: number
  readonly fillBufferBytes: number
  readonly query: QueryPolicy
  readonly passUnsafeMethods: boolean
  readonly isMemoryShared: boolean
  readonly fetch: FetchUpstream
  readonly now: () => number
  readonly log: CacheLogger
}

const noop = (): void => {}
const SILENT: CacheLogger = Object.freeze({ info: noop, warn: noop, error: noop })

const KNOWN = new Set([
  'dir',
  'maxBytes',
  'memoryMaxBytes',
  'memoryObjectMaxBytes',
  'highWatermark',
  'lowWatermark',
  'negativeTtlMs',
  'defaultTtlMs',
  'staleIfErrorMs',
  'fillBufferBytes',
  'query',
  'passUnsafeMethods',
  'isMemoryShared',
  'fetch',
  'now',
  'log',
])

export function resolveOptions(input: CacheOptions): ResolvedOptions {
  const problems: string[] = []
  if (input === null || typeof input !== 'object') {
    throw new VcdnError('ERR_CONFIG_INVALID', 'cache options must be an object')
  }
  const raw = input as unknown as Record<string, unknown>
  for (const name of Object.keys(raw)) {
    if (!KNOWN.has(name)) problems.push(`cache.${name} is not a known option`)
  }

  const num = (
    path: string,
    value: unknown,
    fallback: number | undefined,
    min: number,
    max: number,
    isInteger: boolean,
  ): number => {
    if (value === undefined && fallback !== undefined) return fallback
    if (typeof value !== 'number' || !Number.isFinite(value) || (isInteger && !Number.isInteger(value))) {
      problems.push(`${path} must be a finite ${isInteger ? 'integer' : 'number'}`)
      return fallback ?? min
    }
    if (value < min || value > max) {
      problems.push(`${path} must be between ${min} and ${max}`)
      return fallback ?? min
    }
    return value
  }

  if (typeof raw['dir'] !== 'string' || raw['dir'].length === 0) problems.push('cache.dir must be a non-empty string')
  const maxBytes = num('cache.maxBytes', raw['maxBytes'], undefined, 1, Number.MAX_SAFE_INTEGER, true)
  const memoryMaxBytes = num('cache.memoryMaxBytes', raw['memoryMaxBytes'], undefined, 1, Number.MAX_SAFE_INTEGER, true)
  const memoryObjectMaxBytes = num(
    'cache.memoryObjectMaxBytes',
    raw['memoryObjectMaxBytes'],
    Math.max(1, Math.min(Math.floor(memoryMaxBytes / 8), 8 * MiB)),
    0,
    Number.MAX_SAFE_INTEGER,
    true,
  )
  const highWatermark = num('cache.highWatermark', raw['highWatermark'], 0.95, 0.01, 1, false)
  const lowWatermark = num('cache.lowWatermark', raw['lowWatermark'], 0.85, 0, 1, false)
  if (lowWatermark > highWatermark) problems.push('cache.lowWatermark must not exceed cache.highWatermark')
  const negativeTtlMs = num('cache.negativeTtlMs', raw['negativeTtlMs'], 10_000, 0, Number.MAX_SAFE_INTEGER, false)
  const staleIfErrorMs = num(
    'cache.staleIfErrorMs',
    raw['staleIfErrorMs'],
    24 * 3600 * 1000,
    0,
    Number.MAX_SAFE_INTEGER,
    false,
  )
  const fillBufferBytes = num(
    'cache.fillBufferBytes',
    raw['fillBufferBytes'],
    8 * MiB,
    1,
    Number.MAX_SAFE_INTEGER,
    true,
  )

  // No silent per-kind default (RFC 9111 §4.2.2 heuristics apply instead): only the kinds an
  // operator set are used.
  const defaultTtlMs: Partial<DefaultTtls> = {}
  const ttl = raw['defaultTtlMs']
  if (ttl !== undefined) {
    if (ttl === null || typeof ttl !== 'object') {
      problems.push('cache.defaultTtlMs must be an object { playlist?, segment?, other? }')
    } else {
      const t = ttl as Record<string, unknown>
      for (const name of Object.keys(t)) {
        if (name !== 'playlist' && name !== 'segment' && name !== 'other') {
          problems.push(`cache.defaultTtlMs.${name} is not a known option`)
        } else if (t[name] !== undefined) {
          defaultTtlMs[name] = num(`cache.defaultTtlMs.${name}`, t[name], undefined, 0, Number.MAX_SAFE_INTEGER, false)
        }
      }
    }
  }

  const query = raw['query'] ?? 'keep'
  const isQueryValid =
    query === 'keep' ||
    query === 'ignore' ||
    (Array.isArray(query) && query.every((name) => typeof name === 'string' && name.length > 0))
  if (!isQueryValid) problems.push('cache.query must be "keep", "ignore" or an array of parameter names')

  const passUnsafeMethods = raw['passUnsafeMethods'] ?? false
  if (typeof passUnsafeMethods !== 'boolean') problems.push('cache.passUnsafeMethods must be a boolean')

  const isMemoryShared = raw['isMemoryShared'] ?? false
  if (typeof isMemoryShared !== 'boolean') problems.push('cache.isMemoryShared must be a boolean')

  if (typeof raw['fetch'] !== 'function') problems.push('cache.fetch must be a function')
  if (raw['now'] !== undefined && typeof raw['now'] !== 'function') problems.push('cache.now must be a function')
  const log = raw['log']
  if (log !== undefined) {
    const l = log as Record<string, unknown> | null
    if (
      l === null ||
      typeof l !== 'object' ||
      typeof l['info'] !== 'function' ||
      typeof l['warn'] !== 'function' ||
      typeof l['error'] !== 'function'
    ) {
      problems.push('cache.log must have info, warn and error methods')
    }
  }

  if (problems.length > 0) throw new VcdnError('ERR_CONFIG_INVALID', problems.join('; '))

  return Object.freeze({
    dir: input.dir,
    maxBytes,
    memoryMaxBytes,
    memoryObjectMaxBytes,
    highWatermark,
    lowWatermark,
    negativeTtlMs,
    defaultTtlMs: Object.freeze(defaultTtlMs),
    staleIfErrorMs,
    fillBufferBytes,
    query: Array.isArray(query) ? Object.freeze([...(query as string[])]) : (query as 'keep' | 'ignore'),
    passUnsafeMethods: passUnsafeMethods === true,
    isMemoryShared: isMemoryShared === true,
    fetch: input.fetch,
    now: input.now ?? Date.now,
    log: input.log ?? SILENT,
  })
}
