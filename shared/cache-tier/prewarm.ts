// Prewarm (docs/architecture.md §7.4): the admin listener's `POST /prewarm {"keys": [...]}` has the
// engine fetch each content path through its usual fill (deduplicated with fills in flight, stored
// like any answer), a few at a time, and answers what happened to each: already present, filled,
// joined a fill in flight, or failed. The origin sends the keys of a video to every node.
import type { CacheEngine, PrefetchResult } from '../cache/index.js'
import { TIER_SECRET_HEADER } from '../config/index.js'
import { secretEquals, sendError, sendJson, type IncomingRequest, type ResponseSink } from '../http/index.js'
import type { Logger } from '../log/index.js'
import { CONTENT_ROOT, isValidPath } from '../namespace/index.js'

export const MAX_PREWARM_KEYS = 10_000
const MAX_PREWARM_BODY_BYTES = 2 * 1024 * 1024
/** Fills a prewarm runs at once: enough to overlap upstream latency, few enough to leave room for viewers. */
const PREWARM_CONCURRENCY = 8

export type PrewarmCounts = Record<PrefetchResult, number>

/** The keys of a prewarm body, or null when it is not `{"keys": [content paths]}` within bounds. */
export function prewarmKeysOf(body: Buffer): string[] | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    return null
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length > MAX_PREWARM_KEYS) return null
  for (const key of keys) {
    if (typeof key !== 'string' || !key.startsWith(CONTENT_ROOT) || !isValidPath(key)) return null
  }
  return [...new Set(keys as string[])]
}

/** Prefetch every key, PREWARM_CONCURRENCY at a time; never rejects. */
export async function prewarm(engine: CacheEngine, keys: readonly string[]): Promise<PrewarmCounts> {
  const counts: PrewarmCounts = { present: 0, filled: 0, joined: 0, failed: 0 }
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string
      counts[await engine.prefetch(key)]++
    }
  }
  await Promise.all(Array.from({ length: Math.min(PREWARM_CONCURRENCY, keys.length) }, worker))
  return counts
}

/** The admin route: tier secret, then the body, then the prefetches; answers the counts. */
export function prewarmRoute(opts: { tierSecret: string; engine: CacheEngine; log: Logger }) {
  return async (req: IncomingRequest, res: ResponseSink): Promise<void> => {
    if (!secretEquals(req.header(TIER_SECRET_HEADER), opts.tierSecret)) {
      sendError(res, 'ERR_TIER_AUTH')
      return
    }
    const body = await req.readBody(MAX_PREWARM_BODY_BYTES)
    const keys = body === null ? null : prewarmKeysOf(body)
    if (keys === null) {
      sendError(res, 'ERR_PREWARM_BODY')
      return
    }
    const counts = await prewarm(opts.engine, keys)
    opts.log.info({ keys: keys.length, ...counts }, 'prewarmed')
    if (!res.isAborted) sendJson(res, 200, { keys: keys.length, ...counts })
  }
}
