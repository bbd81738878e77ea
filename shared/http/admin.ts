// The admin listener every tier offers operators (docs/architecture.md §10.2): metrics, health,
// readiness, purge. Loopback by default; purge requires the tier secret.
import { TIER_SECRET_HEADER } from '../config/index.js'
import { ERRORS, type ErrorCode } from '../errors/index.js'
import { HttpServer, type IncomingRequest } from './server.js'
import { secretEquals, sendError, sendJson, sendText } from './respond.js'
import type { ResponseSink } from './types.js'

export interface AdminOptions {
  host: string
  port: number
  tierSecret: string
  metricsText: () => Promise<string>
  metricsContentType: string
  isReady: () => boolean
  /** Why a listening tier is not ready (e.g. no upstream reachable): `/readyz` answers 503 with this code. */
  notReadyCode?: () => ErrorCode | undefined
  /**
   * Purge by key or prefix, hard (the objects go) or soft (they stay, stale: revalidated on the next
   * request); resolves with how many objects. Absent on tiers without a cache.
   */
  purge?: (
    target: { key: string } | { prefix: string },
    mode: 'hard' | 'soft',
    /** The origin's purge generation, when the origin sent it (docs/architecture.md §7.4). */
    seq: number | undefined,
  ) => Promise<{ removed: number }>
  /** Extra routes a tier adds (method + path → handler). */
  routes?: Record<string, (req: IncomingRequest, res: ResponseSink) => Promise<void> | void>
}

const MAX_PURGE_BODY_BYTES = 64 * 1024

export function createAdminServer(opts: AdminOptions): HttpServer {
  return new HttpServer({
    host: opts.host,
    port: opts.port,
    handler: async (req, res) => {
      const route = `${req.method} ${req.path}`
      switch (route) {
        case 'GET /metrics':
          sendText(res, 200, await opts.metricsText(), opts.metricsContentType)
          return
        case 'GET /healthz':
          sendJson(res, 200, { ok: true })
          return
        case 'GET /readyz': {
          const code = opts.isReady() ? opts.notReadyCode?.() : undefined
          if (code !== undefined) sendJson(res, 503, { ready: false, error: { code, message: ERRORS[code].message } })
          else sendJson(res, opts.isReady() ? 200 : 503, { ready: opts.isReady() })
          return
        }
        case 'POST /purge':
          await purge(opts, req, res)
          return
      }
      const extra = opts.routes?.[route]
      if (extra) {
        await extra(req, res)
        return
      }
      sendError(res, 'ERR_NOT_FOUND')
    },
  })
}

async function purge(opts: AdminOptions, req: IncomingRequest, res: ResponseSink): Promise<void> {
  if (!secretEquals(req.header(TIER_SECRET_HEADER), opts.tierSecret)) {
    sendError(res, 'ERR_TIER_AUTH')
    return
  }
  if (!opts.purge) {
    sendError(res, 'ERR_NOT_FOUND')
    return
  }
  const body = await req.readBody(MAX_PURGE_BODY_BYTES)
  let target: { key: string } | { prefix: string } | null = null
  let mode: 'hard' | 'soft' = 'hard'
  let seq: number | undefined
  try {
    const parsed = JSON.parse(body?.toString('utf8') ?? '') as {
      key?: unknown
      prefix?: unknown
      soft?: unknown
      seq?: unknown
    }
    if (typeof parsed.seq === 'number' && Number.isSafeInteger(parsed.seq) && parsed.seq > 0) seq = parsed.seq
    if (typeof parsed.prefix === 'string' && parsed.prefix.startsWith('/')) target = { prefix: parsed.prefix }
    else if (typeof parsed.key === 'string' && parsed.key.startsWith('/')) target = { key: parsed.key }
    if (parsed.soft === true) mode = 'soft'
    else if (parsed.soft !== undefined && parsed.soft !== false) target = null
  } catch {
    target = null
  }
  if (target === null) {
    sendError(res, 'ERR_PURGE_BODY')
    return
  }
  const result = await opts.purge(target, mode, seq)
  if (!res.isAborted) sendJson(res, 200, { ...target, mode, removed: result.removed })
}
