// The cache tier's admin listener (docs/architecture.md §10.2): metrics, readiness, purge and prewarm,
// behind the tier secret.
import type { CacheEngine } from '../cache/index.js'
import { TIER_SECRET_HEADER } from '../config/index.js'
import {
  createAdminServer,
  secretEquals,
  sendError,
  sendJson,
  type HttpServer,
  type IncomingRequest,
  type ResponseSink,
} from '../http/index.js'
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
  /** Replace worker thread `index` (docs/architecture.md §9.1); false when there is none. */
  restartWorker?: (index: number) => boolean
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
    routes: {
      'POST /prewarm': prewarmRoute({ tierSecret: opts.tierSecret, engine, log }),
      'POST /workers/restart': restartWorkerRoute(opts.tierSecret, opts.restartWorker ?? (() => false), log),
    },
  })
}

/**
 * `POST /workers/restart?index=N` (tier secret): worker thread N fails as a crash would (its
 * listener and connections close, the others keep serving) and the coordinator starts a fresh one
 * in its place; 404 when there is no worker N (`workers` is 1, or N is out of range).
 */
function restartWorkerRoute(tierSecret: string, restart: (index: number) => boolean, log: Logger) {
  return (req: IncomingRequest, res: ResponseSink): void => {
    if (!secretEquals(req.header(TIER_SECRET_HEADER), tierSecret)) {
      sendError(res, 'ERR_TIER_AUTH')
      return
    }
    const index = Number(new URLSearchParams(req.query).get('index') ?? '')
    if (!Number.isInteger(index) || !restart(index)) {
      sendError(res, 'ERR_NOT_FOUND')
      return
    }
    log.warn({ worker: index }, 'worker restart requested')
    sendJson(res, 202, { restarting: index })
  }
}
