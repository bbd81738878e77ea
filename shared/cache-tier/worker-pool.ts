// The coordinator's side of docs/architecture.md §9.1 (`workers` > 1): N worker threads, each
// running the tier's own request logic on the public port (SO_REUSEPORT spreads connections),
// and the one engine they all ask. The coordinator (the main thread) owns the engine, so there is
// one memory tier, one disk tier and index, and one fill per key per machine whichever worker a
// request reached. A worker that exits is replaced in its slot while the others serve.
//
// Bytes: memory-tier bodies live in SharedArrayBuffers (CacheOptions.isMemoryShared) and are posted
// as views of them, which shares the memory. Anything else the engine writes (fill chunks, disk
// reads) is copied once into a SharedArrayBuffer per chunk object, whichever and however many
// requests it goes to, and posted the same way. Backpressure: a write is acknowledged when the
// worker's sink took it, so a slow viewer holds back only its own request.
//
// Hits: a worker answers fresh memory hits itself (worker-link.ts). When a request the coordinator
// served leaves its key a fresh memory entry, the answer (`done`) carries that entry; when an
// entry offered so leaves the memory tier, is replaced or changes, every worker is told to forget
// it, at once (memoryChanged, called synchronously by the memory tier): the order argument is in
// worker-link.ts.
//
// Owned by the coordinator thread: the slots, each slot's open requests, the offered keys.
import { Worker } from 'node:worker_threads'
import type { CacheEngine, ServeRequest, ServeResult } from '../cache/index.js'
import { isVcdnError } from '../errors/index.js'
import type { HeaderMap, ResponseSink } from '../http/index.js'
import type { Logger } from '../log/index.js'
import type { LocalEntry, TierWorkerData, ToCoordinator, ToWorker } from './worker-protocol.js'

/** How long start() waits for every worker to listen (a busy machine starts threads slowly). */
const START_TIMEOUT_MS = 60_000
/** Replacement delay after an exit, doubled per exit in a row that came soon after its start. */
const RESTART_BASE_MS = 100
const RESTART_MAX_MS = 10_000
/** A worker that served this long before exiting is replaced at once again. */
const HEALTHY_AFTER_MS = 10_000

/** One copy in shared memory per chunk object the engine writes (see the file comment). */
const sharedCopies = new WeakMap<Uint8Array, Uint8Array>()
function shareable(chunk: Uint8Array): Uint8Array {
  if (chunk.buffer instanceof SharedArrayBuffer) return chunk
  let copy = sharedCopies.get(chunk)
  if (copy === undefined) {
    copy = new Uint8Array(new SharedArrayBuffer(chunk.byteLength))
    copy.set(chunk)
    sharedCopies.set(chunk, copy)
  }
  return copy
}

const RESOLVED = Promise.resolve()

/** A response the coordinator's engine writes for a worker's request: each call becomes a message. */
class PortSink implements ResponseSink {
  readonly #slot: Slot
  readonly #id: number
  #isAborted = false
  #abortCallbacks: (() => void)[] = []
  #waitingAck: (() => void) | null = null

  constructor(slot: Slot, id: number) {
    this.#slot = slot
    this.#id = id
  }

  get isAborted(): boolean {
    return this.#isAborted
  }

  onAbort(cb: () => void): void {
    if (this.#isAborted) cb()
    else this.#abortCallbacks.push(cb)
  }

  start(status: number, headers: HeaderMap, contentLength?: number): void {
    if (this.#isAborted) return
    this.#slot.post({
      t: 'start',
      id: this.#id,
      status,
      headers,
      ...(contentLength !== undefined ? { contentLength } : {}),
    })
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#isAborted) return RESOLVED
    return new Promise((resolve) => {
      this.#waitingAck = resolve
      this.#slot.post({ t: 'write', id: this.#id, chunk: shareable(chunk) })
    })
  }

