// One upstream fetch of one key, shared by every request that wants it (docs/architecture.md §5.3).
// The fill owns the received bytes; each reader owns only its cursor, so a slow reader never slows
// the fill or the other readers.
//
// Late joiners: chunks stay in memory until they are both written to the temp file and more than
// `bufferBytes` behind the newest byte; a reader whose cursor points before the in-memory window
// re-reads those bytes from the temp file (positional reads on the fill's own file handle, which
// stays open — even after the rename into objects/ or an eviction unlink — until the last reader
// lets go). Fills that are not stored (pass-through, errors) have no temp file and keep all chunks.
//
// Wake-ups are promises resolved by the writer on every change (chunk, completion, failure);
// nothing polls.

import type { VcdnError } from '../errors/index.js'
import type { HeaderMap, ResponseSink } from '../http/types.js'
import type { FillFile } from './fill-file.js'
import type { StoredObject } from './stored-object.js'

/** Where a successful fill goes: disk (+ memory if small), memory only (negative answers), or nowhere. */
export type FillPlan = 'disk' | 'memory' | 'none'

export type FillHead =
  | { readonly kind: 'error'; readonly error: VcdnError; readonly upstreamMs: number }
  /** Upstream answered 304 to our conditional revalidation; the stored object was refreshed. */
  | { readonly kind: 'not-modified'; readonly headers: HeaderMap; readonly upstreamMs: number }
  | {
      readonly kind: 'body'
      readonly status: number
      readonly headers: HeaderMap
      readonly contentLength: number | null
      readonly upstreamMs: number
      readonly plan: FillPlan
      /** no-store / private: readers report PASS. */
      readonly isPass: boolean
      /** Response time (RFC 9111 §4.2.3), epoch ms. */
      readonly receivedAt: number
    }

export type FillState = 'pending' | 'streaming' | 'complete' | 'failed'

/** A reader's wake-up slot; the client-abort handler pokes it so a parked reader detaches at once. */
export interface FillReader {
  wake: (() => void) | null
  isCancelled: boolean
}

const FILE_READ_BYTES = 256 * 1024

export class Fill {
  readonly key: string
  /** The stale copy this fill revalidates, if any. */
  readonly base: StoredObject | null
  readonly isPrefetch: boolean
  readonly controller = new AbortController()
  /** Set by purge: the result must not be inserted; current readers may finish. */
  isPurged = false
  /** The key its answer is stored under (its variant), null for `Vary: *`; set before its head. */
  storeKey: string | null | undefined = undefined
  /** Set once upstream answered (or failed before answering); readers branch on it. */
  head: FillHead | null = null
  readonly headReady: Promise<FillHead>
  #resolveHead!: (head: FillHead) => void

  #state: FillState = 'pending'
  #error: unknown = null
  readonly #chunks: (Buffer | undefined)[] = []
  readonly #offsets: number[] = []
  #received = 0
  #written = 0
  #firstLive = 0
  #liveBytes = 0
  readonly #bufferBytes: number
  #waiters = new Set<() => void>()

  #file: FillFile | null = null
  #refs = 1 // the writer's own reference

  /** Settles (never rejects) once the fill is finished and committed or discarded. */
  readonly settled: Promise<boolean>
  #resolveSettled!: (ok: boolean) => void

  constructor(args: { key: string; base: StoredObject | null; isPrefetch: boolean; bufferBytes: number }) {
    this.key = args.key
    this.base = args.base
    this.isPrefetch = args.isPrefetch
    this.#bufferBytes = args.bufferBytes
    this.headReady = new Promise((resolve) => {
      this.#resolveHead = resolve
    })
    this.settled = new Promise((resolve) => {
      this.#resolveSettled = resolve
    })
  }

  get state(): FillState {
    return this.#state
  }

  get received(): number {
    return this.#received
  }

  get error(): unknown {
    return this.#error
  }

  get file(): FillFile | null {
    return this.#file
  }

  publishHead(head: FillHead): void {
    this.head = head
    if (head.kind === 'body') this.#state = 'streaming'
    this.#resolveHead(head)
  }

  attachFile(file: FillFile): void {
    this.#file = file
  }

