// The cache engine shared by the edge and the shield (docs/architecture.md §5): memory tier
// (lru-cache) over a disk tier (files + SQLite index), coalesced read-while-writer fills, RFC
// 9110/9111/5861 semantics, LRU eviction with watermarks, crash-safe commits and purge.
//
// Ownership of shared mutable state: the engine alone mutates the memory tier, the index, the
// fill map and the counters; a Fill owns its received bytes and temp file; readers own only their
// cursors. Everything runs on the event-loop thread, so each synchronous section is atomic.

import { createHash, randomBytes } from 'node:crypto'
import { closeSync, createReadStream, openSync, read } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { LRUCache } from 'lru-cache'
import { errorBody, hasCode, isVcdnError, VcdnError, type ErrorCode } from '../errors/index.js'
import type { HeaderMap, ResponseSink } from '../http/types.js'
import { DiskIndex, type FileRef, type IndexRow } from './disk-index.js'
import { Fill, pipeFill, type FillHead, type FillPlan, type FillReader } from './fill.js'
import {
  isStorable,
  mergeRevalidatedHeaders,
  cacheDirectives,
  parseContentLength,
  pickStoredHeaders,
  upstreamAgeSec,
} from './http-semantics.js'
import { cacheKey } from './normalize-key.js'
import { forwardedRequestHeaders, parseVary, primaryKey, VARIANT_SEPARATOR, variantKey } from './vary.js'
import { resolveOptions, type ResolvedOptions } from './options.js'
import { planFillAnswer, planStored } from './plan.js'
import { ageSeconds, describeStored, isStorableStatus, responseHeaders, type StoredObject } from './stored-object.js'
import type {
  CacheCounters,
  CacheOptions,
  CacheOutcome,
  PassRequest,
  PrefetchResult,
  PurgeTarget,
  ServeRequest,
  ServeResult,
} from './types.js'

interface MemoryEntry {
  obj: StoredObject
  readonly body: Buffer
  isPrefetched: boolean
  /** Cached HIT headers for the plain hot path, rebuilt when the Age second changes. */
  hitHeaders: HeaderMap | null
  hitAgeSec: number
  /** The result of a plain GET hit of this entry, shared by every such hit (never mutated). */
  hitResult: ServeResult | null
}

// What a memory entry costs beyond its body, so the memory budget bounds the process and not only
// the bodies: a flood of distinct tiny objects (404s of ~60 bytes) used to fill a 16 MiB budget with
// ~300 000 entries and ~800 MB of RSS. On Node 20 a 404 entry with nine header fields holds ~800
// bytes of live heap besides its body, but in a running edge each one costs ~3 KB of RSS: entries
// live long, among short-lived request garbage, so old-space pages stay partly used (measured as
// the RSS difference between a 1 MiB and a 16 MiB tier after 60 000 distinct 404s). The estimate
// follows the RSS: a fixed part (MemoryEntry, StoredObject and its stale policy, the LRU's slot
// and Map entry, the shared hit result, an ArrayBuffer per body) and per header field its name and
// value twice (stored and rendered head) with V8's string and property overhead. Counting too much
// only makes the tier hold fewer tiny entries; counting too little lets the process outgrow it.
const ENTRY_FIXED_BYTES = 1536
const HEADER_FIELD_BYTES = 48

/** The memory budget's measure of an entry: body + key + headers (stored and rendered) + bookkeeping. */
function memoryEntryCost(entry: MemoryEntry): number {
  let headerBytes = 0
  const headers = entry.obj.headers
  for (const name in headers) headerBytes += name.length + String(headers[name] ?? '').length + HEADER_FIELD_BYTES
  return ENTRY_FIXED_BYTES + entry.body.length + 2 * entry.obj.key.length + 2 * headerBytes
}

/**
 * A body the memory tier may keep: one that owns exactly its bytes. An upstream chunk is a view of
 * the socket read it arrived in (status line and headers included), and a small Buffer.concat is
 * a view of Node's shared 8 KiB pool; kept as is, a 60-byte 404 body pinned ~700 bytes.
 */
function ownedBody(body: Buffer | null): Buffer | null {
  if (body === null || (body.byteOffset === 0 && body.buffer.byteLength === body.length)) return body
  const owned = Buffer.allocUnsafeSlow(body.length)
  body.copy(owned)
  return owned
}

const FLUSH_INTERVAL_MS = 1000
const EVICT_BATCH = 128
const TOUCH_BATCH_MAX = 4096
/** Per disk object beyond its bytes: a file system block partly used, plus its SQLite index row. */
const DISK_OBJECT_OVERHEAD_BYTES = 4096
const DISK_STREAM_CHUNK = 256 * 1024
const NO_HEADERS: HeaderMap = Object.freeze({})
/** RFC 9110 §9.2.1: methods that do not change the target, so passing them invalidates nothing. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])
/** Bound on remembered Vary field lists; past it the list is cleared and relearnt from the index. */
const VARY_SPECS_MAX = 65_536
const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json', 'cache-control': 'no-store' })

function zeroCounters(): CacheCounters {
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
    indexRebuilds: 0,
    indexErrors: 0,
  }
}

function asUpstreamError(err: unknown): VcdnError {
  if (isVcdnError(err)) return err
  return new VcdnError('ERR_UPSTREAM_CONNECT', undefined, { cause: err })
}

function fileNameFor(key: string): string {
  const hash = createHash('sha256').update(key).digest('hex')
  // A per-version suffix: a replaced or evicted version can be unlinked without any risk of
  // removing a newer version of the same key that was renamed into place meanwhile.
  return `${hash.slice(0, 2)}/${hash}.${randomBytes(6).toString('hex')}`
}

async function readWhole(fd: number, size: number): Promise<Buffer> {
  const body = Buffer.allocUnsafe(size)
  let offset = 0
  while (offset < size) {
    const n = await new Promise<number>((resolve, reject) => {
      read(fd, body, offset, size - offset, offset, (err, bytesRead) => {
        if (err !== null) reject(err)
        else resolve(bytesRead)
      })
    })
    if (n === 0) throw new Error('object file shorter than its index row')
    offset += n
  }
  return body
}

/** Request headers for a fill the cache starts on its own (a background refresh): no credentials. */
function withoutCredentials(headers: HeaderMap): HeaderMap {
  if (headers['authorization'] === undefined) return headers
  const { authorization: _, ...rest } = headers
  return rest
}

/** Every header of a request, for Vary and for what a fill forwards (ServeRequest.source). */
function requestHeadersOf(req: ServeRequest): HeaderMap {
  return req.source === undefined ? req.headers : { ...req.source.headers, ...req.headers }
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    const it = body[Symbol.asyncIterator]()
    await it.return?.()
  } catch {
    // Nothing to do: the body was not wanted.
  }
}

