// A cache tier's worker thread's side of docs/architecture.md §9.1: the engine the tier's request
// logic (tier.ts) talks to in a worker. It answers keyFor() itself, and fresh memory hits from its
// local map of the coordinator's memory entries (no round trip); everything else goes to the
// coordinator's engine, one message round trip per request, and the response that engine writes
// is played back onto the real sink. Finished requests and local hits are counted in batches for
// the coordinator's /metrics and engine counters; the same batches carry the keys served and the
// CMCD hints to the edge's prefetcher, which runs in the coordinator. Owned by the worker thread;
// single-threaded.
//
// The local map, key → the coordinator's memory entry (shared body view, stored headers and
// validators, freshness, generation), is filled by the coordinator's answers (Done.local) and
// emptied by its `forget` broadcasts, sent whenever an entry leaves the memory tier, is replaced
// or changes in place (purge, soft purge, eviction, a newer fill, a 304's headers). Why a local hit
// never serves what the coordinator no longer holds:
// 1. Messages on one port arrive in the order they were posted. The coordinator posts a `forget`
//    synchronously when the entry changes, so it precedes every later message to this worker: the
//    answer that offers the new version, and any answer to a request made after the change.
// 2. Between the change and this worker reading that `forget` (queued behind a busy loop, or read
//    after a socket that became ready at the same time), the coordinator has already incremented
//    the shared Int32 of `forget`s sent; serveHit compares it with the `forget`s read here and
//    answers nothing locally while one is unread. So once the coordinator has purged (and the
//    admin answered), no worker answers the old bytes.
// A target stored as variants (RFC 9111 §4.1) is kept by variant key, with the Vary fields that
// select it, so a request's variant key is computed here as the engine computes it.
// Bodies are safe to read for as long as the map holds them: each memory-tier body is a
// SharedArrayBuffer of its own, never written after it is stored and never reused for another
// object; the map holds the view, so the buffer lives while any worker holds it.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import {
  cacheKey,
  memoryEntry,
  primaryKey,
  requestHeadersOf,
  serveEntry,
  variantKey,
  type MemoryEntry,
  type PassRequest,
  type QueryPolicy,
  type ServeRequest,
  type ServeResult,
} from '../cache/index.js'
import { VcdnError } from '../errors/index.js'
import type { ResponseSink } from '../http/index.js'
import type { Done, LocalEntry, LocalHits, TierWorkerData, ToCoordinator, ToWorker } from './worker-protocol.js'

/** How often finished requests are reported: /metrics in the coordinator is at most this late. */
const COUNTS_FLUSH_MS = 50

interface Pending {
  readonly sink: ResponseSink
  readonly resolve: (r: ServeResult) => void
  readonly reject: (err: unknown) => void
}

/** What the tier's request handler needs of an engine. */
export interface TierEngine {
  keyFor(path: string, query: string): string
  serveHit(req: ServeRequest, sink: ResponseSink): ServeResult | null
  serve(req: ServeRequest, sink: ResponseSink): Promise<ServeResult>
  pass(req: PassRequest, sink: ResponseSink): Promise<ServeResult>
}

export class CoordinatorLink implements TierEngine {
  readonly #port: MessagePort
  readonly #query: QueryPolicy
  #next = 1
  readonly #requests = new Map<number, Pending>()
  readonly #bodyAcks = new Map<number, () => void>()
  #numbers: number[] = []
  #caches: string[] = []
  #refused: string[] = []
  /** Keys served since the last batch, each once, in first-served order, with its latest status. */
  #served = new Map<string, number>()
  #hints = new Set<string>()
  /** Local hits since the last batch, by key: the latest version served and how many. */
  #localHits = new Map<string, { generation: number; count: number }>()
  /** The coordinator's fresh memory entries this worker answers itself (see the file comment). */
  readonly #local = new Map<string, MemoryEntry>()
  /**
   * Targets stored as variants (RFC 9111 §4.1) with an entry here: the Vary fields that select a
   * request's variant key (variantKey). Learnt with each variant entry, dropped with any `forget`
   * of one of its variants; a wrong or missing list only sends requests to the coordinator.
   */
  readonly #vary = new Map<string, readonly string[]>()
  /** `forget`s sent by the coordinator (shared Int32) and `forget`s read here. */
  readonly #invalidations: Int32Array
  #invalidationsSeen: number
  readonly #now: () => number
  #flushTimer: NodeJS.Timeout | null = null
  /** Set by the tier: what a `close`, `crash` or `reloadTls` message does. */
  onClose: (drainTimeoutMs: number) => void = () => {}
  onCrash: () => void = () => {}
  onReloadTls: (reason: string) => Promise<boolean> = () => Promise.resolve(false)