  /** Writer: a chunk arrived from upstream. */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk)
    this.#offsets.push(this.#received)
    this.#received += chunk.length
    this.#liveBytes += chunk.length
    this.#notify()
  }

  /** Writer: `bytes` more are durable in the temp file; release chunks readers can re-read from it. */
  markWritten(bytes: number): void {
    this.#written += bytes
    while (this.#liveBytes > this.#bufferBytes && this.#firstLive < this.#chunks.length) {
      const chunk = this.#chunks[this.#firstLive]
      const offset = this.#offsets[this.#firstLive] ?? 0
      if (chunk === undefined || offset + chunk.length > this.#written) break
      this.#chunks[this.#firstLive] = undefined
      this.#liveBytes -= chunk.length
      this.#firstLive++
    }
  }

  complete(): void {
    this.#state = 'complete'
    this.#notify()
  }

  fail(error: unknown): void {
    this.#state = 'failed'
    this.#error = error
    this.#notify()
  }

  finish(ok: boolean): void {
    this.#resolveSettled(ok)
  }

  /** The whole body when every chunk is still in memory, else null. */
  wholeBody(): Buffer | null {
    if (this.#firstLive > 0) return null
    const chunks = this.#chunks as Buffer[]
    return chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, this.#received)
  }

  /** Bytes [pos, limit) from the newest-containing in-memory chunk, or null if pos was released. */
  slice(pos: number, limit: number): Buffer | null {
    // Binary search for the last chunk starting at or before pos.
    let lo = 0
    let hi = this.#offsets.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if ((this.#offsets[mid] ?? 0) <= pos) lo = mid
      else hi = mid - 1
    }
    const chunk = this.#chunks[lo]
    if (chunk === undefined) return null
    const offset = this.#offsets[lo] ?? 0
    return chunk.subarray(pos - offset, Math.min(chunk.length, limit - offset))
  }

  /** Re-read released bytes from the temp file (they are always written before release). */
  async readFile(pos: number, limit: number): Promise<Buffer> {
    const file = this.#file
    if (file === null) throw new Error(`fill ${this.key}: bytes at ${pos} released without a file`)
    const chunk = await file.read(pos, Math.min(limit - pos, FILE_READ_BYTES))
    if (chunk.length === 0) throw new Error(`fill ${this.key}: temp file shorter than written bytes`)
    return chunk
  }

  /** Park a reader until the next change; resolves early if the reader is cancelled. */
  waitForChange(reader: FillReader): Promise<void> {
    if (reader.isCancelled) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#waiters.delete(wake)
        reader.wake = null
        resolve()
      }
      this.#waiters.add(wake)
      reader.wake = wake
    })
  }

  #notify(): void {
    if (this.#waiters.size === 0) return
    const waiters = this.#waiters
    this.#waiters = new Set()
    for (const wake of waiters) wake()
  }

  ref(): void {
    this.#refs++
  }

  /** Drop a reference; the temp file handle closes when the writer and every reader let go. */
  unref(): Promise<void> {
    this.#refs--
    if (this.#refs > 0 || this.#file === null) return Promise.resolve()
    return this.#file.close()
  }

  /** Writer: remove a temp file that will not be committed. Open handles keep working (POSIX). */
  async discardTemp(): Promise<void> {
    await this.#file?.discard()
  }
}

/**
 * Stream bytes [start, end) of a fill to a sink (end null = until the fill completes). Ends the
 * sink only once the fill is complete and validated, so a body that turns out long or short
 * aborts every reader; aborts the sink when the fill fails. Never throws: a failure of this reader
 * alone (the sink refused a write, the temp file could not be read) aborts its sink and is told to
 * `onReaderFailed`, so a client cut short by the server, not by itself, leaves a trace.
 */
export async function pipeFill(
  fill: Fill,
  sink: ResponseSink,
  reader: FillReader,
  start: number,
  end: number | null,
  onReaderFailed?: (err: unknown, pos: number) => void,
): Promise<number> {
  fill.ref()
  let pos = start
  let sent = 0
  try {
    for (;;) {
      if (sink.isAborted || reader.isCancelled) return sent
      if (fill.state === 'failed') {
        sink.abort()
        return sent
      }
      const limit = end === null ? fill.received : Math.min(end, fill.received)
      if (pos < limit) {
        const chunk = fill.slice(pos, limit) ?? (await fill.readFile(pos, limit))
        pos += chunk.length
        sent += chunk.length
        await sink.write(chunk)
        continue
      }
      if (fill.state === 'complete') {
        sink.end()
        return sent
      }
      await fill.waitForChange(reader)
    }
  } catch (err) {
    // A sink or temp-file read failure affects this reader only.
    if (!sink.isAborted) {
      onReaderFailed?.(err, pos)
      sink.abort()
    }
    return sent
  } finally {
    await fill.unref()
  }
}