export class CacheEngine {
  readonly #o: ResolvedOptions
  readonly #index: DiskIndex
  readonly #objectsDir: string
  readonly #tmpDir: string
  readonly #memory: LRUCache<string, MemoryEntry>
  /** In-flight fills by key; a fill leaves the map once committed, discarded or purged. */
  readonly #fills = new Map<string, Fill>()
  /**
   * Vary field lists by primary key, for targets stored as variants (RFC 9111 §4.1). A cache of
   * the index (each variant row keeps its Vary header), bounded by VARY_SPECS_MAX.
   */
  readonly #varySpecs = new Map<string, readonly string[]>()
  /** The key a fill's answer is stored under (its variant), null for `Vary: *`; set at its head. */
  readonly #fillStoreKeys = new WeakMap<Fill, string | null>()
  /** Keys served since the last flush, with the access stamp of their latest use; written to
   * last_access in one transaction (batched). */
  readonly #touched = new Map<string, number>()
  /** The last last_access stamp handed out (see #accessStamp). */
  #lastAccessStamp = 0
  readonly #counters = zeroCounters()
  /** Bytes of temp files written by fills in progress; counted against the disk budget. */
  #inflightBytes = 0
  #eviction: Promise<void> | null = null
  readonly #timer: NodeJS.Timeout
  #isClosed = false

