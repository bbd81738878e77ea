// The part of a cache node that the edge and the shield share (docs/architecture.md §1: "the same
// cache engine with different front doors"): the public listener, the cache engine over a set of
// upstreams chosen by rendezvous hashing, the admin listener, access logs and metrics. Each tier
// supplies only its front door (`gate`): the edge checks playback tokens, the shield the tier
// secret. The gate is one-way: it returns a valid key path or throws a coded error, which this
// module maps to a status.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import { CacheEngine, type QueryPolicy, type ServeRequest, type ServeResult } from '../cache/index.js'
import { TIER_SECRET_HEADER } from '../config/index.js'
import { isVcdnError, toCode, type ErrorCode, type VcdnError } from '../errors/index.js'
import {
  HttpServer,
  ProxyV1Listener,
  frontEndAddress,
  reservePort,
  sendError,
  sendJson,
  tlsOptionsFrom,
  TrustedProxies,
  type HeaderMap,
  type IncomingRequest,
  type ResponseSink,
} from '../http/index.js'
import type { Logger } from '../log/index.js'
import { createMetrics, type MetricSpec } from '../metrics/index.js'
import { UpstreamClient, UpstreamSet } from '../upstream/index.js'
import { logAccess, startAccessLine, type AccessLine } from './access-log.js'
import { createTierAdmin } from './admin.js'
import { RewritingSink, type BodyRewrite } from './body-rewrite.js'
import { workerCount, type CacheTierConfig } from './config.js'
import { MAIN_THREAD_ONLY, RequestCounts, tierMetrics } from './metrics.js'
import { Registration } from './registration.js'
import { cacheRequestHeaders } from './request-headers.js'
import type { ControlConsumer } from './control-consumer.js'
import { CoordinatorLink, type TierEngine } from './worker-link.js'
import { WorkerPool } from './worker-pool.js'
import { tierWorkerData } from './worker-protocol.js'

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
  /** The tier's own metrics beside the shared table (the edge's prefetcher counts). */
  metrics?: Record<string, MetricSpec>
  /**
   * Called after a request was served (the edge's prefetch hooks in here), on the thread that owns
   * the engine: in a `workers` > 1 process the coordinator, which gets a worker's served keys in its
   * next batch (docs/architecture.md §9.1).
   */
  onServed?: (key: string, result: Pick<ServeResult, 'status'>) => void
  /** Called with each key given to CacheTier.hint (a client's CMCD next request), on the same thread as onServed. */
  onHint?: (key: string) => void
  /**
   * Unsafe methods (POST, PUT, DELETE, …) go to the upstream through the engine's pass() (never
   * stored; a success invalidates the target, RFC 9111 §4.4). Off: 405 with Allow: GET, HEAD.
   */
  passUnsafeMethods?: boolean
}

export interface CacheTier {
  /**
   * tlsPort: the HTTPS listener's port (the same as port when HTTPS replaced plain HTTP), 0 without;
   * proxyV1Port: the PROXY v1 listener's, 0 without.
   */
  listen(): Promise<{ port: number; adminPort: number; tlsPort: number; proxyV1Port: number }>
  /** Re-read the certificate files (SIGHUP); false when not reloaded (no TLS, or a bad file: logged). */
  reloadTls(): Promise<boolean>
  /** A key a client named as its next request (CMCD nor), checked: to `onHint` on the engine's thread. */
  hint(key: string): void
  close(): Promise<void>
  /** The engine, or in a worker thread (docs/architecture.md §9.1) the link to the coordinator's. */
  readonly engine: TierEngine
  /**
   * This thread's own engine and the upstreams it picks per key by HRW (the edge's shield prefetch
   * asks the chosen shield); null in a worker thread, whose coordinator holds them.
   */
  readonly local: { readonly engine: CacheEngine; readonly upstreams: UpstreamSet } | null
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

/** The engine's `query` policy from the tier's config. */
function queryPolicyOf(config: CacheTierConfig): QueryPolicy {
  return config.cache.query === 'list' ? config.cache.queryParams : config.cache.query
}

/**
 * The parts a tier's process has once, whatever its `workers` (docs/architecture.md §9.1): the
 * upstreams, the engine (memory tier, disk tier and index, fills) and the metrics. In a
 * `workers` > 1 process they live in the coordinator (the main thread) only.
 */
async function openCacheNode(opts: CacheTierOptions) {
  const { config, log, tier } = opts
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
    passUnsafeMethods: opts.passUnsafeMethods === true,
    query: queryPolicyOf(config),
    // Worker threads send memory-tier bodies without copying them (worker-pool.ts).
    isMemoryShared: workerCount(config) > 1,
    log,
    ...(opts.now ? { now: opts.now } : {}),
  })
  const requests = new RequestCounts()
  let pool: WorkerPool | null = null
  const metrics = createMetrics(`vcdn_${tier}`, {
    ...tierMetrics(
      () => engine.counters,
      requests,
      () => upstreams.stats(),
      () => pool ?? MAIN_THREAD_ONLY,
    ),
    ...opts.metrics,
  })
  return {
    upstreams,
    engine,
    requests,
    metrics,
    setPool: (p: WorkerPool) => {
      pool = p
    },
  }
}

