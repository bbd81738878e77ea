// Prefetch into the shield (`prefetch.mode: 'shield'`, docs/architecture.md §6): instead of filling
// the next segments itself, the edge asks the shield HRW picks for each key to have them, as
// Traffic Server's prefetch plugin warms a parent. The request is a HEAD: a shield answers a HEAD
// miss by filling the object with a GET like any miss (RFC 9110 §9.3.2: the same headers, no
// body), so the shield stores it and no body crosses to the edge. The edge keeps nothing: the
// player's request is then an edge miss and a shield hit.
import type { PrefetchResult } from '../../shared/cache/index.js'
import type { UpstreamSet } from '../../shared/upstream/index.js'
import type { PrefetchEngine } from './prefetch.js'

/** What the shield warmer needs of the edge's engine: whether it has the key, and playlist bodies. */
export interface EdgeEngine {
  has(key: string): boolean
  peekBody(key: string, maxBytes: number): Promise<Buffer | null>
}

/**
 * A PrefetchEngine that warms the shield: 'present' when the edge or the shield already had the
 * key (the shield's X-Cache: HIT), 'filled' when the shield answered after fetching it, 'failed' for
 * any error answer or transport failure (the prefetcher then backs off).
 */
export function shieldWarmer(engine: EdgeEngine, upstreams: UpstreamSet): PrefetchEngine {
  return {
    peekBody: (key, maxBytes) => engine.peekBody(key, maxBytes),
    async prefetch(key: string): Promise<PrefetchResult> {
      if (engine.has(key)) return 'present'
      try {
        const res = await upstreams.request(key, { method: 'HEAD', headers: {} })
        await res.discard()
        if (res.status >= 400) return 'failed'
        return res.headers['x-cache'] === 'HIT' ? 'present' : 'filled'
      } catch {
        return 'failed'
      }
    },
  }
}
