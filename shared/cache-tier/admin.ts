// The cache tier's admin listener (docs/architecture.md §10.2): metrics, readiness, purge and prewarm,
// behind the tier secret.
import type { CacheEngine } from '../cache/index.js'
import { createAdminServer, type HttpServer } from '../http/index.js'
import type { Logger } from '../log/index.js'
import { prewarmRoute } from './prewarm.js'

export function createTierAdmin(opts: {
  host: string
  port: number
  tierSecret: string
  metrics: { text(): Promise<string>; readonly contentType: string }
  isReady: () => boolean
  /** Whether some upstream (or the edge's origin fallback) answers: without one, not ready. */
  isUpstreamReachable: () => boolean
  engine: CacheEngine
  log: Logger
  /** A purge the origin sent with its generation was applied. */
  onPurged?: (seq: number) => void
}): HttpServer {
  const { engine, log, metrics } = opts
  return createAdminServer({
    host: opts.host,
    port: opts.port,
    tierSecret: opts.tierSecret,
    metricsText: () => metrics.text(),
    metricsContentType: metrics.contentType,
    isReady: opts.isReady,
    // Ready means able to fill a miss: a load balancer must not send viewers to a PoP that can only 502.
    notReadyCode: () => (opts.isUpstreamReachable() ? undefined : 'ERR_UPSTREAM_NONE'),
    purge: async (target, mode, seq) => {
      const r = await engine.purge(target, mode)
      log.info({ ...target, mode, seq, removed: r.removed }, 'purged')
      if (seq !== undefined) opts.onPurged?.(seq)
      return r
    },
    routes: { 'POST /prewarm': prewarmRoute({ tierSecret: opts.tierSecret, engine, log }) },
  })
}