export async function buildCacheTier(opts: CacheTierOptions): Promise<CacheTier> {
  const { config, log, tier, gate } = opts
  const serveLocal = opts.serveLocal
  const rewriteFor = opts.rewriteFor
  const renderRefusal = opts.renderRefusal
  const isPassing = opts.passUnsafeMethods === true
  // In a worker thread the request logic below talks to the coordinator's engine through a link;
  // everywhere else to the engine itself (docs/architecture.md §9.1).
  const asWorker = tierWorkerData()
  const link =
    asWorker === null ? null : new CoordinatorLink({ query: queryPolicyOf(config), now: opts.now ?? Date.now })
  const node = link === null ? await openCacheNode(opts) : null
  const engine: TierEngine = link ?? (node as NonNullable<typeof node>).engine
  const count =
    link !== null
      ? (status: number, cache: string, bytes: number, seconds: number) => link.count(status, cache, bytes, seconds)
      : (status: number, cache: string, bytes: number, seconds: number) =>
          node?.requests.add(status, cache, bytes, seconds)
  // The served keys and hints reach the engine's thread: in a worker, through the link's batches.
  const onServed = opts.onServed
  const served =
    onServed === undefined
      ? undefined
      : link !== null
        ? (key: string, status: number) => link.served(key, status)
        : (key: string, status: number) => onServed(key, { status })
  const countRefused =
    link !== null
      ? (code: ErrorCode) => link.refused(code)
      : (code: ErrorCode) => node?.metrics.m.refused_total.inc({ code })
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
    count(status, result?.outcome ?? 'NONE', result?.bytes ?? 0, (performance.now() - startedMs) / 1000)
    if (result !== null) served?.(key, result.status)
    if (line !== null) logAccess(log, req, key, status, result, line)
  }

  /** `req` only from the synchronous front door: its fields are not valid after an await (uWS). */
  const refuse = (res: ResponseSink, err: unknown, line: AccessLine | null, req?: IncomingRequest): number => {
    if (!isVcdnError(err)) throw err
    const code = toCode(err)
    countRefused(code)
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

  const workers = workerCount(config)
  const tls = tlsOptionsFrom(config.tls, config.listen.host)
  // The PROXY v1 front end runs in the coordinator; its loopback address is chosen there and
  // handed to the workers, whose listeners believe its v2 headers (shared/http proxy-v1.ts).
  const v1 = config.proxyProtocolV1?.port !== undefined ? config.proxyProtocolV1 : undefined
  const proxyFrontEnd = asWorker?.proxyFrontEnd ?? (v1 !== undefined ? frontEndAddress() : undefined)
  const server = new HttpServer({
    host: config.listen.host,
    // Workers share the port the coordinator checked and chose (worker-pool.ts).
    port: asWorker?.port ?? config.listen.port,
    isPortShared: asWorker !== null,
    ...(config.sendTimeoutS !== undefined ? { sendTimeoutS: config.sendTimeoutS } : {}),
    handler: handle,
    onHandlerError: (err) => log.error({ err }, 'handler failed'),
    cors: config.cors,
    // A worker's HTTPS beside plain HTTP binds the port its coordinator checked and chose.
    tls:
      tls?.listen !== undefined && asWorker?.tlsPort !== undefined
        ? { ...tls, listen: { ...tls.listen, port: asWorker.tlsPort } }
        : tls,
    log,
    proxyProtocol: config.proxyProtocol === true ? (proxies ?? undefined) : undefined,
    proxyFrontEnd,
  })
  if (link !== null) return workerTier(link, server, engine, log, (asWorker as NonNullable<typeof asWorker>).index)
  const { upstreams, metrics } = node as NonNullable<typeof node>
  const cacheEngine = (node as NonNullable<typeof node>).engine
  let pool: WorkerPool | null = null
  let registration: Registration | null = null
  let control: ControlConsumer | null = null
  let proxyV1: ProxyV1Listener | null = null
  /** The PROXY v1 front end, once the plain listener it feeds listens on `port`; 0 when off. */
  const listenV1 = async (port: number): Promise<number> => {
    if (v1?.port === undefined || proxyFrontEnd === undefined || proxies === null) return 0
    proxyV1 = new ProxyV1Listener({
      host: v1.host !== '' ? v1.host : config.listen.host,
      port: v1.port,
      proxies,
      target: { host: config.listen.host, port },
      localAddress: proxyFrontEnd,
      log,
    })
    return proxyV1.listen()
  }
  const admin = createTierAdmin({
    host: config.admin.host,
    port: config.admin.port,
    tierSecret: config.tierSecret,
    metrics,
    isReady: () => isReady,
    isUpstreamReachable: () => upstreams.isAnyReachable(),
    engine: cacheEngine,
    log,
    onPurged: (seq) => registration?.onLivePurge(seq),
    restartWorker: (index) => pool?.restart(index) ?? false,
  })
  const registerWith = config.register.origin !== '' ? config.register.origin : opts.registerWith

  return {
    engine,
    local: { engine: cacheEngine, upstreams },
    async listen() {
      upstreams.start()
      void upstreams.probe() // readiness need not wait a probe interval (§10.2)
      const adminPort = await admin.listen()
      const nodeId = config.register.id !== '' ? config.register.id : `${tier}-${hostname()}-${adminPort}`
      if (config.register.isEnabled && registerWith !== undefined && registerWith !== '') {
        registration = new Registration({
          originUrl: registerWith,
          id: nodeId,
          tier,
          adminUrl:
            config.register.adminUrl !== '' ? config.register.adminUrl : adminUrlOf(config.admin.host, adminPort),
          tierSecret: config.tierSecret,
          heartbeatMs: config.register.heartbeatS * 1000,
          cacheDir: config.cache.dir,
          engine: cacheEngine,
          log,
        })
        // Purges missed while away are applied before viewers are served, unless the origin is slow
        // to answer: then at a later heartbeat.
        await Promise.race([
          registration.start(),
          new Promise((resolve) => setTimeout(resolve, FIRST_REGISTRATION_WAIT_MS)),
        ])
      }
      if (config.control.kind === 'kafka') {
        // Loaded only here: the embedded default never loads the Kafka client (docs/architecture.md §9).
        const { ControlConsumer } = await import('./control-consumer.js')
        control = await ControlConsumer.start({
          kafka: config.control.kafka,
          nodeId,
          engine: cacheEngine,
          registration,
          log,
          now: opts.now ?? Date.now,
          count: (type, result) => metrics.m.control_events_total.inc({ type, result }),
        })
      }
      if (workers === 1) {
        const port = await server.listen()
        const proxyV1Port = await listenV1(port)
        isReady = true
        return { port, adminPort, tlsPort: server.tlsPort, proxyV1Port }
      }
      // Workers bind with SO_REUSEPORT, so the port is checked free first, as the HTTPS listener
      // does (listen.ts reservePort); port 0 becomes the kernel's pick, shared by every worker.
      const port = await reservePort(config.listen.host, config.listen.port)
      // HTTPS: each worker has its own listener on the shared port, beside plain HTTP (tls.listen)
      // or in its place (then `port` is the HTTPS port).
      const tlsPort =
        tls === undefined ? 0 : tls.listen === undefined ? port : await reservePort(tls.listen.host, tls.listen.port)
      pool = new WorkerPool({
        count: workers,
        port,
        ...(tls?.listen !== undefined ? { tlsPort } : {}),
        proxyFrontEnd,
        engine: cacheEngine,
        log,
        onCounts: (numbers, caches, refused) => {
          caches.forEach((cache, i) =>
            node?.requests.add(numbers[3 * i] ?? 0, cache, numbers[3 * i + 1] ?? 0, numbers[3 * i + 2] ?? 0),
          )
          for (const code of refused) metrics.m.refused_total.inc({ code })
        },
        onServed: (key, status) => opts.onServed?.(key, { status }),
        onHint: (key) => opts.onHint?.(key),
        // A worker runs the command this process runs, as a thread (main.ts: isTierWorker()).
        entry: process.argv[1] ?? '',
        argv: process.argv.slice(2),
      })
      ;(node as NonNullable<typeof node>).setPool(pool)
      // Workers answer fresh memory hits themselves; a changed entry is forgotten at once (§9.1).
      const started = pool
      cacheEngine.watchMemory((key) => started.memoryChanged(key))
      await pool.start()
      const proxyV1Port = await listenV1(port)
      isReady = true
      return { port, adminPort, tlsPort, proxyV1Port }
    },
    // With workers the coordinator serves nothing: its workers' listeners reload.
    reloadTls: () => (pool !== null ? pool.reloadTls('SIGHUP') : server.reloadTls('SIGHUP')),
    hint: (key) => opts.onHint?.(key),
    async close() {
      isReady = false
      await control?.close()
      await registration?.close()
      // The front end stops taking connections first; those open drain through the listener.
      proxyV1?.stopListening()
      if (pool !== null) await pool.close(config.drainTimeoutMs)
      await server.drain(config.drainTimeoutMs)
      proxyV1?.close()
      await admin.drain(0)
      await upstreams.close()
      await cacheEngine.close()
    },
  }
}

