// The cache engine shared by the edge and the shield (docs/architecture.md §5): lookup and
// delivery. A request is answered from the memory tier (synchronously when fresh), from a disk
// object, stale while a refresh runs (RFC 5861), or from a coalesced fill that later requests join
// (read-while-writer). The parts it drives live beside it: storage.ts (memory tier, index, files,
// eviction, recovery), fill.ts + fetch.ts + fill-file.ts (one upstream fetch, its buffer and temp
// file, its commit), plan.ts (conditionals and Range), pass.ts (methods the cache does not answer).
//
// Ownership of shared mutable state: the engine alone mutates the fill map and the outcome
// counters (hits … passes, fills, coalesced, prefetch*); the store owns what is stored; a Fill owns
// its received bytes and temp file; readers own only their cursors. Everything runs on the
// event-loop thread, so each synchronous section is atomic.

import { closeSync, createReadStream } from 'node:fs'
import { VcdnError, type ErrorCode } from '../errors/index.js'
import type { HeaderMap, ResponseSink } from '../http/types.js'
import { Fill, pipeFill, type FillHead, type FillReader } from './fill.js'
import { runFill, type FetchContext } from './fetch.js'
import { upstreamAgeSec } from './http-semantics.js'
import { serveEntry, type MemoryEntry, type MemoryTier } from './memory-tier.js'
import { cacheKey } from './normalize-key.js'
import { resolveOptions, type ResolvedOptions } from './options.js'
import { passThrough, type PassContext } from './pass.js'
import { planFillAnswer, planStored } from './plan.js'
import { countOutcome, respondError, zeroCounters } from './respond.js'
import { CacheStore } from './storage.js'
import { describeStored, responseHeaders, type StoredObject } from './stored-object.js'
import type {
  CacheCounters,
  CacheOptions,
  CacheOutcome,
  PassRequest,
  PrefetchResult,
  PurgeMode,
  PurgeTarget,
  ServeRequest,
  ServeResult,
} from './types.js'
import { parseVary, primaryKey, requestHeadersOf, VARIANT_SEPARATOR, variantKey } from './vary.js'

const DISK_STREAM_CHUNK = 256 * 1024
const NO_HEADERS: HeaderMap = Object.freeze({})

/** Request headers for a fill the cache starts on its own (a background refresh): no credentials. */
function withoutCredentials(headers: HeaderMap): HeaderMap {
  if (headers['authorization'] === undefined) return headers
  const { authorization: _, ...rest } = headers
  return rest
}

export class CacheEngine {
  readonly #o: ResolvedOptions
  readonly #store: CacheStore
  /** The store's memory tier, read here directly on the hit path. */
  readonly #memory: MemoryTier
  /** In-flight fills by key; a fill leaves the map once committed, discarded or purged. */
  readonly #fills = new Map<string, Fill>()
  readonly #counters: CacheCounters
  readonly #fetchContext: FetchContext
  readonly #passContext: PassContext
  #isClosed = false