  /** `now`: the clock the coordinator's engine reads (epoch ms), for the freshness of local hits. */
  constructor(opts: { query: QueryPolicy; now: () => number }) {
    const data = (workerData as Partial<TierWorkerData> | null)?.vcdnTierWorker
    if (parentPort === null || data === undefined) throw new Error('CoordinatorLink runs in a worker thread only')
    this.#port = parentPort
    this.#query = opts.query
    this.#now = opts.now
    this.#invalidations = new Int32Array(data.invalidations)
    this.#invalidationsSeen = data.invalidationsSeen
    this.#port.on('message', (m: ToWorker) => this.#onMessage(m))
  }

  #post(m: ToCoordinator): void {
    this.#port.postMessage(m)
  }

  ready(): void {
    this.#post({ t: 'ready' })
  }

  /** Let the thread end: the port no longer keeps it alive (the listener must be closed first). */
  detach(): void {
    this.#flush()
    this.#port.close()
  }

  keyFor(path: string, query: string): string {
    return cacheKey(path, query, this.#query)
  }

  /**
   * A fresh memory hit answered here, without a round trip, exactly as the coordinator's engine
   * answers it (serveEntry: the same head, conditionals, Range, HEAD), while the entry is fresh by
   * the engine's own expiry (RFC 9111 §4.2) and no `forget` is unread; else null (then serve()).
   */
  serveHit(req: ServeRequest, sink: ResponseSink): ServeResult | null {
    return this.#serveLocal(req, this.#localKeyOf(req), sink)
  }

  /** The key of `req`'s entry here: its own, or for a target stored as variants the variant it selects. */
  #localKeyOf(req: ServeRequest): string {
    if (this.#vary.size === 0) return req.key
    const fields = this.#vary.get(req.key)
    return fields === undefined ? req.key : variantKey(req.key, fields, requestHeadersOf(req))
  }

  #serveLocal(req: ServeRequest, key: string, sink: ResponseSink): ServeResult | null {
    const entry = this.#local.get(key)
    if (entry === undefined || Atomics.load(this.#invalidations, 0) !== this.#invalidationsSeen) return null
    const now = this.#now()
    if (now >= entry.obj.expiresAt) {
      // Stale: the coordinator revalidates (or serves stale) and offers the new version.
      this.#local.delete(key)
      return null
    }
    const result = serveEntry(entry, key === req.key ? req : { ...req, key }, sink, 'HIT', null, now)
    const hits = this.#localHits.get(key)
    if (hits === undefined) this.#localHits.set(key, { generation: entry.generation, count: 1 })
    else {
      hits.generation = entry.generation
      hits.count++
    }
    this.#scheduleFlush()
    return result
  }

  serve(req: ServeRequest, sink: ResponseSink): Promise<ServeResult> {
    // The engine's serve() answers a fresh memory hit first too (the edge's rewritten playlists).
    const localKey = this.#localKeyOf(req)
    const hit = this.#serveLocal(req, localKey, sink)
    if (hit !== null) return Promise.resolve(hit)
    const id = this.#next++
    const held = this.#local.get(localKey)?.generation
    return new Promise((resolve, reject) => {
      this.#requests.set(id, { sink, resolve, reject })
      sink.onAbort(() => this.#post({ t: 'aborted', id }))
      // Read now: the request's fields are valid only while the handler runs synchronously.
      const source = req.source?.headers
      this.#post({
        t: 'serve',
        id,
        method: req.method,
        key: req.key,
        headers: req.headers,
        ...(source !== undefined ? { source } : {}),
        ...(held !== undefined ? { held } : {}),
      })
    })
  }

  pass(req: PassRequest, sink: ResponseSink): Promise<ServeResult> {
    const id = this.#next++
    const answered = new Promise<ServeResult>((resolve, reject) => {
      this.#requests.set(id, { sink, resolve, reject })
      sink.onAbort(() => this.#post({ t: 'aborted', id }))
      this.#post({ t: 'pass', id, method: req.method, key: req.key, headers: req.headers })
    })
    this.#sendBody(id, req.body).catch(() => this.#post({ t: 'body', id, chunk: null }))
    return answered
  }

  /** The request body, one chunk at a time: the next is sent once the coordinator consumed this one. */
  async #sendBody(id: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const chunk of body) {
      if (!this.#requests.has(id)) return
      const acked = new Promise<void>((resolve) => this.#bodyAcks.set(id, resolve))
      this.#post({ t: 'body', id, chunk })
      await acked
    }
    this.#post({ t: 'body', id, chunk: null })
  }

  /** One finished request (RequestCounts.add's arguments), reported in the next batch. */
  count(status: number, cache: string, bytes: number, seconds: number): void {
    this.#numbers.push(status, bytes, seconds)
    this.#caches.push(cache)
    this.#scheduleFlush()
  }

  /** A key served, for the edge's prefetcher in the coordinator (its latest status in this batch). */
  served(key: string, status: number): void {
    this.#served.set(key, status)
    this.#scheduleFlush()
  }

  /** A key a client named as its next request (CMCD nor), checked, for the edge's prefetcher. */
  hint(key: string): void {
    this.#hints.add(key)
    this.#scheduleFlush()
  }

  /** One front-door refusal by code (refused_total). */
  refused(code: string): void {
    this.#refused.push(code)
    this.#scheduleFlush()
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== null) return
    this.#flushTimer = setTimeout(() => this.#flush(), COUNTS_FLUSH_MS)
    this.#flushTimer.unref()
  }

  #flush(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer)
    this.#flushTimer = null
    if (
      this.#caches.length === 0 &&
      this.#refused.length === 0 &&
      this.#localHits.size === 0 &&
      this.#hints.size === 0
    ) {
      return
    }
    const localHits: LocalHits[] = []
    for (const [key, { generation, count }] of this.#localHits) localHits.push({ key, generation, count })
    this.#post({
      t: 'counts',
      numbers: this.#numbers,
      caches: this.#caches,
      refused: this.#refused,
      localHits,
      served: [...this.#served.keys()],
      servedStatus: [...this.#served.values()],
      hints: [...this.#hints],
    })
    this.#served = new Map()
    this.#hints = new Set()
    this.#numbers = []
    this.#caches = []
    this.#refused = []
    this.#localHits = new Map()
  }

  #onMessage(m: ToWorker): void {
    switch (m.t) {
      case 'start': {
        const sink = this.#requests.get(m.id)?.sink
        if (sink !== undefined && !sink.isAborted) sink.start(m.status, m.headers, m.contentLength)
        return
      }
      case 'write': {
        const sink = this.#requests.get(m.id)?.sink
        if (sink === undefined || sink.isAborted) {
          this.#post({ t: 'acked', id: m.id })
          return
        }
        // Acknowledged when the client took it: the coordinator's next write waits (backpressure).
        sink.write(m.chunk).then(
          () => this.#post({ t: 'acked', id: m.id }),
          () => this.#post({ t: 'acked', id: m.id }),
        )
        return
      }
      case 'end': {
        const sink = this.#requests.get(m.id)?.sink
        if (sink !== undefined && !sink.isAborted) sink.end(m.chunk)
        return
      }
      case 'abort': {
        const sink = this.#requests.get(m.id)?.sink
        if (sink !== undefined && !sink.isAborted) sink.abort()
        return
      }
      case 'done':
        this.#done(m)
        return
      case 'forget':
        this.#local.delete(m.key)
        if (this.#vary.size > 0) this.#vary.delete(primaryKey(m.key))
        this.#invalidationsSeen = (this.#invalidationsSeen + 1) | 0
        return
      case 'bodyAcked': {
        const ack = this.#bodyAcks.get(m.id)
        this.#bodyAcks.delete(m.id)
        ack?.()
        return
      }
      case 'close':
        this.onClose(m.drainTimeoutMs)
        return
      case 'crash':
        this.onCrash()
        return
      case 'reloadTls':
        this.onReloadTls(m.reason).then(
          (ok) => this.#post({ t: 'tlsReloaded', id: m.id, ok }),
          () => this.#post({ t: 'tlsReloaded', id: m.id, ok: false }),
        )
        return
    }
  }

  #done(m: Done): void {
    const pending = this.#requests.get(m.id)
    if (pending === undefined) return
    this.#requests.delete(m.id)
    this.#bodyAcks.get(m.id)?.()
    this.#bodyAcks.delete(m.id)
    if (m.local !== undefined) this.#keep(m.local)
    if (m.result !== undefined) pending.resolve(m.result)
    else if (m.code !== undefined) pending.reject(new VcdnError(m.code))
    else pending.reject(new Error(`coordinator failed to serve: ${m.detail ?? 'unknown'}`))
  }

  /** The coordinator's memory entry for a key, answered here from now on (a view: shared, not copied). */
  #keep(local: LocalEntry): void {
    const body = Buffer.from(local.body.buffer, local.body.byteOffset, local.body.byteLength)
    const key = local.obj.key
    this.#local.set(key, memoryEntry(local.obj, body, false, local.generation))
    if (local.vary !== undefined) this.#vary.set(primaryKey(key), local.vary)
    else if (this.#vary.size > 0) this.#vary.delete(key)
  }
}
