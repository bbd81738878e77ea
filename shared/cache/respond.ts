// The engine's own answers and its counters (docs/architecture.md §5): coded errors as JSON
// bodies, the one CacheCounters object (zeroed), and the one switch from an outcome to its
// counter. Shared by lookup (engine.ts) and pass-through (pass.ts).

import { errorBody, VcdnError, type ErrorCode } from '../errors/index.js'
import type { ResponseSink } from '../http/types.js'
import type { CacheCounters, CacheOutcome, ServeRequest, ServeResult } from './types.js'

export const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json', 'cache-control': 'no-store' })

export function zeroCounters(): CacheCounters {
  return {
    hits: 0,
    misses: 0,
    stale: 0,
    revalidated: 0,
    passes: 0,
    fills: 0,
    fillErrors: 0,
    storeErrors: 0,
    coalesced: 0,
    upstreamRequests: 0,
    evictions: 0,
    evictedBytes: 0,
    purged: 0,
    memoryBytes: 0,
    diskBytes: 0,
    objects: 0,
    prefetchIssued: 0,
    prefetchUsed: 0,
    prefetchWasted: 0,
    indexRebuilds: 0,
    indexErrors: 0,
  }
}

export function countOutcome(counters: CacheCounters, outcome: CacheOutcome): void {
  switch (outcome) {
    case 'HIT':
      counters.hits++
      break
    case 'MISS':
      counters.misses++
      break
    case 'STALE':
      counters.stale++
      break
    case 'REVALIDATED':
      counters.revalidated++
      break
    case 'PASS':
      counters.passes++
      break
  }
}

/** Answer with a coded error (status from the registry, no internals), counted under `outcome`. */
export function respondError(
  counters: CacheCounters,
  sink: ResponseSink,
  req: ServeRequest,
  code: ErrorCode,
  outcome: CacheOutcome,
  upstreamMs: number | null,
): ServeResult {
  countOutcome(counters, outcome)
  const err = new VcdnError(code)
  if (sink.isAborted) return { outcome, status: err.status, bytes: 0, upstreamMs }
  const body = Buffer.from(errorBody(code))
  sink.start(err.status, { ...JSON_HEADERS, 'x-cache': outcome }, body.length)
  if (req.method === 'HEAD') sink.end()
  else sink.end(body)
  return { outcome, status: err.status, bytes: req.method === 'HEAD' ? 0 : body.length, upstreamMs }
}