  private constructor(o: ResolvedOptions, index: DiskIndex, diskBytes: number, objects: number) {
    this.#o = o
    this.#index = index
    this.#objectsDir = join(o.dir, 'objects')
    this.#tmpDir = join(o.dir, 'tmp')
    this.#counters.diskBytes = diskBytes
    this.#counters.objects = objects
    this.#memory = new LRUCache<string, MemoryEntry>({
      maxSize: o.memoryMaxBytes,
      sizeCalculation: memoryEntryCost,
    })
    this.#timer = setInterval(() => {
      this.#flushTouches()
    }, FLUSH_INTERVAL_MS)
    this.#timer.unref()
  }

  /** Open (or create) the cache under options.dir and reconcile the index with the files. */
  static async open(options: CacheOptions): Promise<CacheEngine> {
    const o = resolveOptions(options)
    const objectsDir = join(o.dir, 'objects')
    const tmpDir = join(o.dir, 'tmp')
    await mkdir(objectsDir, { recursive: true })
    // Crash safety: temp files are never committed after a restart.
    await rm(tmpDir, { recursive: true, force: true })
    await mkdir(tmpDir, { recursive: true })
    for (let i = 0; i < 256; i++) await mkdir(join(objectsDir, i.toString(16).padStart(2, '0')), { recursive: true })

    // A damaged index never stops a node (README.md): moved aside, counted, started empty.
    let indexRebuilds = 0
    // Filled in once the engine exists; damage found before that is only logged.
    let onRunTimeDamage: () => void = () => {}
    let isDamageLogged = false
    const index = DiskIndex.open(join(o.dir, 'index.sqlite'), {
      now: o.now,
      onRebuild: (err, aside) => {
        indexRebuilds++
        o.log.warn({ err, aside }, 'cache index damaged: moved aside, starting with an empty disk tier')
      },
      onCorrupt: (err) => {
        // Logged once (every later one is only counted): a damaged page can fail every request.
        if (!isDamageLogged) {
          o.log.error({ err }, 'cache index damaged at run time: misses until the next start rebuilds it')
        }
        isDamageLogged = true
        onRunTimeDamage()
      },
    })
    let diskBytes = 0
    let objects = 0
    try {
      const valid = new Set<string>()
      const dropped: string[] = []
      for (const ref of index.all()) {
        const st = await stat(join(objectsDir, ref.file)).catch(() => null)
        if (st === null || !st.isFile() || st.size !== ref.size) {
          dropped.push(ref.key)
          if (st !== null) await rm(join(objectsDir, ref.file), { force: true, recursive: true })
          continue
        }
        valid.add(ref.file)
        diskBytes += ref.size
        objects++
      }
      index.deleteMany(dropped)
      let orphans = 0
      for (const sub of await readdir(objectsDir, { withFileTypes: true })) {
        if (!sub.isDirectory()) {
          await rm(join(objectsDir, sub.name), { force: true, recursive: true })
          orphans++
          continue
        }
        for (const name of await readdir(join(objectsDir, sub.name))) {
          if (valid.has(`${sub.name}/${name}`)) continue
          await rm(join(objectsDir, sub.name, name), { force: true, recursive: true })
          orphans++
        }
      }
      if (dropped.length > 0 || orphans > 0)
        o.log.warn({ dropped: dropped.length, orphans }, 'cache index reconciled with files')
    } catch (err) {
      index.close()
      throw err
    }
    const engine = new CacheEngine(o, index, diskBytes, objects)
    engine.#counters.indexRebuilds = indexRebuilds
    onRunTimeDamage = () => {
      engine.#counters.indexErrors++
    }
    engine.#maybeEvict()
    return engine
  }

  get counters(): Readonly<CacheCounters> {
    this.#counters.memoryBytes = this.#memory.calculatedSize
    return this.#counters
  }

  /**
   * The cache key of a request target under this engine's `query` policy (cacheKey()): the
   * validated path, plus the kept query parameters. The key is also what the upstream is asked
   * for, so a kept query reaches the upstream and an ignored one does not. Throws ERR_REQUEST_PATH.
   */
  keyFor(path: string, query: string): string {
    return cacheKey(path, query, this.#o.query)
  }

  /** True when the key is stored (memory or disk), fresh or not. */
  has(key: string): boolean {
    if (this.#isClosed) return false
    return this.#memory.has(key) || this.#index.getRef(key) !== undefined
  }

  /**
   * The hot path without a promise: a fresh memory hit is answered synchronously and its result
   * returned; anything else returns null without touching the sink (then call serve()).
   */
  serveHit(req: ServeRequest, sink: ResponseSink): ServeResult | null {
    if (this.#isClosed) return null
    const entry = this.#memory.get(req.key)
    if (entry === undefined) return null
    const now = this.#o.now()
    if (now >= entry.obj.expiresAt) return null
    return this.#serveMemory(entry, req, sink, 'HIT', null, now)
  }

  serve(req: ServeRequest, sink: ResponseSink): Promise<ServeResult> {
    if (this.#isClosed) return Promise.resolve(this.#respondError(sink, req, 'ERR_SHUTTING_DOWN', 'MISS', null))
    const now = this.#o.now()
    const entry = this.#memory.get(req.key)
    // Hot path: a fresh memory hit is answered synchronously — one start(), one end(), no SQLite.
    if (entry !== undefined && now < entry.obj.expiresAt) {
      return Promise.resolve(this.#serveMemory(entry, req, sink, 'HIT', null, now))
    }
    return this.#serveSlow(req, sink, now, entry).catch((err: unknown) => {
      this.#o.log.error({ err, key: req.key }, 'cache serve failed')
      if (!sink.isAborted) sink.abort()
      return { outcome: 'MISS' as const, status: 500, bytes: 0, upstreamMs: null }
    })
  }

  async prefetch(key: string): Promise<PrefetchResult> {
    try {
      if (this.#isClosed) return 'failed'
      const inFlight = this.#fills.get(key)
      if (inFlight !== undefined) {
        await inFlight.settled
        return 'joined'
      }
      const obj = this.#lookup(key)
      if (obj !== null && this.#o.now() < obj.expiresAt) return 'present'
      this.#counters.prefetchIssued++
      const fill = this.#startFill(key, obj !== null && obj.status === 200 ? obj : null, true, NO_HEADERS)
      return (await fill.settled) ? 'filled' : 'failed'
    } catch (err) {
      this.#o.log.warn({ err, key }, 'cache prefetch failed')
      return 'failed'
    }
  }

  /**
   * A method other than GET/HEAD is never answered from the cache: with passUnsafeMethods it
   * goes to the upstream (request body streamed, answer streamed back as PASS, never stored), and a
   * non-error answer to an unsafe method (RFC 9110 §9.2.1: not OPTIONS or TRACE) invalidates the
   * target and the same-origin Location and Content-Location targets (RFC 9111 §4.4), variants
   * included. Without the option: 405 with Allow: GET, HEAD.
   */
  async pass(req: PassRequest, sink: ResponseSink): Promise<ServeResult> {
    const asServe: ServeRequest = { method: 'GET', key: req.key, headers: req.headers }
    if (this.#isClosed) return this.#respondError(sink, asServe, 'ERR_SHUTTING_DOWN', 'PASS', null)
    if (!this.#o.passUnsafeMethods) {
      this.#countOutcome('PASS')
      const body = Buffer.from(errorBody('ERR_REQUEST_METHOD'))
      if (!sink.isAborted) sink.start(405, { ...JSON_HEADERS, allow: 'GET, HEAD', 'x-cache': 'PASS' }, body.length)
      if (!sink.isAborted) sink.end(body)
      return { outcome: 'PASS', status: 405, bytes: body.length, upstreamMs: null }
    }
    const controller = new AbortController()
    sink.onAbort(() => controller.abort())
    const headers = forwardedRequestHeaders(req.headers)
    const length = req.headers['content-length']
    if (length !== undefined) headers['content-length'] = length
    const t0 = performance.now()
    this.#counters.upstreamRequests++
    let res
    try {
      res = await this.#o.fetch(req.key, { method: req.method, headers, signal: controller.signal, body: req.body })
    } catch (err) {
      const upstreamMs = Math.round(performance.now() - t0)
      if (controller.signal.aborted) return { outcome: 'PASS', status: 0, bytes: 0, upstreamMs }
      const error = asUpstreamError(err)
      this.#o.log.warn({ err, key: req.key, method: req.method, code: error.code }, 'cache pass failed before headers')
      return this.#respondError(sink, asServe, error.code, 'PASS', upstreamMs)
    }
    const upstreamMs = Math.round(performance.now() - t0)
    // RFC 9111 §4.4: an unsafe method invalidates once the upstream answered with a non-error
    // status; a safe one passed through (OPTIONS, TRACE: RFC 9110 §9.2.1) changes nothing.
    if (res.status < 400 && !SAFE_METHODS.has(req.method))
      await this.#invalidate(req.key, res.headers, req.headers['host'])
    this.#countOutcome('PASS')
    const stored = pickStoredHeaders(res.headers)
    const bodiless = res.status === 204 || res.status === 304 || res.status < 200
    const contentLength = bodiless ? 0 : parseContentLength(res.headers)
    if (sink.isAborted) {
      await drain(res.body)
      return { outcome: 'PASS', status: res.status, bytes: 0, upstreamMs }
    }
    sink.start(res.status, responseHeaders(stored, 'PASS', upstreamAgeSec(stored)), contentLength ?? undefined)
    let bytes = 0
    try {
      for await (const chunk of res.body) {
        if (sink.isAborted) break
        if (chunk.length === 0) continue
        bytes += chunk.length
        await sink.write(chunk)
      }
      if (!sink.isAborted) sink.end()
    } catch (err) {
      this.#o.log.warn({ err, key: req.key, method: req.method }, 'cache pass failed mid-body')
      if (!sink.isAborted) sink.abort()
    }
    return { outcome: 'PASS', status: res.status, bytes, upstreamMs }
  }

  /** RFC 9111 §4.4: the target, and Location / Content-Location targets of the same origin. */
  async #invalidate(key: string, headers: HeaderMap, host: string | undefined): Promise<void> {
    const targets = new Set([primaryKey(key)])
    const base = new URL(`http://${host ?? 'target.invalid'}${primaryKey(key)}`)
    for (const name of ['location', 'content-location']) {
      const value = headers[name]
      if (value === undefined) continue
      try {
        const url = new URL(value, base)
        if (url.protocol !== 'http:' && url.protocol !== 'https:') continue
        if (url.host !== base.host) continue
        targets.add(this.keyFor(url.pathname, url.search.slice(1)))
      } catch {
        // Not a URL, or not a path this cache could have stored: nothing to invalidate.
      }
    }
    for (const target of targets) await this.purge({ key: target })
  }

  async purge(target: PurgeTarget): Promise<{ removed: number }> {
    if (this.#isClosed) return { removed: 0 }
    const removedKeys = new Set<string>()
    const refs: FileRef[] = []
    // An exact key covers its variants too (RFC 9111 §4.1: they are responses of one target).
    const prefixes: string[] = []
    if ('key' in target) {
      const { key } = target
      const fill = this.#fills.get(key)
      if (fill !== undefined) this.#markPurged(fill)
      if (this.#memory.delete(key)) removedKeys.add(key)
      const ref = this.#index.getRef(key)
      if (ref !== undefined) {
        refs.push(ref)
        this.#index.delete(key)
      }
      this.#varySpecs.delete(key)
      prefixes.push(key + VARIANT_SEPARATOR)
    } else {
      prefixes.push(target.prefix)
      for (const key of [...this.#varySpecs.keys()]) if (key.startsWith(target.prefix)) this.#varySpecs.delete(key)
    }
    for (const prefix of prefixes) {
      for (const [key, fill] of this.#fills) if (key.startsWith(prefix)) this.#markPurged(fill)
      for (const key of [...this.#memory.keys()]) {
        if (key.startsWith(prefix) && this.#memory.delete(key)) removedKeys.add(key)
      }
      refs.push(...this.#index.prefix(prefix))
      this.#index.deletePrefix(prefix)
    }
    for (const ref of refs) {
      removedKeys.add(ref.key)
      this.#counters.diskBytes -= ref.size
      this.#counters.objects--
    }
    this.#counters.purged += removedKeys.size
    await Promise.all(refs.map((ref) => this.#unlinkObject(ref.file)))
    return { removed: removedKeys.size }
  }

  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#flushTouches()
    this.#isClosed = true
    clearInterval(this.#timer)
    // Fills are tied to the engine, not to clients: closing stops them; they commit nothing.
    for (const fill of this.#fills.values()) fill.controller.abort(new VcdnError('ERR_SHUTTING_DOWN'))
    await this.#eviction
    this.#index.close()
    this.#memory.clear()
  }

  // ---- serving -------------------------------------------------------------------------------

  /**
   * RFC 9111 §4.1: a target whose stored responses vary is looked up under its request's variant
   * key (nothing is stored under the plain key then, so such requests always come here).
   */
  #serveSlow(
    req: ServeRequest,
    sink: ResponseSink,
    now: number,
    entry: MemoryEntry | undefined,
    isRetry = false,
  ): Promise<ServeResult> {
    if (entry !== undefined) return this.#serveKey(req, sink, now, entry, isRetry)
    const fields = this.#varyOf(req.key)
    if (fields === null) return this.#serveKey(req, sink, now, undefined, isRetry)
    const key = variantKey(req.key, fields, requestHeadersOf(req))
    const variant: ServeRequest = { ...req, key }
    const hit = this.#memory.get(key)
    if (hit !== undefined && now < hit.obj.expiresAt) {
      return Promise.resolve(this.#serveMemory(hit, variant, sink, 'HIT', null, now))
    }
    return this.#serveKey(variant, sink, now, hit, isRetry)
  }

  async #serveKey(
    req: ServeRequest,
    sink: ResponseSink,
    now: number,
    entry: MemoryEntry | undefined,
    isRetry: boolean,
  ): Promise<ServeResult> {
    const { key } = req
    let stale: StoredObject | null = null
    if (entry !== undefined) {
      stale = entry.obj
    } else {
      const row = this.#index.get(key)
      if (row !== undefined) {
        const obj = this.#fromRow(row)
        if (now < obj.expiresAt) {
          const served = await this.#serveDisk(obj, row.prefetched === 1, req, sink, 'HIT', null)
          if (served !== null) return served
        } else {
          stale = obj
        }
      }
    }
    // Only full 200 objects are revalidated or served stale; an expired negative answer is gone.
    if (stale !== null && stale.status !== 200) stale = null

    if (stale !== null && stale.policy.isStaleAllowed && now < stale.expiresAt + stale.policy.staleWhileRevalidateMs) {
      // RFC 5861 §3: answer with the stale copy now, refresh once in the background.
      if (!this.#fills.has(key)) this.#startFill(key, stale, false, withoutCredentials(requestHeadersOf(req)))
      const served = await this.#serveStored(key, req, sink, 'STALE', null)
      if (served !== null) return served
    }

    const requestHeaders = requestHeadersOf(req)
    if (requestHeaders['authorization'] !== undefined) {
      // RFC 9111 §3.5: the answer to a request with Authorization is that request's alone unless
      // the origin marks it shareable, so such a request neither joins nor opens a shared fill.
      return this.#serveFromFill(this.#startFill(key, stale, false, requestHeaders, false), req, sink, stale, false)
    }
    let fill = this.#fills.get(key)
    if (fill !== undefined && !this.#isShareable(fill, now)) {
      if (fill.state === 'complete' && !isRetry) {
        // Its body is whole and being committed: wait for the commit, then revalidate the stored
        // copy with its validators (RFC 9111 §4.3.1) instead of fetching the whole answer again.
        await fill.settled
        return this.#serveKey(req, sink, this.#o.now(), this.#memory.get(key), true)
      }
      // Superseded while streaming: its answer is stale for every later request, so it is not
      // stored either (a purge only marks the fill in the map, which is now the new one).
      fill.isPurged = true
      fill = undefined
    }
    const isOwner = fill === undefined
    if (fill !== undefined) this.#counters.coalesced++
    else fill = this.#startFill(key, stale, false, requestHeaders)
    return this.#serveFromFill(fill, req, sink, stale, !isOwner && !isRetry)
  }

  /**
   * Whether a request arriving at `now` may share this fill's answer (RFC 9111 §4: a response is
   * reused only while fresh, or after validation). Before the answer's headers arrived it may: the
   * answer is produced after this request arrived, as if forwarded for it (collapsed forwarding).
   * After that only while the answer is still fresh, so a `no-cache` or `max-age=0` answer is never
   * handed on while it streams or while its fill commits.
   */
  #isShareable(fill: Fill, now: number): boolean {
    const head = fill.head
    if (head === null || head.kind !== 'body') return true
    const answer = describeStored({
      key: fill.key,
      status: head.status,
      size: 0,
      headers: head.headers,
      storedAt: head.receivedAt,
      file: null,
      config: this.#o,
    })
    return now < answer.expiresAt
  }

  /** Serve a stored key from memory or disk; null when it is no longer stored. */
  async #serveStored(
    key: string,
    req: ServeRequest,
    sink: ResponseSink,
    outcome: CacheOutcome,
    upstreamMs: number | null,
  ): Promise<ServeResult | null> {
    const now = this.#o.now()
    const entry = this.#memory.get(key)
    if (entry !== undefined) return this.#serveMemory(entry, req, sink, outcome, upstreamMs, now)
    const row = this.#index.get(key)
    if (row === undefined) return null
    return this.#serveDisk(this.#fromRow(row), row.prefetched === 1, req, sink, outcome, upstreamMs)
  }

  #serveMemory(
    entry: MemoryEntry,
    req: ServeRequest,
    sink: ResponseSink,
    outcome: CacheOutcome,
    upstreamMs: number | null,
    now: number,
  ): ServeResult {
    const obj = entry.obj
    this.#touch(obj)
    this.#countOutcome(outcome)
    if (outcome === 'HIT' && entry.isPrefetched) {
      entry.isPrefetched = false
      this.#usePrefetched(obj.key)
    }
    const h = req.headers
    if (
      outcome === 'HIT' &&
      h['range'] === undefined &&
      h['if-none-match'] === undefined &&
      h['if-modified-since'] === undefined &&
      h['if-match'] === undefined &&
      h['if-unmodified-since'] === undefined
    ) {
      const ageSec = ageSeconds(obj, now)
      let headers = entry.hitHeaders
      if (headers === null || entry.hitAgeSec !== ageSec) {
        // Replaced, never mutated: a sink may keep the object it was given.
        headers = responseHeaders(obj.headers, 'HIT', ageSec)
        entry.hitHeaders = headers
        entry.hitAgeSec = ageSec
      }
      sink.start(obj.status, headers, obj.size)
      if (req.method === 'HEAD') {
        sink.end()
        return { outcome, status: obj.status, bytes: 0, upstreamMs }
      }
      sink.end(entry.body)
      if (upstreamMs !== null) return { outcome, status: obj.status, bytes: obj.size, upstreamMs }
      return (entry.hitResult ??= { outcome, status: obj.status, bytes: obj.size, upstreamMs })
    }
    const plan = planStored(obj, req, outcome, now)
    sink.start(plan.status, plan.headers, plan.contentLength)
    if (plan.end > plan.start) sink.end(entry.body.subarray(plan.start, plan.end))
    else sink.end()
    return { outcome, status: plan.status, bytes: plan.end - plan.start, upstreamMs }
  }

  /**
   * Serve from the object file. The file is opened synchronously right after the index lookup,
   * so eviction or purge (which delete the row first, then unlink) cannot slip in between: an open
   * descriptor keeps an unlinked file readable on POSIX until this reader closes it.
   */
  async #serveDisk(
    obj: StoredObject,
    isPrefetched: boolean,
    req: ServeRequest,
    sink: ResponseSink,
    outcome: CacheOutcome,
    upstreamMs: number | null,
  ): Promise<ServeResult | null> {
    if (obj.file === null) return null
    let fd: number
    try {
      fd = openSync(join(this.#objectsDir, obj.file), 'r')
    } catch (err) {
      // The index is the truth, but a file removed behind our back must not be served: drop it.
      this.#o.log.warn({ err, key: obj.key }, 'cache object file missing; dropping index row')
      this.#dropRow(obj.key, obj.file, obj.size)
      return null
    }
    this.#touch(obj)
    if (outcome === 'HIT' && isPrefetched) this.#usePrefetched(obj.key)
    const now = this.#o.now()
    const plan = planStored(obj, req, outcome, now)
    const wantsBody = plan.end > plan.start

    if (obj.size <= this.#o.memoryObjectMaxBytes) {
      // Small: read whole, promote into memory, answer like a memory hit.
      let body: Buffer
      try {
        body = await readWhole(fd, obj.size)
      } catch (err) {
        this.#o.log.error({ err, key: obj.key }, 'cache object read failed')
        this.#dropRow(obj.key, obj.file, obj.size)
        return null
      } finally {
        closeSync(fd)
      }
      this.#countOutcome(outcome)
      if (!this.#isClosed && this.#index.getRef(obj.key)?.file === obj.file) {
        this.#memory.set(obj.key, { obj, body, isPrefetched: false, hitHeaders: null, hitAgeSec: -1, hitResult: null })
      }
      sink.start(plan.status, plan.headers, plan.contentLength)
      if (wantsBody) sink.end(body.subarray(plan.start, plan.end))
      else sink.end()
      return { outcome, status: plan.status, bytes: plan.end - plan.start, upstreamMs }
    }

    this.#countOutcome(outcome)
    sink.start(plan.status, plan.headers, plan.contentLength)
    if (!wantsBody) {
      closeSync(fd)
      sink.end()
      return { outcome, status: plan.status, bytes: 0, upstreamMs }
    }
    let sent = 0
    const stream = createReadStream('', {
      fd,
      start: plan.start,
      end: plan.end - 1,
      highWaterMark: DISK_STREAM_CHUNK,
      autoClose: true,
    })
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (sink.isAborted) break
        sent += chunk.length
        await sink.write(chunk)
      }
      if (!sink.isAborted) {
        if (sent === plan.end - plan.start) sink.end()
        else sink.abort()
      }
    } catch (err) {
      this.#o.log.error({ err, key: obj.key }, 'cache object stream failed')
      if (!sink.isAborted) sink.abort()
    } finally {
      stream.destroy()
    }
    return { outcome, status: plan.status, bytes: sent, upstreamMs }
  }

  async #serveFromFill(
    fill: Fill,
    req: ServeRequest,
    sink: ResponseSink,
    stale: StoredObject | null,
    mayNotMatch: boolean,
  ): Promise<ServeResult> {
    const head: FillHead = fill.head ?? (await fill.headReady)
    if (sink.isAborted) return { outcome: 'MISS', status: 0, bytes: 0, upstreamMs: head.upstreamMs }
    const now = this.#o.now()
    const canServeStaleOnError = stale !== null && now < stale.expiresAt + stale.policy.staleIfErrorMs

    if (head.kind === 'error') {
      // RFC 5861 §4: an error before headers may be answered with the stale copy.
      if (canServeStaleOnError) {
        const served = await this.#serveStored(fill.key, req, sink, 'STALE', head.upstreamMs)
        if (served !== null) return served
      }
      return this.#respondError(sink, req, head.error.code, 'MISS', head.upstreamMs)
    }
    if (head.kind === 'not-modified') {
      const served = await this.#serveStored(fill.key, req, sink, 'REVALIDATED', head.upstreamMs)
      if (served !== null) return served
      return this.#respondError(sink, req, 'ERR_UPSTREAM_STATUS', 'MISS', head.upstreamMs)
    }
    if (head.status >= 500 && canServeStaleOnError) {
      const served = await this.#serveStored(fill.key, req, sink, 'STALE', head.upstreamMs)
      if (served !== null) return served
    }

    const vary = mayNotMatch ? parseVary(head.headers['vary']) : null
    if (vary !== null) {
      // RFC 9111 §4.1: this request joined a fill started for another one, and the answer varies:
      // it is this request's only if the request selects the same variant (never for `Vary: *`).
      // Otherwise it looks again, now knowing the Vary, and fills (or joins) its own variant.
      const mine = vary === '*' ? null : variantKey(primaryKey(fill.key), vary, requestHeadersOf(req))
      if (mine === null || mine !== this.#fillStoreKeys.get(fill)) {
        return this.#serveSlow({ ...req, key: primaryKey(req.key) }, sink, this.#o.now(), undefined, true)
      }
    }
    const outcome: CacheOutcome = head.isPass ? 'PASS' : 'MISS'
    this.#countOutcome(outcome)
    const headers = responseHeaders(head.headers, outcome, upstreamAgeSec(head.headers))
    const plan = planFillAnswer(head.status, head.headers, headers, head.contentLength, req)
    sink.start(plan.status, plan.headers, plan.contentLength)
    if (plan.end <= plan.start) {
      sink.end()
      // The response is complete; resolving after the fill settles keeps "served, then HIT" true.
      await fill.settled
      return { outcome, status: plan.status, bytes: 0, upstreamMs: head.upstreamMs }
    }
    const reader: FillReader = { wake: null, isCancelled: false }
    sink.onAbort(() => {
      reader.isCancelled = true
      reader.wake?.()
    })
    const bytes = await pipeFill(fill, sink, reader, plan.start, Number.isFinite(plan.end) ? plan.end : null)
    // Resolve only once the object is committed, so "served, then HIT" holds for callers.
    if (!sink.isAborted) await fill.settled
    return { outcome, status: plan.status, bytes, upstreamMs: head.upstreamMs }
  }

  #respondError(
    sink: ResponseSink,
    req: ServeRequest,
    code: ErrorCode,
    outcome: CacheOutcome,
    upstreamMs: number | null,
  ): ServeResult {
    this.#countOutcome(outcome)
    const err = new VcdnError(code)
    if (sink.isAborted) return { outcome, status: err.status, bytes: 0, upstreamMs }
    const body = Buffer.from(errorBody(code))
    sink.start(err.status, { ...JSON_HEADERS, 'x-cache': outcome }, body.length)
    if (req.method === 'HEAD') sink.end()
    else sink.end(body)
    return { outcome, status: err.status, bytes: req.method === 'HEAD' ? 0 : body.length, upstreamMs }
  }

  #countOutcome(outcome: CacheOutcome): void {
    switch (outcome) {
      case 'HIT':
        this.#counters.hits++
        break
      case 'MISS':
        this.#counters.misses++
        break
      case 'STALE':
        this.#counters.stale++
        break
      case 'REVALIDATED':
        this.#counters.revalidated++
        break
      case 'PASS':
        this.#counters.passes++
        break
    }
  }

  #usePrefetched(key: string): void {
    this.#counters.prefetchUsed++
    // Once per prefetched object, so a direct write is fine here.
    if (!this.#isClosed) this.#index.clearPrefetched(key)
  }

  // ---- fills ---------------------------------------------------------------------------------

  /** `requestHeaders`: every header of the request the fill is for (Vary values, forwarded fields). */
  #startFill(
    key: string,
    base: StoredObject | null,
    isPrefetch: boolean,
    requestHeaders: HeaderMap,
    isShared = true,
  ): Fill {
    const fill = new Fill({ key, base, isPrefetch, bufferBytes: this.#o.fillBufferBytes })
    // A fill left out of the map is its request's alone: nobody joins it (RFC 9111 §3.5).
    if (isShared) this.#fills.set(key, fill)
    this.#counters.fills++
    this.#runFill(fill, requestHeaders).catch((err: unknown) => {
      // #runFill handles its own failures; this is a last line against unhandled rejections.
      this.#o.log.error({ err, key }, 'cache fill crashed')
      fill.fail(err)
      fill.finish(false)
      this.#forgetFill(fill)
    })
    return fill
  }

  #forgetFill(fill: Fill): void {
    if (this.#fills.get(fill.key) === fill) this.#fills.delete(fill.key)
  }

  #markPurged(fill: Fill): void {
    fill.isPurged = true
    this.#forgetFill(fill)
  }

  async #runFill(fill: Fill, clientHeaders: HeaderMap): Promise<void> {
    const { key, base } = fill
    const o = this.#o
    // The origin must see what it may vary on (RFC 9111 §4.1); the engine's own fields follow.
    const requestHeaders: HeaderMap = forwardedRequestHeaders(clientHeaders)
    // RFC 9111 §4.3.1: validate the stored copy with its validators.
    if (base?.etag !== undefined) requestHeaders['if-none-match'] = base.etag
    if (base?.lastModified !== undefined) requestHeaders['if-modified-since'] = base.lastModified
    const isConditional = base !== null && (base.etag !== undefined || base.lastModified !== undefined)

    const t0 = performance.now()
    this.#counters.upstreamRequests++
    let res
    try {
      res = await o.fetch(primaryKey(key), { method: 'GET', headers: requestHeaders, signal: fill.controller.signal })
    } catch (err) {
      const error = asUpstreamError(err)
      o.log.warn({ err, key, code: error.code }, 'cache fill failed before headers')
      this.#counters.fillErrors++
      this.#forgetFill(fill)
      fill.publishHead({ kind: 'error', error, upstreamMs: Math.round(performance.now() - t0) })
      fill.finish(false)
      return
    }
    const upstreamMs = Math.round(performance.now() - t0)
    const receivedAt = o.now()

    if (res.status === 304 && isConditional && base !== null) {
      await drain(res.body)
      // RFC 9111 §4.3.4: freshen the stored response with the 304's header fields.
      const isRefreshed = !fill.isPurged && !this.#isClosed && this.#refreshStored(base, res.headers, receivedAt)
      this.#forgetFill(fill)
      fill.publishHead({ kind: 'not-modified', headers: res.headers, upstreamMs })
      fill.finish(isRefreshed)
      return
    }

    // RFC 9213: CDN-Cache-Control / Surrogate-Control, when present, decide for this cache.
    const cc = cacheDirectives(res.headers)
    const contentLength = parseContentLength(res.headers)
    // RFC 9110 §7.6.1: hop-by-hop fields go no further; every end-to-end field is stored and forwarded.
    const headers = pickStoredHeaders(res.headers)
    // A response that sets a cookie is passed, never stored (RFC 9111 §7.3 lets a cache store it;
    // like Varnish's and nginx's defaults we do not, so one viewer's cookie is never another's).
    // RFC 9111 §4.1: the answer is stored as the variant its Vary and this fill's request name;
    // `Vary: *` never matches a later request, so it is not stored.
    const vary = parseVary(headers['vary'])
    const primary = primaryKey(key)
    const storeKey = vary === null || vary === '*' ? primary : variantKey(primary, vary, clientHeaders)
    this.#fillStoreKeys.set(fill, vary === '*' ? null : storeKey)
    // RFC 9111 §3.5: an answer to a request with Authorization is stored only when the origin says
    // a shared cache may (public, s-maxage, must-revalidate).
    const isAuthorized =
      clientHeaders['authorization'] !== undefined &&
      !(cc.has('public') || cc.has('s-maxage') || cc.has('must-revalidate'))
    const isPass = !isStorable(cc) || headers['set-cookie'] !== undefined || vary === '*' || isAuthorized
    const maxStorableBytes = Math.floor(o.maxBytes * o.highWatermark)
    let plan: FillPlan = 'none'
    if (
      !isPass &&
      res.status !== 404 &&
      isStorableStatus(res.status, cc, headers) &&
      (contentLength === null || contentLength <= maxStorableBytes)
    )
      plan = 'disk'
    // 404s are cached briefly, in memory only (this module's README): a flood of missing keys never
    // reaches the disk or the index. 5xx are never stored (isStorableStatus).
    if (!isPass && res.status === 404 && (contentLength === null || contentLength <= o.memoryObjectMaxBytes))
      plan = 'memory'
    if (plan === 'disk') {
      const tmpPath = join(this.#tmpDir, randomBytes(12).toString('hex'))
      try {
        fill.attachFile(await open(tmpPath, 'w+'), tmpPath)
      } catch (err) {
        o.log.error({ err, key }, 'cache temp file open failed; passing through')
        this.#counters.storeErrors++
        plan = 'none'
      }
    }
    // Uncacheable answers are not shared with later requests: they go upstream themselves.
    if (plan === 'none') this.#forgetFill(fill)
    // From now on requests for this target look up their variant; an answer that will not be
    // stored (no-store, Vary: *) leaves the target's shape as it was.
    else if (vary !== null && vary !== '*') this.#rememberVary(primary, vary)
    fill.publishHead({
      kind: 'body',
      status: res.status,
      headers,
      contentLength,
      upstreamMs,
      plan,
      isPass,
      receivedAt,
    })

    let written = 0
    let shouldStore = plan !== 'none'
    try {
      let fh = fill.fileHandle
      for await (const raw of res.body) {
        if (raw.length === 0) continue
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
        if (contentLength !== null && fill.received + chunk.length > contentLength) {
          throw new VcdnError('ERR_UPSTREAM_BODY', 'more bytes than content-length')
        }
        fill.push(chunk)
        if (fh !== null) {
          if (await this.#writeChunk(fill, fh, chunk, written)) {
            written += chunk.length
            this.#inflightBytes += chunk.length
            fill.markWritten(chunk.length)
            this.#maybeEvict()
          } else {
            // The disk refused (full, I/O error): the upstream is fine, so every reader still gets
            // the whole body. From here on chunks stay in memory (no markWritten), the bytes
            // already written stay readable from the open temp file, and nothing is stored.
            fh = null
            shouldStore = false
          }
        }
        if (plan === 'memory' && fill.received > o.memoryObjectMaxBytes) shouldStore = false
        if (plan === 'disk' && fill.received > maxStorableBytes) shouldStore = false
      }
      if (contentLength !== null && fill.received !== contentLength) {
        throw new VcdnError('ERR_UPSTREAM_BODY', 'fewer bytes than content-length')
      }
    } catch (err) {
      // Mid-body failure: every reader is aborted, nothing is cached (docs/architecture.md §5.3).
      o.log.warn({ err, key, received: fill.received }, 'cache fill failed mid-body')
      this.#counters.fillErrors++
      this.#forgetFill(fill)
      fill.fail(err)
      this.#inflightBytes -= written
      await fill.discardTemp()
      await fill.unref()
      fill.finish(false)
      return
    }

    fill.complete()
    let isStored = false
    try {
      if (shouldStore && !fill.isPurged && !this.#isClosed)
        isStored = await this.#commit(fill, storeKey, res.status, headers, receivedAt, plan)
      if (isStored) await this.#dropOtherShapes(storeKey)
    } catch (err) {
      o.log.error({ err, key }, 'cache commit failed')
      this.#counters.storeErrors++
    } finally {
      this.#inflightBytes -= written
      this.#forgetFill(fill)
      await fill.discardTemp()
      await fill.unref()
      fill.finish(isStored)
    }
  }

  /** Write one chunk at `position` of the fill's temp file; false (logged, counted) if the disk refused. */
  async #writeChunk(fill: Fill, fh: FileHandle, chunk: Buffer, position: number): Promise<boolean> {
    try {
      let off = 0
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, position + off)
        off += bytesWritten
      }
      return true
    } catch (err) {
      this.#o.log.error({ err, key: fill.key }, 'cache temp file write failed; serving without storing')
      this.#counters.storeErrors++
      return false
    }
  }

  /** fsync → make room → rename into objects/ → index row → memory tier. */
  async #commit(
    fill: Fill,
    key: string,
    status: number,
    headers: HeaderMap,
    receivedAt: number,
    plan: FillPlan,
  ): Promise<boolean> {
    const size = fill.received
    const config = this.#o
    if (plan === 'memory') {
      const body = ownedBody(fill.wholeBody())
      if (body === null) return false
      const obj = describeStored({ key, status, size, headers, storedAt: receivedAt, file: null, config })
      this.#memory.set(key, {
        obj,
        body,
        isPrefetched: fill.isPrefetch,
        hitHeaders: null,
        hitAgeSec: -1,
        hitResult: null,
      })
      return true
    }
    const fh = fill.fileHandle
    const tmpPath = fill.tmpPath
    if (fh === null || tmpPath === null) return false
    await fh.sync()
    // Make room before the rename so objects/ stays within the budget.
    if (this.#overHigh()) await this.#evict()
    if (fill.isPurged || this.#isClosed) return false
    const file = fileNameFor(key)
    const finalPath = join(this.#objectsDir, file)
    await rename(tmpPath, finalPath)
    if (fill.isPurged || this.#isClosed) {
      await unlink(finalPath).catch(() => {})
      return false
    }
    const obj = describeStored({ key, status, size, headers, storedAt: receivedAt, file, config })
    const row: IndexRow = {
      key,
      file,
      size,
      status,
      headers: JSON.stringify(headers),
      stored_at: obj.storedAt,
      expires_at: obj.expiresAt,
      last_access: this.#accessStamp(),
      etag: obj.etag ?? null,
      last_modified: obj.lastModified ?? null,
      prefetched: fill.isPrefetch ? 1 : 0,
    }
    let previous
    try {
      previous = this.#index.put(row)
    } catch (err) {
      // SQLite refused the row (disk full, I/O error): the file must not outlive it as an orphan.
      await unlink(finalPath).catch(() => {})
      throw err
    }
    this.#counters.diskBytes += size
    this.#counters.objects++
    if (previous !== undefined) {
      this.#counters.diskBytes -= previous.size
      this.#counters.objects--
    }
    this.#memory.delete(key)
    if (size <= this.#o.memoryObjectMaxBytes) {
      const body = ownedBody(fill.wholeBody())
      if (body !== null)
        this.#memory.set(key, {
          obj,
          body,
          isPrefetched: fill.isPrefetch,
          hitHeaders: null,
          hitAgeSec: -1,
          hitResult: null,
        })
    }
    if (previous !== undefined && previous.file !== file) await this.#unlinkObject(previous.file)
    return true
  }

  /** Apply a 304 to the stored copy it validated (if that version is still the stored one). */
  #refreshStored(base: StoredObject, fresh: HeaderMap, receivedAt: number): boolean {
    const headers = mergeRevalidatedHeaders(base.headers, fresh)
    const obj = describeStored({
      key: base.key,
      status: base.status,
      size: base.size,
      headers,
      storedAt: receivedAt,
      file: base.file,
      config: this.#o,
    })
    let isRefreshed = false
    const entry = this.#memory.peek(base.key)
    if (entry !== undefined && entry.obj.file === base.file) {
      entry.obj = obj
      entry.hitHeaders = null
      entry.hitResult = null
      isRefreshed = true
    }
    if (base.file !== null && this.#index.getRef(base.key)?.file === base.file) {
      this.#index.refresh(base.key, JSON.stringify(headers), obj.storedAt, obj.expiresAt, obj.etag, obj.lastModified)
      isRefreshed = true
    }
    return isRefreshed
  }

  // ---- variants (RFC 9111 §4.1) -------------------------------------------------------------

  /** The Vary fields of a target stored as variants, or null (plainly stored, or not at all). */
  #varyOf(primary: string): readonly string[] | null {
    const known = this.#varySpecs.get(primary)
    if (known !== undefined) return known
    // Not remembered (a restart, or the list was cleared): a variant row in the index says.
    if (this.#index.getRef(primary) !== undefined) return null
    const row = this.#index.firstWithPrefix(primary + VARIANT_SEPARATOR)
    if (row === undefined) return null
    const vary = parseVary((JSON.parse(row.headers) as HeaderMap)['vary'])
    if (vary === null || vary === '*') return null
    this.#rememberVary(primary, vary)
    return vary
  }

  #rememberVary(primary: string, fields: readonly string[]): void {
    if (this.#varySpecs.size >= VARY_SPECS_MAX && !this.#varySpecs.has(primary)) this.#varySpecs.clear()
    this.#varySpecs.set(primary, fields)
  }

  /**
   * A newly stored answer replaces the other shape of its target: a plain copy once the target
   * varies, every variant once it no longer does (RFC 9111 §4.1: the latest Vary governs).
   */
  async #dropOtherShapes(key: string): Promise<void> {
    const primary = primaryKey(key)
    let refs: FileRef[]
    if (key !== primary) {
      this.#memory.delete(primary)
      const ref = this.#index.getRef(primary)
      refs = ref === undefined ? [] : [ref]
      if (ref !== undefined) this.#index.delete(primary)
    } else {
      const hadVariants = this.#varySpecs.delete(primary)
      const prefix = primary + VARIANT_SEPARATOR
      if (!hadVariants && this.#index.firstWithPrefix(prefix) === undefined) return
      for (const k of [...this.#memory.keys()]) if (k.startsWith(prefix)) this.#memory.delete(k)
      refs = this.#index.prefix(prefix)
      this.#index.deletePrefix(prefix)
    }
    for (const ref of refs) {
      this.#counters.diskBytes -= ref.size
      this.#counters.objects--
    }
    await Promise.all(refs.map((ref) => this.#unlinkObject(ref.file)))
  }

  // ---- index and eviction ----------------------------------------------------------------------

  #lookup(key: string): StoredObject | null {
    const entry = this.#memory.peek(key)
    if (entry !== undefined) return entry.obj
    const row = this.#index.get(key)
    return row === undefined ? null : this.#fromRow(row)
  }

  #fromRow(row: IndexRow): StoredObject {
    const obj = describeStored({
      key: row.key,
      status: row.status,
      size: row.size,
      headers: JSON.parse(row.headers) as HeaderMap,
      storedAt: row.stored_at,
      file: row.file,
      config: this.#o,
    })
    // The index is the truth: its expires_at wins over a recomputation under today's config.
    return { ...obj, expiresAt: row.expires_at }
  }

  #dropRow(key: string, file: string, size: number): void {
    if (this.#isClosed || this.#index.getRef(key)?.file !== file) return
    this.#index.delete(key)
    this.#memory.delete(key)
    this.#counters.diskBytes -= size
    this.#counters.objects--
  }

  /**
   * Remember a disk-backed object's access for the next batched last_access write. Memory-only
   * objects (404s) have no row to touch. The batch is bounded: a full one is written at once, so a
   * flood of distinct keys between two timer flushes cannot grow it.
   */
  #touch(obj: StoredObject): void {
    if (obj.file === null) return
    this.#touched.set(obj.key, this.#accessStamp())
    if (this.#touched.size >= TOUCH_BATCH_MAX) this.#flushTouches()
  }

  /**
   * A last_access value later than every one handed out before: objects stored within one clock
   * millisecond keep their order, so LRU eviction never takes the newest of a burst first (ties in
   * the index's last_access order fall back to key order).
   */
  #accessStamp(): number {
    this.#lastAccessStamp = Math.max(this.#o.now(), this.#lastAccessStamp + 1)
    return this.#lastAccessStamp
  }

  #flushTouches(): void {
    if (this.#touched.size === 0 || this.#isClosed) return
    const entries = [...this.#touched]
    this.#touched.clear()
    try {
      // Each key keeps the stamp of when it was read, not of the flush: an object read before
      // others were stored stays older than they are.
      this.#index.touchMany(entries)
    } catch (err) {
      this.#o.log.error({ err }, 'cache access-time flush failed')
    }
  }

  /**
   * What the disk tier uses against maxBytes: object bytes, temp bytes of fills in progress, and
   * per object its file's partly used last block and its index row, so a flood of distinct tiny
   * objects is bounded by the budget too (diskBytes alone counts 1 byte for a 1-byte object).
   */
  #diskUsage(): number {
    return this.#counters.diskBytes + this.#inflightBytes + this.#counters.objects * DISK_OBJECT_OVERHEAD_BYTES
  }

  #overHigh(): boolean {
    return this.#diskUsage() > this.#o.maxBytes * this.#o.highWatermark
  }

  /** Start eviction off the serving path when usage crossed the high watermark. */
  #maybeEvict(): void {
    if (this.#eviction === null && this.#overHigh()) {
      this.#evict().catch((err: unknown) => {
        this.#o.log.error({ err }, 'cache eviction failed')
      })
    }
  }

  /** One eviction run at a time; callers share it. */
  #evict(): Promise<void> {
    this.#eviction ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#evictDown())
      .finally(() => {
        this.#eviction = null
      })
    return this.#eviction
  }

  /** LRU by last_access down to the low watermark, in batches (one transaction each). */
  async #evictDown(): Promise<void> {
    this.#flushTouches()
    const target = this.#o.maxBytes * this.#o.lowWatermark
    while (!this.#isClosed && this.#diskUsage() > target) {
      const candidates = this.#index.oldest(EVICT_BATCH)
      if (candidates.length === 0) break
      // Take only as many of the oldest as needed to reach the low watermark.
      const refs: FileRef[] = []
      let projected = this.#diskUsage()
      for (const ref of candidates) {
        if (projected <= target) break
        refs.push(ref)
        projected -= ref.size + DISK_OBJECT_OVERHEAD_BYTES
      }
      this.#index.deleteMany(refs.map((r) => r.key))
      for (const ref of refs) {
        this.#memory.delete(ref.key)
        this.#counters.diskBytes -= ref.size
        this.#counters.objects--
        this.#counters.evictions++
        this.#counters.evictedBytes += ref.size
      }
      // Readers hold open descriptors, so unlinking under them is safe (POSIX).
      await Promise.all(refs.map((ref) => this.#unlinkObject(ref.file)))
    }
  }

  async #unlinkObject(file: string): Promise<void> {
    try {
      await unlink(join(this.#objectsDir, file))
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) this.#o.log.warn({ err, file }, 'cache object unlink failed')
    }
  }
}