  private constructor(o: ResolvedOptions, store: CacheStore, counters: CacheCounters) {
    this.#o = o
    this.#store = store
    this.#memory = store.memory
    this.#counters = counters
    this.#fetchContext = { o, store, counters, forget: (fill) => this.#forgetFill(fill) }
    this.#passContext = {
      o,
      counters,
      keyFor: (path, query) => this.keyFor(path, query),
      purge: (key) => this.purge({ key }),
    }
  }

  /** Open (or create) the cache under options.dir and reconcile the index with the files. */
  static async open(options: CacheOptions): Promise<CacheEngine> {
    const o = resolveOptions(options)
    const counters = zeroCounters()
    return new CacheEngine(o, await CacheStore.open(o, counters), counters)
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
    return this.#store.has(key)
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

  /**
   * The memory entry a worker thread may answer `key` from itself (docs/architecture.md §9.1): a
   * fresh one, with its body in shared memory and no prefetch mark left to clear (its first hit is
   * the engine's). Read without counting a use; null otherwise.
   */
  sharedEntry(key: string): MemoryEntry | null {
    if (this.#isClosed) return null
    const entry = this.#memory.peek(key)
    if (entry === undefined || entry.isPrefetched || this.#o.now() >= entry.obj.expiresAt) return null
    return entry.body.buffer instanceof SharedArrayBuffer ? entry : null
  }

  /**
   * The shared entry (sharedEntry) that answers `req` as serve() would: the plain key's, or, for a
   * target stored as variants (RFC 9111 §4.1), the one its request's Vary values select, with those
   * fields, so a worker can select the variant of a later request itself (variantKey); null when
   * there is none to hand out.
   */
  sharedEntryFor(req: ServeRequest): { entry: MemoryEntry; vary: readonly string[] | null } | null {
    const plain = this.sharedEntry(req.key)
    if (plain !== null) return { entry: plain, vary: null }
    if (this.#isClosed || this.#memory.peek(req.key) !== undefined) return null
    const fields = this.#store.varyOf(req.key)
    if (fields === null) return null
    const entry = this.sharedEntry(variantKey(req.key, fields, requestHeadersOf(req)))
    return entry === null ? null : { entry, vary: fields }
  }

  /**
   * `count` hits a worker thread answered from its copy of `key`'s memory entry (sharedEntry):
   * counted as the engine's own hits, and, while that version is still the stored one, a use for
   * the memory tier's LRU and the index's access time, as a hit here would be.
   */
  countLocalHits(key: string, generation: number, count: number): void {
    this.#counters.hits += count
    if (this.#isClosed || this.#memory.peek(key)?.generation !== generation) return
    const entry = this.#memory.get(key)
    if (entry !== undefined) this.#store.touch(entry.obj)
  }

  /** One listener told of every memory entry that leaves, is replaced or changes (CacheStore.watchMemory). */
  watchMemory(listener: (key: string) => void): void {
    this.#store.watchMemory(listener)
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

  /**
   * The body of a fresh stored 200 of at most `maxBytes`, or null: read without counting a hit or a
   * prefetch use (the edge's prefetcher reads the media playlists it served, docs/architecture.md §6).
   * A fill of the key in flight is waited for: a client may have its last byte before the commit.
   */
  async peekBody(key: string, maxBytes: number): Promise<Buffer | null> {
    const inFlight = this.#fills.get(key)
    if (inFlight !== undefined) await inFlight.settled
    if (this.#isClosed) return null
    const entry = this.#memory.peek(key)
    const obj = entry?.obj ?? this.#store.lookup(key)
    if (obj === null || obj.status !== 200 || obj.size > maxBytes || this.#o.now() >= obj.expiresAt) return null
    if (entry !== undefined) return entry.body
    if (obj.file === null) return null
    const fd = this.#store.openObject(obj, obj.file)
    return fd === null ? null : this.#store.readSmall(obj, obj.file, fd)
  }

  async prefetch(key: string): Promise<PrefetchResult> {
    try {
      if (this.#isClosed) return 'failed'
      const inFlight = this.#fills.get(key)
      if (inFlight !== undefined) {
        await inFlight.settled
        return 'joined'
      }
      const obj = this.#store.lookup(key)
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
  pass(req: PassRequest, sink: ResponseSink): Promise<ServeResult> {
    if (this.#isClosed) {
      const asServe: ServeRequest = { method: 'GET', key: req.key, headers: req.headers }
      return Promise.resolve(this.#respondError(sink, asServe, 'ERR_SHUTTING_DOWN', 'PASS', null))
    }
    return passThrough(req, sink, this.#passContext)
  }

  /**
   * Hard purge removes the stored answers; soft purge keeps them but makes them stale now, so the
   * next request revalidates (storage.ts expire). Either way, fills in flight commit nothing.
   */
  async purge(target: PurgeTarget, mode: PurgeMode = 'hard'): Promise<{ removed: number }> {
    if (this.#isClosed) return { removed: 0 }
    // Fills first: a purged fill commits nothing, whatever it is still receiving. An exact key
    // covers its variants too (RFC 9111 §4.1: they are responses of one target).
    let prefix: string
    if ('key' in target) {
      const fill = this.#fills.get(target.key)
      if (fill !== undefined) this.#markPurged(fill)
      prefix = target.key + VARIANT_SEPARATOR
    } else {
      prefix = target.prefix
    }
    for (const [key, fill] of this.#fills) if (key.startsWith(prefix)) this.#markPurged(fill)
    if (mode === 'soft') return { removed: this.#store.expire(target, this.#o.now()) }
    return { removed: await this.#store.purge(target) }
  }

  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    // Fills are tied to the engine, not to clients: closing stops them; they commit nothing.
    for (const fill of this.#fills.values()) fill.controller.abort(new VcdnError('ERR_SHUTTING_DOWN'))
    await this.#store.close()
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
    const fields = this.#store.varyOf(req.key)
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
      const row = this.#store.row(key)
      if (row !== undefined) {
        const obj = this.#store.fromRow(row)
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
    let fill = this.#fills.get(key) ?? this.#fillOfVariant(key)
    if (fill !== undefined && isBodyWhole(fill) && !isRetry) {
      // Its body is whole and being committed (fsync, rename, index row: long on a busy disk, long
      // enough for several requests in a row): wait for the commit, then answer from the stored
      // copy, a HIT while fresh. One that is stale at once (no-cache, max-age=0) is revalidated
      // with its validators (RFC 9111 §4.3.1) instead of fetched whole again; one that was not
      // stored is fetched again. Joining instead answered MISS without asking the upstream.
      // Whole includes the moment its last announced byte reached the clients but the upstream's
      // end of stream has not been read yet (a busy machine makes that moment long).
      await fill.settled
      const later = this.#o.now()
      const stored = this.#memory.get(key)
      if (stored !== undefined && later < stored.obj.expiresAt) {
        return this.#serveMemory(stored, req, sink, 'HIT', null, later)
      }
      return this.#serveKey(req, sink, later, stored, true)
    }
    if (fill !== undefined && !this.#isShareable(fill, now)) {
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
   * RFC 9111 §4.1: a fill started before its target was known to vary sits under the plain key;
   * once its head named this variant, requests for the same variant join it instead of asking the
   * upstream again.
   */
  #fillOfVariant(key: string): Fill | undefined {
    const primary = primaryKey(key)
    if (primary === key) return undefined
    const fill = this.#fills.get(primary)
    return fill !== undefined && fill.storeKey === key ? fill : undefined
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
    const row = this.#store.row(key)
    if (row === undefined) return null
    return this.#serveDisk(this.#store.fromRow(row), row.prefetched === 1, req, sink, outcome, upstreamMs)
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
    this.#store.touch(obj)
    countOutcome(this.#counters, outcome)
    if (outcome === 'HIT' && entry.isPrefetched) {
      entry.isPrefetched = false
      this.#usePrefetched(obj.key)
    }
    return serveEntry(entry, req, sink, outcome, upstreamMs, now)
  }

  /** Serve from the object file (opened synchronously right after the index lookup: storage.ts). */
  async #serveDisk(
    obj: StoredObject,
    isPrefetched: boolean,
    req: ServeRequest,
    sink: ResponseSink,
    outcome: CacheOutcome,
    upstreamMs: number | null,
  ): Promise<ServeResult | null> {
    const file = obj.file
    if (file === null) return null
    const fd = this.#store.openObject(obj, file)
    if (fd === null) return null
    this.#store.touch(obj)
    if (outcome === 'HIT' && isPrefetched) this.#usePrefetched(obj.key)
    const now = this.#o.now()
    const plan = planStored(obj, req, outcome, now)
    const wantsBody = plan.end > plan.start

    if (obj.size <= this.#o.memoryObjectMaxBytes) {
      // Small: read whole, promote into memory, answer like a memory hit.
      const body = await this.#store.readSmall(obj, file, fd)
      if (body === null) return null
      countOutcome(this.#counters, outcome)
      sink.start(plan.status, plan.headers, plan.contentLength)
      if (wantsBody) sink.end(body.subarray(plan.start, plan.end))
      else sink.end()
      return { outcome, status: plan.status, bytes: plan.end - plan.start, upstreamMs }
    }

    countOutcome(this.#counters, outcome)
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
      if (mine === null || mine !== fill.storeKey) {
        return this.#serveSlow({ ...req, key: primaryKey(req.key) }, sink, this.#o.now(), undefined, true)
      }
    }
    const outcome: CacheOutcome = head.isPass ? 'PASS' : 'MISS'
    countOutcome(this.#counters, outcome)
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
    const end = Number.isFinite(plan.end) ? plan.end : null
    const bytes = await pipeFill(fill, sink, reader, plan.start, end, (err, pos) =>
      this.#o.log.warn({ err, key: fill.key, pos }, 'cache fill reader failed; its response is cut'),
    )
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
    return respondError(this.#counters, sink, req, code, outcome, upstreamMs)
  }

  #usePrefetched(key: string): void {
    this.#counters.prefetchUsed++
    this.#store.clearPrefetched(key)
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
    runFill(fill, requestHeaders, this.#fetchContext).catch((err: unknown) => {
      // runFill handles its own failures; this is a last line against unhandled rejections.
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
}

/** A fill's body has arrived in full: completed, or every byte its content-length announced. */
function isBodyWhole(fill: Fill): boolean {
  if (fill.state === 'complete') return true
  const head = fill.head
  return (
    fill.state === 'streaming' &&
    head !== null &&
    head.kind === 'body' &&
    head.contentLength !== null &&
    fill.received === head.contentLength
  )
}
