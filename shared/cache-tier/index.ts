// The part of a cache node that the edge and the shield share (docs/architecture.md §1: "the same
// cache engine with different front doors"): the public listener, path validation, the cache engine
// over a set of upstreams chosen by rendezvous hashing, the admin listener, access logs and
// metrics. Each tier supplies only its front door (`gate`): the edge checks playback tokens, the
// shield checks the tier secret.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { CacheEngine, normalizeKey, type CacheCounters, type ServeRequest, type ServeResult } from '../cache/index.js'
import { TIER_SECRET_HEADER } from '../config/index.js'
import { isVcdnError, toCode } from '../errors/index.js'
import {
  createAdminServer,
  HttpServer,
  tlsOptionsFrom,
  type CorsOptions,
  type TlsConfig,
  sendError,
  sendJson,
  type HeaderMap,
  type IncomingRequest,
  type ResponseSink,
} from '../http/index.js'
import { redactPath, type Logger } from '../log/index.js'
import { createMetrics, type MetricSpec } from '../metrics/index.js'
import { UpstreamClient, UpstreamSet } from '../upstream/index.js'

export interface CacheTierConfig {
  listen: { host: string; port: number }
  admin: { host: string; port: number }
  tierSecret: string
  /** Seconds a response may wait on a client that takes no bytes (shared/http sendTimeoutSchema). */
  sendTimeoutS?: number
  /** HTTPS and CORS of the public listener (shared/http tlsSchema, cors options). */
  tls?: TlsConfig
  cors?: CorsOptions
  /** Path prefixes this tier serves (`/v/` for video; `/` for any path: a cache in front of any origin). */
  paths: readonly string[]
  accessLog: boolean
  drainTimeoutMs: number
  cache: {
    dir: string
    maxBytes: number
    memoryMaxBytes: number
    memoryObjectMaxBytes: number
    negativeTtlMs: number
    /** Unset: playlists without explicit freshness get RFC 9111 §4.2.2 heuristics only. */
    playlistTtlMs?: number | undefined
    /** What the query string adds to the key and the upstream request: all, none, or queryParams. */
    query: 'keep' | 'ignore' | 'list'
    queryParams: readonly string[]
  }
  upstream: {
    connections: number
    headersTimeoutMs: number
    bodyTimeoutMs: number
    connectTimeoutMs: number
  }
}

/**
 * What a front door decided: serve this content path, or it already answered (refusal).
 * `isKey`: the gate already passed the path through normalizeKey() (the edge does, to check the
 * token's scope on the canonical path), so it is not validated a second time.
 */
export type GateResult = { path: string; isKey?: boolean } | { status: number }

export interface CacheTierOptions {
  tier: 'edge' | 'shield'
  config: CacheTierConfig
  /** Upstreams picked per key by HRW (shields for an edge, origins for a shield). */
  upstreams: readonly string[]
  /** Used when no upstream in the set is healthy (the edge's origin fallback). */
  fallback?: string | undefined
  log: Logger
  now?: () => number
  /** The tier's front door; runs synchronously on every request before anything else. */
  gate: (req: IncomingRequest, res: ResponseSink) => GateResult
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
}

const MAX_KEY_BYTES = 1024

/**
 * The problems with a `paths` list (empty when none): every entry is a path prefix that
 * normalizeKey() could accept the start of — it begins with `/` and holds only printable ASCII
 * without `?`, `#` or `\\` (a query or fragment never reaches the key's path).
 */
