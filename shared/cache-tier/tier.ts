// The part of a cache node that the edge and the shield share (docs/architecture.md §1: "the same
// cache engine with different front doors"): the public listener, the cache engine over a set of
// upstreams chosen by rendezvous hashing, the admin listener, access logs and metrics. Each tier
// supplies only its front door (`gate`): the edge checks playback tokens, the shield the tier
// secret. The gate is one-way: it returns a valid key path or throws a coded error, which this
// module maps to a status.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import { CacheEngine, type ServeRequest, type ServeResult } from '../cache/index.js'
import { TIER_SECRET_HEADER } from '../config/index.js'
import { isVcdnError, toCode, type ErrorCode, type VcdnError } from '../errors/index.js'
import {
  HttpServer,
  sendError,
  sendJson,
  tlsOptionsFrom,
  TrustedProxies,
  type HeaderMap,
  type IncomingRequest,
  type ResponseSink,
} from '../http/index.js'
import type { Logger } from '../log/index.js'
import { createMetrics } from '../metrics/index.js'
import { UpstreamClient, UpstreamSet } from '../upstream/index.js'
import { logAccess, startAccessLine, type AccessLine } from './access-log.js'
import { createTierAdmin } from './admin.js'
import { RewritingSink, type BodyRewrite } from './body-rewrite.js'
import type { CacheTierConfig } from './config.js'
import { RequestCounts, tierMetrics } from './metrics.js'
import { Registration } from './registration.js'
import { cacheRequestHeaders } from './request-headers.js'

/**
 * A tier's front door: runs synchronously on every request before anything else and returns the
 * request's key path, valid by the namespace's rules (shared/namespace validatePath), or throws a
 * VcdnError (a bad path, a refused token or tier secret) that the tier answers with its status.
 */
export type Gate = (req: IncomingRequest) => string

/**
 * What the tier answers itself instead of the cache (the edge's player page and script): called
 * for GET and HEAD with the gate's key path; returns the status it sent, or 0 to go on to the cache.
 */
export type ServeLocal = (path: string, req: IncomingRequest, res: ResponseSink) => number

/**
 * An outgoing body transform (the edge's query-token playlists, docs/architecture.md §3): called
 * for GET and HEAD with the cache key; returns the rewrite of a 200 body, or null to serve the
 * cached bytes as they are. The cache stores and keys the untransformed response.
 */
export type RewriteFor = (key: string, req: IncomingRequest) => BodyRewrite | null

/**
 * A front-door refusal answered in the tier's own words (the edge's page for people when a browser
 * opens its player page with a refused token): called synchronously with the request and its coded
 * error, after the refusal is counted and named in the access line; returns the status it sent, or
 * 0 for the coded JSON answer.
 */
export type RenderRefusal = (req: IncomingRequest, err: VcdnError, res: ResponseSink) => number

export interface CacheTierOptions {
  tier: 'edge' | 'shield'
  config: CacheTierConfig
  /** Upstreams picked per key by HRW (shields for an edge, origins for a shield). */
  upstreams: readonly string[]
  /** Used when no upstream in the set is healthy (the edge's origin fallback). */
  fallback?: string | undefined
  log: Logger
  now?: () => number
  gate: Gate
  serveLocal?: ServeLocal
  rewriteFor?: RewriteFor
  renderRefusal?: RenderRefusal
  /** The origin this node registers with (docs/architecture.md §7.4); undefined: none. */
  registerWith?: string | undefined
  /** Called after a request was served (the edge's prefetch hooks in here). */
  onServed?: (key: string, result: ServeResult) => void
  /**
   * Unsafe methods (POST, PUT, DELETE, …) go to the upstream through the engine's pass() (never
   * stored; a success invalidates the target, RFC 9111 §4.4). Off: 405 with Allow: GET, HEAD.
   */
  passUnsafeMethods?: boolean
}

export interface CacheTier {
  /** tlsPort: the HTTPS listener's port (the same as port when HTTPS replaced plain HTTP), 0 without. */
  listen(): Promise<{ port: number; adminPort: number; tlsPort: number }>
  /** Re-read the certificate files (SIGHUP); false when not reloaded (no TLS, or a bad file: logged). */
  reloadTls(): Promise<boolean>
  close(): Promise<void>
  readonly engine: CacheEngine
  /** The upstreams picked per key by HRW (the edge's shield prefetch asks the chosen shield). */
  readonly upstreams: UpstreamSet
}

const NO_HEADERS: HeaderMap = Object.freeze({})

/** How long listen() waits for the first registration before serving anyway. */
const FIRST_REGISTRATION_WAIT_MS = 3000