  end(chunk?: Uint8Array): void {
    if (this.#isAborted) return
    this.#slot.post({ t: 'end', id: this.#id, ...(chunk !== undefined ? { chunk: shareable(chunk) } : {}) })
  }

  abort(): void {
    if (this.#isAborted) return
    this.#slot.post({ t: 'abort', id: this.#id })
    this.clientGone()
  }

  acked(): void {
    const resolve = this.#waitingAck
    this.#waitingAck = null
    resolve?.()
  }

  /** The client (or its whole worker) went away. */
  clientGone(): void {
    if (this.#isAborted) return
    this.#isAborted = true
    this.acked()
    const callbacks = this.#abortCallbacks
    this.#abortCallbacks = []
    for (const cb of callbacks) cb()
  }
}

/** A passed request's body as it arrives from the worker, each chunk acknowledged once taken. */
class BodyChannel implements AsyncIterable<Uint8Array> {
  readonly #slot: Slot
  readonly #id: number
  readonly #queue: (Uint8Array | null)[] = []
  #wake: (() => void) | null = null

  constructor(slot: Slot, id: number) {
    this.#slot = slot
    this.#id = id
  }

  push(chunk: Uint8Array | null): void {
    this.#queue.push(chunk)
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.#queue.length === 0) await new Promise<void>((resolve) => (this.#wake = resolve))
      const chunk = this.#queue.shift()
      if (chunk === undefined) continue
      if (chunk === null) return
      this.#slot.post({ t: 'bodyAcked', id: this.#id })
      yield chunk
    }
  }
}

interface Slot {
  readonly index: number
  worker: Worker
  startedAt: number
  /** Its current worker listens. */
  isReady: boolean
  /** Its current worker's start: settles once it listens, exits first or times out. */
  starting: Promise<void>
  /** Hits its workers answered locally (worker_local_hits_total). */
  localHits: number
  readonly sinks: Map<number, PortSink>
  readonly bodies: Map<number, BodyChannel>
  post(m: ToWorker): void
}

export interface WorkerPoolOptions {
  count: number
  /** The public port, checked free: every worker binds it with SO_REUSEPORT. */
  port: number
  /** The HTTPS port when HTTPS listens beside plain HTTP, checked and shared the same way. */
  tlsPort?: number
  /** The loopback address of the coordinator's PROXY v1 front end, whose v2 headers workers believe. */
  proxyFrontEnd?: string | undefined
  engine: CacheEngine
  log: Logger
  /** Finished requests a worker reports: [status, bytes, seconds] per request, caches beside. */
  onCounts: (numbers: readonly number[], caches: readonly string[], refused: readonly string[]) => void
  /** A key a worker served (the latest status of each since its last batch, in first-served order). */
  onServed: (key: string, status: number) => void
  /** A key a worker's client named as its next request (CMCD nor). */
  onHint: (key: string) => void
  /** The script a worker runs (the `vcdn` command this process runs) and its arguments. */
  entry: string
  argv: readonly string[]
}

export class WorkerPool {
  readonly #o: WorkerPoolOptions
  readonly #slots: Slot[] = []
  #isClosing = false
  #replaced = 0
  /** Exits in a row of each slot's workers that died soon after starting (crash loop backoff). */
  readonly #quickExits = new Map<number, number>()
  /** reloadTls answers awaited, by request id. */
  readonly #tlsReloads = new Map<number, (ok: boolean) => void>()
  #nextTlsReload = 1
  /** Keys whose memory entry went to a worker since their last `forget`: only these are broadcast. */
  readonly #offered = new Set<string>()
  /** `forget` broadcasts sent, one Int32 shared with every worker (worker-link.ts serveHit). */
  readonly #invalidations = new Int32Array(new SharedArrayBuffer(4))
  #roundTrips = 0

  constructor(o: WorkerPoolOptions) {
    if (!Number.isInteger(o.count) || o.count < 1) throw new TypeError('opts.count must be an integer >= 1')
    this.#o = o
  }

  /**
   * Start every worker; resolves once each listens. If one fails (cannot listen, exits, times
   * out), the pool is closed before the error is rethrown: the workers that listen drain and end,
   * so the process can exit with the error instead of keeping threads that serve (and a thread
   * ending with its sockets open aborts the whole process, docs/architecture.md §9.1).
   */
  async start(): Promise<void> {
    const ready: Promise<void>[] = []
    for (let index = 1; index <= this.#o.count; index++) ready.push(this.#spawn(index))
    try {
      await Promise.all(ready)
    } catch (err) {
      await this.close(0)
      throw err
    }
  }

  /** Workers listening now (the `workers` gauge). */
  get live(): number {
    let n = 0
    for (const slot of this.#slots) if (slot.isReady) n++
    return n
  }

  /** Workers started in place of one that exited. */
  get replaced(): number {
    return this.#replaced
  }

  /** Requests the workers sent to the engine (serve and pass): a local hit sends none. */
  get roundTrips(): number {
    return this.#roundTrips
  }

  /** Hits each worker slot answered from its local map, as [index, hits]. */
  localHits(): [number, number][] {
    return this.#slots.map((slot) => [slot.index, slot.localHits])
  }

  /**
   * `key`'s memory entry left the tier, was replaced or changed in place (CacheEngine.watchMemory,
   * called synchronously as it happens): if it went to a worker, every worker drops it before it
   * reads any later message, and none answers it locally meanwhile (the shared count is ahead).
   */
  memoryChanged(key: string): void {
    if (!this.#offered.delete(key)) return
    Atomics.add(this.#invalidations, 0, 1)
    for (const slot of this.#slots) slot.post({ t: 'forget', key })
  }

  /**
   * Make worker `index` fail as a crash does (it closes its listener and connections and exits);
   * the pool replaces it. False when there is no such worker.
   */
  restart(index: number): boolean {
    const slot = this.#slots.find((s) => s.index === index)
    if (slot === undefined || this.#isClosing) return false
    slot.post({ t: 'crash' })
    return true
  }

  /**
   * Every listening worker re-reads the certificate files (each has its own HTTPS listener; a
   * worker started later reads them as they are then). True when every one serves them now; a
   * worker that fails keeps its old certificates and logs why (TlsListener.reload).
   */
  async reloadTls(reason: string): Promise<boolean> {
    const answers = this.#slots
      .filter((slot) => slot.isReady)
      .map(
        (slot) =>
          new Promise<boolean>((resolve) => {
            const id = this.#nextTlsReload++
            const timer = setTimeout(() => {
              this.#tlsReloads.delete(id)
              resolve(false)
            }, START_TIMEOUT_MS)
            timer.unref()
            this.#tlsReloads.set(id, (ok) => {
              clearTimeout(timer)
              resolve(ok)
            })
            slot.post({ t: 'reloadTls', id, reason })
          }),
      )
    const results = await Promise.all(answers)
    return results.length > 0 && results.every((ok) => ok)
  }

  /**
   * Ask every worker to drain (listener first, docs/architecture.md §9.1), then wait for them to end. A
   * worker still starting is waited for first (bounded by START_TIMEOUT_MS): once it listens it
   * drains like the others; one that never listened is terminated.
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.#isClosing = true
    await Promise.all(this.#slots.map((slot) => this.#closeSlot(slot, drainTimeoutMs)))
  }

  async #closeSlot(slot: Slot, drainTimeoutMs: number): Promise<void> {
    await slot.starting
    const worker = slot.worker
    if (worker.threadId === -1) return
    if (!slot.isReady) {
      // It never listened (timed out starting), so it holds no sockets: terminating is safe.
      await worker.terminate()
      return
    }
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve())
      slot.post({ t: 'close', drainTimeoutMs })
    })
  }

  #spawn(index: number): Promise<void> {
    const data: TierWorkerData = {
      vcdnTierWorker: {
        index,
        port: this.#o.port,
        ...(this.#o.tlsPort !== undefined ? { tlsPort: this.#o.tlsPort } : {}),
        ...(this.#o.proxyFrontEnd !== undefined ? { proxyFrontEnd: this.#o.proxyFrontEnd } : {}),
        // Every later `forget` is posted to this worker (slot.worker is it from here on).
        invalidations: this.#invalidations.buffer,
        invalidationsSeen: Atomics.load(this.#invalidations, 0),
      },
    }
    const worker = new Worker(this.#o.entry, { argv: [...this.#o.argv], workerData: data })
    let slot = this.#slots.find((s) => s.index === index)
    if (slot === undefined) {
      const sinks = new Map<number, PortSink>()
      const bodies = new Map<number, BodyChannel>()
      const created: Slot = {
        index,
        worker,
        startedAt: Date.now(),
        isReady: false,
        starting: Promise.resolve(),
        localHits: 0,
        sinks,
        bodies,
        post: (m) => created.worker.postMessage(m),
      }
      slot = created
      this.#slots.push(slot)
    } else {
      slot.worker = worker
      slot.startedAt = Date.now()
      slot.isReady = false
    }
    const owner = slot
    const started = new Promise<void>((resolve, reject) => {
      let isReady = false
      const timer = setTimeout(() => {
        if (!isReady) reject(new Error(`worker ${index} did not listen within ${START_TIMEOUT_MS} ms`))
      }, START_TIMEOUT_MS)
      timer.unref()
      worker.on('message', (m: ToCoordinator) => {
        if (m.t === 'ready') {
          isReady = true
          owner.isReady = true
          clearTimeout(timer)
          this.#o.log.info({ worker: index, threadId: worker.threadId }, 'worker listening')
          resolve()
          return
        }
        this.#onMessage(owner, m)
      })
      worker.on('error', (err) => {
        this.#o.log.error({ err, worker: index }, 'worker failed')
        if (!isReady) reject(err)
      })
      worker.on('exit', (code) => {
        clearTimeout(timer)
        owner.isReady = false
        // Whatever it was serving is gone with it: the engine stops writing to those sinks.
        for (const sink of owner.sinks.values()) sink.clientGone()
        owner.sinks.clear()
        for (const body of owner.bodies.values()) body.push(null)
        owner.bodies.clear()
        if (!isReady) {
          reject(new Error(`worker ${index} exited (${code}) before listening`))
          return
        }
        if (this.#isClosing) return
        this.#o.log.error({ worker: index, code }, 'worker exited: replacing it')
        this.#replace(owner)
      })
    })
    owner.starting = started.catch(() => undefined)
    return started
  }

  #replace(slot: Slot): void {
    const isQuick = Date.now() - slot.startedAt < HEALTHY_AFTER_MS
    const exits = isQuick ? (this.#quickExits.get(slot.index) ?? 0) + 1 : 0
    this.#quickExits.set(slot.index, exits)
    const delayMs = exits === 0 ? 0 : Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (exits - 1))
    setTimeout(() => {
      if (this.#isClosing) return
      this.#spawn(slot.index).then(
        () => {
          this.#replaced++
        },
        (err: unknown) => {
          this.#o.log.error({ err, worker: slot.index }, 'worker replacement failed')
        },
      )
    }, delayMs).unref()
  }

  #onMessage(slot: Slot, m: ToCoordinator): void {
    const engine = this.#o.engine
    switch (m.t) {
      case 'serve': {
        this.#roundTrips++
        const sink = new PortSink(slot, m.id)
        slot.sinks.set(m.id, sink)
        const req = {
          method: m.method,
          key: m.key,
          headers: m.headers,
          ...(m.source !== undefined ? { source: { headers: m.source } } : {}),
        }
        this.#answer(slot, m.id, engine.serve(req, sink), req, m.held)
        return
      }
      case 'pass': {
        this.#roundTrips++
        const sink = new PortSink(slot, m.id)
        const body = new BodyChannel(slot, m.id)
        slot.sinks.set(m.id, sink)
        slot.bodies.set(m.id, body)
        this.#answer(slot, m.id, engine.pass({ method: m.method, key: m.key, headers: m.headers, body }, sink))
        return
      }
      case 'body':
        slot.bodies.get(m.id)?.push(m.chunk)
        return
      case 'acked':
        slot.sinks.get(m.id)?.acked()
        return
      case 'aborted':
        slot.sinks.get(m.id)?.clientGone()
        return
      case 'counts':
        this.#o.onCounts(m.numbers, m.caches, m.refused)
        m.served.forEach((key, i) => this.#o.onServed(key, m.servedStatus[i] ?? 0))
        for (const key of m.hints) this.#o.onHint(key)
        for (const hits of m.localHits) {
          engine.countLocalHits(hits.key, hits.generation, hits.count)
          slot.localHits += hits.count
        }
        return
      case 'tlsReloaded': {
        const resolve = this.#tlsReloads.get(m.id)
        this.#tlsReloads.delete(m.id)
        resolve?.(m.ok)
        return
      }
      case 'ready':
        return
    }
  }

  /**
   * `req`: a GET/HEAD, whose fresh memory entry (if any, and not the version `held` already) goes
   * with the answer, read in the same synchronous section as the post, so any later change of it
   * is a `forget` posted after this answer.
   */
  #answer(slot: Slot, id: number, served: Promise<ServeResult>, req?: ServeRequest, held?: number): void {
    served.then(
      (result) => {
        slot.sinks.delete(id)
        slot.bodies.delete(id)
        const local = req === undefined ? null : this.#offer(req, held)
        slot.post(local === null ? { t: 'done', id, result } : { t: 'done', id, result, local })
      },
      (err: unknown) => {
        slot.sinks.delete(id)
        slot.bodies.delete(id)
        if (isVcdnError(err)) slot.post({ t: 'done', id, code: err.code })
        else {
          this.#o.log.error({ err, worker: slot.index }, 'serving a worker request failed')
          slot.post({ t: 'done', id, detail: 'internal' })
        }
      },
    )
  }

  /** The entry that answers `req` (the plain key's, or the variant its Vary values select). */
  #offer(req: ServeRequest, held: number | undefined): LocalEntry | null {
    const shared = this.#o.engine.sharedEntryFor(req)
    if (shared === null) return null
    const { entry, vary } = shared
    this.#offered.add(entry.obj.key)
    if (entry.generation === held) return null
    return { obj: entry.obj, body: entry.body, generation: entry.generation, ...(vary !== null ? { vary } : {}) }
  }
}