export function pathsProblems(paths: readonly string[], at = 'paths'): string[] {
  const problems: string[] = []
  paths.forEach((prefix, i) => {
    if (!prefix.startsWith('/')) problems.push(`${at}[${i}] must start with / (got ${JSON.stringify(prefix)})`)
    else if (!/^[\x21-\x7e]+$/.test(prefix) || /[?#\\]/.test(prefix)) {
      problems.push(`${at}[${i}] must be printable ASCII without ?, # or \\ (got ${JSON.stringify(prefix)})`)
    }
  })
  return problems
}

/** The problems with `cache.query` / `cache.queryParams` (empty when none). */
export function queryProblems(cache: Pick<CacheTierConfig['cache'], 'query' | 'queryParams'>): string[] {
  if (cache.query !== 'list') return []
  if (cache.queryParams.length === 0)
    return ['cache.queryParams must name at least one parameter when cache.query is "list"']
  return cache.queryParams.flatMap((name, i) =>
    name.length === 0 || /[&=#\s]/.test(name)
      ? [`cache.queryParams[${i}] must be a parameter name without &, =, # or spaces (got ${JSON.stringify(name)})`]
      : [],
  )
}

/** Whether `key` starts with one of `paths` (a short list, scanned in order). */
function isServedPath(paths: readonly string[], key: string): boolean {
  for (const prefix of paths) if (key.startsWith(prefix)) return true
  return false
}

// normalizeKey() is a pure function of the path and the same few paths (a playlist, the current
// segments) arrive over and over; remembering the ones that passed spares its scan and split on
// hot paths. Bounded: cleared when full (owned by this module, single-threaded).
const VALID_KEYS_MAX = 4096
const validKeys = new Set<string>()

/** normalizeKey() with a memo of the paths that passed; throws exactly as normalizeKey() does. */
export function validateKey(path: string): string {
  if (validKeys.has(path)) return path
  const key = normalizeKey(path)
  if (validKeys.size >= VALID_KEYS_MAX) validKeys.clear()
  validKeys.add(key)
  return key
}

/** The engine's view of a request's headers when it has none of them: most hits. Never mutated. */
const NO_HEADERS: HeaderMap = Object.freeze({})

/**
 * The request headers the cache engine acts on, read one by one (copying every header a player
 * sends costs more than the rest of a hit): RFC 9110 §13.1 conditionals and §14.2 Range, with
 * If-Range only beside a Range (§13.1.5).
 */
function cacheRequestHeaders(req: IncomingRequest): HeaderMap {
  let headers: HeaderMap | null = null
  const range = req.header('range')
  if (range !== undefined) {
    headers = { range }
    const ifRange = req.header('if-range')
    if (ifRange !== undefined) headers['if-range'] = ifRange
  }
  const ifNoneMatch = req.header('if-none-match')
  if (ifNoneMatch !== undefined) (headers ??= {})['if-none-match'] = ifNoneMatch
  const ifModifiedSince = req.header('if-modified-since')
  if (ifModifiedSince !== undefined) (headers ??= {})['if-modified-since'] = ifModifiedSince
  const ifMatch = req.header('if-match')
  if (ifMatch !== undefined) (headers ??= {})['if-match'] = ifMatch
  const ifUnmodifiedSince = req.header('if-unmodified-since')
  if (ifUnmodifiedSince !== undefined) (headers ??= {})['if-unmodified-since'] = ifUnmodifiedSince
  return headers ?? NO_HEADERS
}

/**
 * Per-request counters as plain numbers (owned by one tier's request handler, read at scrape time):
 * requests by status and cache outcome, and body bytes sent.
 */
class RequestCounts {
  readonly #byStatus = new Map<number, Map<string, { n: number }>>()
  // The cell of the last (status, cache) pair counted: consecutive requests (a run of hits) bump
  // it without a Map lookup.
  #lastStatus = -1
  #lastCache = ''
  #lastCell: { n: number } = { n: 0 }
  sentBytes = 0

  add(status: number, cache: string): void {
    if (status === this.#lastStatus && cache === this.#lastCache) {
      this.#lastCell.n++
      return
    }
    let byCache = this.#byStatus.get(status)
    if (byCache === undefined) {
      byCache = new Map()
      this.#byStatus.set(status, byCache)
    }
    let cell = byCache.get(cache)
    if (cell === undefined) {
      cell = { n: 0 }
      byCache.set(cache, cell)
    }
    cell.n++
    this.#lastStatus = status
    this.#lastCache = cache
    this.#lastCell = cell
  }

  *samples(): Iterable<readonly [Record<string, string | number>, number]> {
    for (const [status, byCache] of this.#byStatus)
      for (const [cache, cell] of byCache) yield [{ status, cache }, cell.n]
  }
}

function tierMetrics(counters: () => Readonly<CacheCounters>, requests: RequestCounts) {
  const gauge = (help: string, pick: (c: Readonly<CacheCounters>) => number): MetricSpec => ({
    type: 'gauge',
    help,
    collect: () => pick(counters()),
  })
  return {
    requests_total: {
      type: 'counter',
      help: 'requests by status and cache outcome',
      labels: ['status', 'cache'],
      collect: () => requests.samples(),
    },
    sent_bytes_total: { type: 'counter', help: 'body bytes sent to clients', collect: () => requests.sentBytes },
    refused_total: { type: 'counter', help: 'requests refused by the front door, by code', labels: ['code'] },
    cache_hits: gauge('cache hits (engine counter)', (c) => c.hits),
    cache_misses: gauge('cache misses (engine counter)', (c) => c.misses),
    cache_stale: gauge('stale objects served', (c) => c.stale),
    cache_revalidated: gauge('objects revalidated with 304', (c) => c.revalidated),
    cache_fills: gauge('upstream fills completed', (c) => c.fills),
    cache_fill_errors: gauge('fills that failed', (c) => c.fillErrors),
    cache_store_errors: gauge('fills served but not stored: the disk refused them', (c) => c.storeErrors),
    cache_coalesced: gauge('requests that joined a fill in flight', (c) => c.coalesced),
    upstream_requests: gauge('requests sent upstream', (c) => c.upstreamRequests),
    cache_evictions: gauge('objects evicted', (c) => c.evictions),
    cache_evicted_bytes: gauge('bytes evicted', (c) => c.evictedBytes),
    cache_purged: gauge('objects purged', (c) => c.purged),
    cache_memory_bytes: gauge('bytes in the memory tier', (c) => c.memoryBytes),
    cache_disk_bytes: gauge('bytes in the disk tier', (c) => c.diskBytes),
    cache_objects: gauge('objects in the disk index', (c) => c.objects),
    prefetch_issued: gauge('prefetches issued', (c) => c.prefetchIssued),
    prefetch_used: gauge('prefetched objects later hit', (c) => c.prefetchUsed),
    cache_index_rebuilds: gauge('damaged disk indexes moved aside at start', (c) => c.indexRebuilds),
    cache_index_errors: gauge('index operations that found damage at run time', (c) => c.indexErrors),
  } satisfies Record<string, MetricSpec>
}

export async function buildCacheTier(opts: CacheTierOptions): Promise<CacheTier> {
  const { config, log, tier } = opts
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
    tierMetrics(() => engine.counters, requests),
  )
  const m = metrics.m
  let isReady = false
  const isAccessLog = config.accessLog
  const paths = config.paths

  /** Count, notify, log: the tail of every request that reached the front door. */
  const finish = (req: IncomingRequest, key: string, status: number, result: ServeResult | null, startedMs: number) => {
    const cache = result?.outcome ?? 'NONE'
    requests.add(status, cache)
    if (result !== null) {
      requests.sentBytes += result.bytes
      opts.onServed?.(key, result)
    }
    if (isAccessLog) {
      log.info(
        {
          access: true,
          method: req.method,
          key: redactPath(key),
          status,
          cache,
          bytes: result?.bytes ?? 0,
          upstreamMs: result?.upstreamMs ?? null,
          ms: Math.round((performance.now() - startedMs) * 10) / 10,
        },
        'access',
      )
    }
  }

  const refuse = (res: ResponseSink, err: unknown): number => {
    if (!isVcdnError(err)) throw err
    m.refused_total.inc({ code: toCode(err) })
    return res.isAborted ? 0 : sendError(res, err.code)
  }

  const serveSlow = async (
    req: IncomingRequest,
    serveReq: ServeRequest,
    res: ResponseSink,
    startedMs: number,
  ): Promise<void> => {
    const key = serveReq.key
    let status = 0
    let result: ServeResult | null = null
    try {
      result = await engine.serve(serveReq, res)
      status = result.status
    } catch (err) {
      status = refuse(res, err)
    }
    finish(req, key, status, result, startedMs)
  }

  const passSlow = async (req: IncomingRequest, key: string, res: ResponseSink, startedMs: number): Promise<void> => {
    let status = 0
    let result: ServeResult | null = null
    try {
      result = await engine.pass({ method: req.method, key, headers: req.headers, body: req.body }, res)
      status = result.status
    } catch (err) {
      status = refuse(res, err)
    }
    finish(req, key, status, result, startedMs)
  }

  // Synchronous up to the cache: a fresh memory hit is answered, counted and finished without a
  // promise (most edge traffic); everything else continues in serveSlow.
  const handle = (req: IncomingRequest, res: ResponseSink): void | Promise<void> => {
    if (req.path === '/healthz') {
      sendJson(res, 200, { ok: true })
      return
    }
    const startedMs = isAccessLog ? performance.now() : 0
    let status = 0
    let key = req.path
    try {
      const gate = opts.gate(req, res)
      if ('status' in gate) {
        status = gate.status
      } else if (req.method !== 'GET' && req.method !== 'HEAD' && !isPassing) {
        // RFC 9110 §15.5.6: 405 names the allowed methods.
        status = sendError(res, 'ERR_REQUEST_METHOD', { allow: 'GET, HEAD' })
      } else if (gate.path.length > MAX_KEY_BYTES) {
        status = sendError(res, 'ERR_REQUEST_PATH')
      } else {
        key = gate.isKey === true ? gate.path : validateKey(gate.path)
        if (!isServedPath(paths, key)) {
          status = sendError(res, 'ERR_NOT_FOUND')
        } else {
          // RFC 9111 §2: the key is the target URI, query included (kept per the engine's policy;
          // the upstream is asked for the key, so the query reaches it too).
          if (req.query !== '') key = engine.keyFor(key, req.query)
          if (req.method !== 'GET' && req.method !== 'HEAD') return passSlow(req, key, res, startedMs)
          // source: every request header, read by the engine only off the hot path (Vary, RFC 9111
          // §4.1, and the end-to-end fields a fill forwards upstream); IncomingRequest copies lazily.
          const serveReq: ServeRequest = { method: req.method, key, headers: cacheRequestHeaders(req), source: req }
          const hit = engine.serveHit(serveReq, res)
          if (hit === null) return serveSlow(req, serveReq, res, startedMs)
          finish(req, key, hit.status, hit, startedMs)
          return
        }
      }
    } catch (err) {
      status = refuse(res, err)
    }
    finish(req, key, status, null, startedMs)
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
  })
  const admin = createAdminServer({
    host: config.admin.host,
    port: config.admin.port,
    tierSecret: config.tierSecret,
    metricsText: () => metrics.text(),
    metricsContentType: metrics.contentType,
    isReady: () => isReady,
    purge: async (target) => {
      const r = await engine.purge(target)
      log.info({ ...target, removed: r.removed }, 'purged')
      return r
    },
  })

  return {
    engine,
    async listen() {
      upstreams.start()
      const port = await server.listen()
      const adminPort = await admin.listen()
      isReady = true
      return { port, adminPort, tlsPort: server.tlsPort }
    },
    reloadTls: () => server.reloadTls('SIGHUP'),
    async close() {
      isReady = false
      await server.drain(config.drainTimeoutMs)
      await admin.drain(0)
      await upstreams.close()
      await engine.close()
    },
  }
}

/** Schema fragment for the `cache` and `upstream` keys, shared by the edge and shield tables. */
export const cacheTierSchema = {
  paths: {
    type: 'string[]',
    default: ['/v/'],
    min: 1,
    doc: 'path prefixes served (["/"] serves any path: a cache in front of any origin); others get 404',
  },
  cache: {
    dir: { type: 'string', isRequired: true, doc: 'disk cache directory (index.sqlite + objects)' },
    maxBytes: { type: 'integer', default: 10 * 1024 ** 3, min: 1024 * 1024, unit: 'bytes', doc: 'disk cache budget' },
    memoryMaxBytes: { type: 'integer', default: 512 * 1024 ** 2, min: 0, unit: 'bytes', doc: 'memory tier budget' },
    memoryObjectMaxBytes: {
      type: 'integer',
      default: 8 * 1024 ** 2,
      min: 0,
      unit: 'bytes',
      doc: 'objects larger than this stay on disk only',
    },
    negativeTtlMs: { type: 'integer', default: 10_000, min: 0, unit: 'ms', doc: 'how long a 404 is cached' },
    playlistTtlMs: {
      type: 'integer',
      min: 0,
      unit: 'ms',
      doc: 'freshness of playlists when upstream states none (unset: RFC 9111 heuristics only)',
    },
    query: {
      type: 'string',
      default: 'keep',
      oneOf: ['keep', 'ignore', 'list'],
      doc: 'query string in the cache key and the upstream request: keep all (RFC 9111 §2), ignore, or list (only cache.queryParams); token and CMCD are always removed',
    },
    queryParams: {
      type: 'string[]',
      default: [],
      doc: 'with cache.query "list": the query parameters kept in the key and sent upstream',
    },
  },
  upstream: {
    connections: { type: 'integer', default: 32, min: 1, doc: 'keep-alive connections per upstream' },
    headersTimeoutMs: { type: 'integer', default: 10_000, min: 1, unit: 'ms', doc: 'upstream time to headers' },
    bodyTimeoutMs: { type: 'integer', default: 30_000, min: 1, unit: 'ms', doc: 'upstream idle time mid-body' },
    connectTimeoutMs: { type: 'integer', default: 3_000, min: 1, unit: 'ms', doc: 'upstream connect timeout' },
  },
} as const

export { TIER_SECRET_HEADER }