/** The admin listener's URL as the origin on this machine reaches it. */
function adminUrlOf(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`
}

/** Whether `key` starts with one of `paths` (a short list, scanned in order). */
function isServedPath(paths: readonly string[], key: string): boolean {
  for (const prefix of paths) if (key.startsWith(prefix)) return true
  return false
}

export async function buildCacheTier(opts: CacheTierOptions): Promise<CacheTier> {
  const { config, log, tier, gate } = opts
  const serveLocal = opts.serveLocal
  const rewriteFor = opts.rewriteFor
  const renderRefusal = opts.renderRefusal
  const isPassing = opts.passUnsafeMethods === true
  mkdirSync(config.cache.dir, { recursive: true })
  const secretHeader = { name: TIER_SECRET_HEADER, value: config.tierSecret }
  const clientFor = (baseUrl: string): UpstreamClient =>
    new UpstreamClient({
      baseUrl,
      connections: config.upstream.connections,
      headersTimeoutMs: config.upstream.headersTimeoutMs,
      bodyTimeoutMs: config.upstream.bodyTimeoutMs,
      connectTimeoutMs: config.upstream.connectTimeoutMs,
      secretHeader,
    })
  const upstreams = new UpstreamSet({
    urls: [...opts.upstreams],
    client: clientFor,
    ...(opts.fallback !== undefined ? { fallback: clientFor(opts.fallback) } : {}),
    log,
  })
  const engine = await CacheEngine.open({
    dir: join(config.cache.dir),
    maxBytes: config.cache.maxBytes,
    memoryMaxBytes: config.cache.memoryMaxBytes,
    memoryObjectMaxBytes: config.cache.memoryObjectMaxBytes,
    negativeTtlMs: config.cache.negativeTtlMs,
    // Only what the operator configured: no silent default freshness (RFC 9111 §4.2.2).
    defaultTtlMs: config.cache.playlistTtlMs === undefined ? {} : { playlist: config.cache.playlistTtlMs },
    fetch: (key, init) => upstreams.request(key, init),
    passUnsafeMethods: isPassing,
    query: config.cache.query === 'list' ? config.cache.queryParams : config.cache.query,
    log,
    ...(opts.now ? { now: opts.now } : {}),
  })
  const requests = new RequestCounts()
  const metrics = createMetrics(
    `vcdn_${tier}`,
    tierMetrics(
      () => engine.counters,
      requests,
      () => upstreams.stats(),
    ),
  )
  const m = metrics.m
  let isReady = false
  const isAccessLog = config.accessLog
  const paths = config.paths
  const proxies = TrustedProxies.from(config.trustedProxies)

  /**
   * Count, notify, log: the tail of every request that reached the front door. `startedMs`
   * (performance.now() as the handler began) times the request up to its last byte handed to the
   * socket: a clock read, no syscall, on the synchronous hit path too.
   */
  const finish = (
    req: IncomingRequest,
    key: string,
    status: number,
    result: ServeResult | null,
    line: AccessLine | null,
    startedMs: number,
  ) => {
    requests.add(status, result?.outcome ?? 'NONE', result?.bytes ?? 0, (performance.now() - startedMs) / 1000)
    if (result !== null) opts.onServed?.(key, result)
    if (line !== null) logAccess(log, req, key, status, result, line)
  }

  /** `req` only from the synchronous front door: its fields are not valid after an await (uWS). */
  const refuse = (res: ResponseSink, err: unknown, line: AccessLine | null, req?: IncomingRequest): number => {
    if (!isVcdnError(err)) throw err
    const code = toCode(err)
    m.refused_total.inc({ code })
    if (line !== null) line.code = code
    if (res.isAborted) return 0
    const rendered = req !== undefined && renderRefusal !== undefined ? renderRefusal(req, err, res) : 0
    return rendered !== 0 ? rendered : sendError(res, err.code)
  }

  /** A coded answer of the front door itself, named in the access line. */
  const answerError = (res: ResponseSink, line: AccessLine | null, code: ErrorCode, extra?: HeaderMap): number => {
    if (line !== null) line.code = code
    return sendError(res, code, extra)
  }

  const serveSlow = async (
    req: IncomingRequest,
    serveReq: ServeRequest,
    res: ResponseSink,
    line: AccessLine | null,
    startedMs: number,
  ): Promise<void> => {
    const key = serveReq.key
    let status = 0
    let result: ServeResult | null = null
    try {
      result = await engine.serve(serveReq, res)
      status = result.status
    } catch (err) {
      status = refuse(res, err, line)
    }
    finish(req, key, status, result, line, startedMs)
  }

  /**
   * A request whose 200 body is rewritten on the way out (RewritingSink). The engine is asked for
   * the whole GET: RFC 9110 §9.3.2, HEAD answers as GET would, so the rewritten length is the one
   * a HEAD reports; no Range and no conditionals, which name the stored bytes (body-rewrite.ts).
   */
  const serveRewritten = async (
    req: IncomingRequest,
    key: string,
    rewrite: BodyRewrite,
    res: ResponseSink,
    line: AccessLine | null,
    startedMs: number,
  ): Promise<void> => {
    const sink = new RewritingSink(res, rewrite)
    let status = 0
    let result: ServeResult | null = null
    try {
      result = await engine.serve({ method: 'GET', key, headers: NO_HEADERS, source: req }, sink)
      status = sink.status
      if (sink.code !== null && line !== null) line.code = sink.code
    } catch (err) {
      status = refuse(res, err, line)
    }
    finish(req, key, status, result, line, startedMs)
  }

  const passSlow = async (
    req: IncomingRequest,
    key: string,
    res: ResponseSink,
    line: AccessLine | null,
    startedMs: number,
  ): Promise<void> => {
    let status = 0
    let result: ServeResult | null = null
    try {
      result = await engine.pass({ method: req.method, key, headers: req.headers, body: req.body }, res)
      status = result.status
    } catch (err) {
      status = refuse(res, err, line)
    }
    finish(req, key, status, result, line, startedMs)
  }

  // Synchronous up to the cache: a fresh memory hit is answered, counted and finished without a
  // promise (most edge traffic); everything else continues in serveSlow.
  const handle = (req: IncomingRequest, res: ResponseSink): void | Promise<void> => {
    if (req.path === '/healthz') {
      sendJson(res, 200, { ok: true })
      return
    }
    // The client and its user agent are read now, before any await (docs/architecture.md §3).
    const line = isAccessLog ? startAccessLine(req, proxies) : null
    // One clock read for the access line and the request time histogram.
    const startedMs = line !== null ? line.startedMs : performance.now()
    let status = 0
    let key = req.path
    try {
      key = gate(req)
      const method = req.method
      const isRead = method === 'GET' || method === 'HEAD'
      // RFC 9110 §15.5.6: 405 names the allowed methods.
      if (!isRead && !isPassing) status = answerError(res, line, 'ERR_REQUEST_METHOD', { allow: 'GET, HEAD' })
      else if (isRead && serveLocal !== undefined) status = serveLocal(key, req, res)
      if (status === 0 && !isServedPath(paths, key)) status = answerError(res, line, 'ERR_NOT_FOUND')
      if (status === 0) {
        // RFC 9111 §2: the key is the target URI, query included (kept per the engine's policy;
        // the upstream is asked for the key, so the query reaches it too).
        if (req.query !== '') key = engine.keyFor(key, req.query)
        if (!isRead) return passSlow(req, key, res, line, startedMs)
        const rewrite = rewriteFor === undefined ? null : rewriteFor(key, req)
        if (rewrite !== null) return serveRewritten(req, key, rewrite, res, line, startedMs)
        // source: every request header, read by the engine only off the hot path (Vary, RFC 9111
        // §4.1, and the end-to-end fields a fill forwards upstream); IncomingRequest copies lazily.
        const serveReq: ServeRequest = { method, key, headers: cacheRequestHeaders(req), source: req }
        const hit = engine.serveHit(serveReq, res)
        if (hit === null) return serveSlow(req, serveReq, res, line, startedMs)
        finish(req, key, hit.status, hit, line, startedMs)
        return
      }
    } catch (err) {
      status = refuse(res, err, line, req)
    }
    finish(req, key, status, null, line, startedMs)
  }

  const server = new HttpServer({
    host: config.listen.host,
    port: config.listen.port,
    ...(config.sendTimeoutS !== undefined ? { sendTimeoutS: config.sendTimeoutS } : {}),
    handler: handle,
    onHandlerError: (err) => log.error({ err }, 'handler failed'),
    cors: config.cors,
    tls: tlsOptionsFrom(config.tls, config.listen.host),
    log,
    proxyProtocol: config.proxyProtocol === true ? (proxies ?? undefined) : undefined,
  })
  let registration: Registration | null = null
  const admin = createTierAdmin({
    host: config.admin.host,
    port: config.admin.port,
    tierSecret: config.tierSecret,
    metrics,
    isReady: () => isReady,
    isUpstreamReachable: () => upstreams.isAnyReachable(),
    engine,
    log,
    onPurged: (seq) => registration?.onLivePurge(seq),
  })
  const registerWith = config.register.origin !== '' ? config.register.origin : opts.registerWith

  return {
    engine,
    upstreams,
    async listen() {
      upstreams.start()
      void upstreams.probe() // readiness need not wait a probe interval (§10.2)
      const adminPort = await admin.listen()
      if (config.register.isEnabled && registerWith !== undefined && registerWith !== '') {
        registration = new Registration({
          originUrl: registerWith,
          id: config.register.id !== '' ? config.register.id : `${tier}-${hostname()}-${adminPort}`,
          tier,
          adminUrl:
            config.register.adminUrl !== '' ? config.register.adminUrl : adminUrlOf(config.admin.host, adminPort),
          tierSecret: config.tierSecret,
          heartbeatMs: config.register.heartbeatS * 1000,
          cacheDir: config.cache.dir,
          engine,
          log,
        })
        // Purges missed while away are applied before viewers are served, unless the origin is slow
        // to answer: then at a later heartbeat.
        await Promise.race([
          registration.start(),
          new Promise((resolve) => setTimeout(resolve, FIRST_REGISTRATION_WAIT_MS)),
        ])
      }
      const port = await server.listen()
      isReady = true
      return { port, adminPort, tlsPort: server.tlsPort }
    },
    reloadTls: () => server.reloadTls('SIGHUP'),
    async close() {
      isReady = false
      await registration?.close()
      await server.drain(config.drainTimeoutMs)
      await admin.drain(0)
      await upstreams.close()
      await engine.close()
    },
  }
}