/**
 * A worker thread's tier (docs/architecture.md §9.1): the listener on the shared port, no engine,
 * admin or upstreams of its own. It serves until the coordinator says close; a crash (an uncaught
 * exception or rejection) closes the listener and every connection before the thread ends, since
 * uWS aborts the whole process when a thread ends with its sockets open (docs/architecture.md §9.1), and the
 * coordinator starts a replacement.
 */
function workerTier(
  link: CoordinatorLink,
  server: HttpServer,
  engine: TierEngine,
  log: Logger,
  index: number,
): CacheTier {
  let isEnding = false
  const end = (drainTimeoutMs: number, exitCode: number): void => {
    if (isEnding) return
    isEnding = true
    process.exitCode = exitCode
    server.drain(drainTimeoutMs).then(
      () => {
        log.flush()
        link.detach()
      },
      (err: unknown) => log.error({ err }, 'worker drain failed'),
    )
  }
  const onCrash = (err: unknown): void => {
    log.error({ err, worker: index }, 'worker crashed: closing its connections')
    end(0, 1)
  }
  return {
    engine,
    local: null,
    async listen() {
      process.on('uncaughtException', onCrash)
      process.on('unhandledRejection', onCrash)
      link.onClose = (drainTimeoutMs) => end(drainTimeoutMs, 0)
      link.onReloadTls = (reason) => server.reloadTls(reason)
      // The admin route POST /workers/restart: fail the way a crash does, through the same path.
      link.onCrash = () =>
        setImmediate(() => {
          throw new Error(`worker ${index}: restart requested`)
        })
      const port = await server.listen()
      link.ready()
      return { port, adminPort: 0, tlsPort: 0, proxyV1Port: 0 }
    },
    reloadTls: () => Promise.resolve(false),
    hint: (key) => link.hint(key),
    close: () => {
      end(0, 0)
      return Promise.resolve()
    },
  }
}
