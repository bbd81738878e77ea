// A cache tier's worker thread's side of docs/architecture.md §12: the engine the tier's request
// logic (tier.ts) talks to in a worker. It answers keyFor() itself and sends everything else to
// the coordinator's engine, one message round trip per request, and plays the response the
// coordinator's engine writes back onto the real sink. Finished requests are counted in batches
// for the coordinator's /metrics. Owned by the worker thread; single-threaded.
import { parentPort, type MessagePort } from 'node:worker_threads'
import {
  cacheKey,
  type PassRequest,
  type PrefetchResult,
  type QueryPolicy,
  type ServeRequest,
  type ServeResult,
} from '../cache/index.js'
import { VcdnError } from '../errors/index.js'
import type { ResponseSink } from '../http/index.js'
import type { Done, ToCoordinator, ToWorker } from './worker-protocol.js'

/** How often finished requests are reported: /metrics in the coordinator is at most this late. */
const COUNTS_FLUSH_MS = 50

interface Pending {
  readonly sink: ResponseSink
  readonly resolve: (r: ServeResult) => void
  readonly reject: (err: unknown) => void
}

/** What the tier's request handler and the edge's prefetcher need of an engine. */
export interface TierEngine {
  keyFor(path: string, query: string): string
  serveHit(req: ServeRequest, sink: ResponseSink): ServeResult | null
  serve(req: ServeRequest, sink: ResponseSink): Promise<ServeResult>
  pass(req: PassRequest, sink: ResponseSink): Promise<ServeResult>
  prefetch(key: string): Promise<PrefetchResult>
  peekBody(key: string, maxBytes: number): Promise<Buffer | null>
}

export class CoordinatorLink implements TierEngine {
  readonly #port: MessagePort
  readonly #query: QueryPolicy
  #next = 1
  readonly #requests = new Map<number, Pending>()
  readonly #bodyAcks = new Map<number, () => void>()
  readonly #calls = new Map<number, (value: unknown) => void>()
  #numbers: number[] = []
  #caches: string[] = []
  #refused: string[] = []
  #flushTimer: NodeJS.Timeout | null = null
  /** Set by the tier: what a `close`, `crash` or `reloadTls` message does. */
  onClose: (drainTimeoutMs: number) => void = () => {}
  onCrash: () => void = () => {}
  onReloadTls: (reason: string) => Promise<boolean> = () => Promise.resolve(false)

  constructor(opts: { query: QueryPolicy }) {
    if (parentPort === null) throw new Error('CoordinatorLink runs in a worker thread only')
    this.#port = parentPort
    this.#query = opts.query
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

  /** No worker-local memory yet (docs/architecture.md §13): every request asks the coordinator. */
  serveHit(): ServeResult | null {
    return null
  }

  serve(req: ServeRequest, sink: ResponseSink): Promise<ServeResult> {
    const id = this.#next++
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

  prefetch(key: string): Promise<PrefetchResult> {
    return this.#call((id) => ({ t: 'prefetch', id, key })) as Promise<PrefetchResult>
  }

  async peekBody(key: string, maxBytes: number): Promise<Buffer | null> {
    const body = (await this.#call((id) => ({ t: 'peekBody', id, key, maxBytes }))) as Uint8Array | null
    return body === null ? null : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  }

  #call(message: (id: number) => ToCoordinator): Promise<unknown> {
    const id = this.#next++
    return new Promise((resolve) => {
      this.#calls.set(id, resolve)
      this.#post(message(id))
    })
  }

  /** One finished request (RequestCounts.add's arguments), reported in the next batch. */
  count(status: number, cache: string, bytes: number, seconds: number): void {
    this.#numbers.push(status, bytes, seconds)
    this.#caches.push(cache)
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
    if (this.#caches.length === 0 && this.#refused.length === 0) return
    this.#post({ t: 'counts', numbers: this.#numbers, caches: this.#caches, refused: this.#refused })
    this.#numbers = []
    this.#caches = []
    this.#refused = []
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
      case 'bodyAcked': {
        const ack = this.#bodyAcks.get(m.id)
        this.#bodyAcks.delete(m.id)
        ack?.()
        return
      }
      case 'reply': {
        const resolve = this.#calls.get(m.id)
        this.#calls.delete(m.id)
        resolve?.(m.value)
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
    if (m.result !== undefined) pending.resolve(m.result)
    else if (m.code !== undefined) pending.reject(new VcdnError(m.code))
    else pending.reject(new Error(`coordinator failed to serve: ${m.detail ?? 'unknown'}`))
  }
}
