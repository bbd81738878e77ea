import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createAdminServer, HttpServer, sendError, sendJson } from '../../shared/http/index.js'
import type { Logger } from '../../shared/log/index.js'
import { redactPath } from '../../shared/log/index.js'
import { createMetrics } from '../../shared/metrics/index.js'
import { FsStore, type Store } from '../../shared/store/index.js'
import type { OriginConfig } from './config.js'
import { serveContent } from './content.js'

export interface OriginDeps {
  log: Logger
  now?: () => number
  store?: Store
}

export interface RunningTier {
  port: number
  adminPort: number
}

export interface Origin {
  listen(): Promise<RunningTier>
  close(): Promise<void>
}

const originMetrics = {
  requests_total: { type: 'counter', help: 'content requests by status', labels: ['status'] },
  sent_bytes_total: { type: 'counter', help: 'content body bytes sent' },
} as const

export function buildOrigin(config: OriginConfig, deps: OriginDeps): Origin {
  const log = deps.log
  const storeDir = config.store.dir !== '' ? config.store.dir : join(config.dataDir, 'store')
  mkdirSync(config.dataDir, { recursive: true })
  const store = deps.store ?? new FsStore({ dir: storeDir })
  const metrics = createMetrics('vcdn_origin', originMetrics)
  let isReady = false

  const server = new HttpServer({
    host: config.listen.host,
    port: config.listen.port,
    onHandlerError: (err) => log.error({ err }, 'handler failed'),
    handler: async (req, res) => {
      const startedMs = performance.now()
      if (req.path === '/healthz') {
        sendJson(res, 200, { ok: true })
        return
      }
      let result = { status: 404, bytes: 0 }
      if (req.path.startsWith('/v/')) result = await serveContent(req, res, store, config)
      else sendError(res, 'ERR_NOT_FOUND')
      metrics.m.requests_total.inc({ status: result.status })
      metrics.m.sent_bytes_total.inc(result.bytes)
      if (config.accessLog) {
        log.info(
          {
            access: true,
            method: req.method,
            key: redactPath(req.path),
            status: result.status,
            bytes: result.bytes,
            ms: Math.round((performance.now() - startedMs) * 10) / 10,
          },
          'access',
        )
      }
    },
  })
  const admin = createAdminServer({
    host: config.admin.host,
    port: config.admin.port,
    tierSecret: config.tierSecret,
    metricsText: () => metrics.text(),
    metricsContentType: metrics.contentType,
    isReady: () => isReady,
  })

  return {
    async listen() {
      const port = await server.listen()
      const adminPort = await admin.listen()
      isReady = true
      return { port, adminPort }
    },
    async close() {
      isReady = false
      await server.drain(config.drainTimeoutMs)
      await admin.drain(0)
    },
  }
}
