// The one home of uWebSockets.js (docs/style.md "One home per third-party package"). Every uWS rule
// lives here and nowhere else: - onAborted is registered synchronously, before the handler can
// await anything; - every write that may happen after an await is wrapped in cork(); - request
// fields are copied synchronously (uWS invalidates HttpRequest when the handler returns); - bodies
// stream with tryEnd + onWritable (known length) or write + onWritable (chunked), which is
//   the backpressure contract of ResponseSink.write();
// - a response is never touched after it was aborted or ended.
// Limits of this uWS build (20.30) and what the adapter does about them (README.md has the evidence):
// - one idle timer per socket, 10 s on a 4 s tick, re-armed only by a write that could not finish:
//   responses under backpressure are driven by the send ticker (slowSinks), cut after sendTimeoutS
//   without progress;
// - onData keeps firing after the response ended: the body is released and discarded (RequestBody);
// - a request pipelined behind a response uWS still has pending closes the connection (uWS's
//   HttpContext: HTTP_RESPONSE_PENDING): safe only behind a body the kernel took at once.
import { STATUS_CODES } from 'node:http'
import uWS from 'uWebSockets.js'
import { CORS_FIELDS, corsBlockFor, renderCors, ALLOW_METHODS, type CorsBlocks, type CorsOptions } from './cors.js'
import { LISTEN_EXCLUSIVE_PORT, listenError } from './listen.js'
import { TlsListener, type TlsLog, type TlsOptions } from './tls.js'
import type { TrustedProxies } from './client-address.js'
import { addressText, ProxyPeers } from './proxy-protocol.js'
import { isFramingInvalid } from './request-guard.js'
import type { HeaderMap, ResponseSink, ServerRequest } from './types.js'

export interface IncomingRequest extends ServerRequest {
  /**
   * The request body, streamed with backpressure; throws if the client goes away, or if the
   * response ends before the body has arrived (the rest is then discarded). Empty for GET/HEAD.
   */
  readonly body: AsyncIterable<Uint8Array>
  /** Collect the body (up to maxBytes; over that resolves null). */
  readBody(maxBytes: number): Promise<Buffer | null>
}

export type Handler = (req: IncomingRequest, res: ResponseSink) => void | Promise<void>

export interface HttpServerOptions {
  host: string
  port: number
  handler: Handler
  /** Called when a handler throws or rejects after it has started a response: the adapter aborts. */
  onHandlerError?: (err: unknown) => void
  /**
   * Seconds a response may wait on a client that takes no bytes at all before the connection is
   * cut (default 60, as nginx's send_timeout). A client that still reads, however slowly, is
   * never cut by it.
   */
  sendTimeoutS?: number
  /**
   * CORS on every response this server sends (media and coded errors alike) and answers to
   * preflights (cors.ts). Absent or no origins: no CORS fields at all.
   */
  cors?: CorsOptions | undefined
  /**
   * HTTPS (tls.ts): in place of plain HTTP on host:port, or beside it on `tls.listen`. The files
   * are read and checked here: a bad one throws ERR_TLS_CERT.
   */
  tls?: TlsOptions | undefined
  /** Where TLS loads, reloads and their failures are reported. */
  log?: TlsLog
  /**
   * PROXY protocol v2 on the plain-HTTP listener (proxy-protocol.ts): a request's address is the
   * header's source address, believed only from these peers; any other peer's connection is
   * closed. Absent: a header uWS parsed is never read. Never on the HTTPS listener.
   */
  proxyProtocol?: TrustedProxies | undefined
  /**
   * The loopback address this process's PROXY v1 front end connects from (proxy-v1.ts): the
   * version 2 header on its connections names the client, with or without `proxyProtocol`
   * (without it every other peer is its own client, as before). Absent: no front end.
   */
  proxyFrontEnd?: string | undefined
  /**
   * Bind the listeners (plain HTTP and HTTPS) with SO_REUSEPORT, beside other listeners of this
   * process on the same ports (a tier's worker threads, docs/architecture.md §12). The caller
   * checks first that no one else holds them (listen.ts reservePort); default false: exclusive.
   */
  isPortShared?: boolean
}

export const DEFAULT_SEND_TIMEOUT_S = 60

/** The config key every tier with a public listener carries (spread into its schema). */
export const sendTimeoutSchema = {
  sendTimeoutS: {
    type: 'integer',
    default: DEFAULT_SEND_TIMEOUT_S,
    min: 1,
    max: 3600,
    unit: 's',
    doc: 'cut a response whose client has taken no bytes for this long (a slow reader is never cut)',
  },
} as const

// Headers that uWS writes itself or that are hop-by-hop (RFC 9110 §7.6.1): never copied through.
const OWN_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date'])
const statusLines = new Map<number, string>()
function statusLine(status: number): string {
  let line = statusLines.get(status)
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`
    statusLines.set(status, line)
  }
  return line
}

// The npm build we depend on silently falls back to a JavaScript stand-in when its native binary
// does not load; only the native one is uWebSockets.js, so refuse to run on the stand-in.
if (typeof (uWS as unknown as { getParts?: unknown }).getParts !== 'function') {
  throw new Error('uWebSockets.js: the native binary did not load (is this Node 20 on linux-x64?)')
}

const EMPTY = new Uint8Array(0)
/**
 * Whole bodies up to this size go out with end(): what the socket does not take now is at most
 * this much per connection in uWS's buffer, and end() spares tryEnd's result array and the
 * onWritable bookkeeping (a hot playlist is ~1 KB). Larger bodies use tryEnd (see #end()).
 */
const SMALL_BODY_BYTES = 64 * 1024
const RESOLVED = Promise.resolve()
/**
 * A chunked body (no Content-Length) goes to uWS in slices this big. uWS's write() keeps whatever
 * the socket does not take in its own buffer and says so, so under backpressure at most one slice
 * waits there and the rest of the caller's chunk stays with us, to be offered again (see slowSinks).
 */
const CHUNK_SLICE_BYTES = 16 * 1024
/** What the ticker offers a blocked chunked body: taken whole only if the client read since. */
const CHUNK_PROBE_BYTES = 1024
const CRLF = /[\r\n]/

/**
 * Set while a uWS request handler runs synchronously. uWS corks the socket for the duration of
 * that callback, so writes made inside it need no cork() of their own (and no closure for it);
 * writes after an await still go through cork(). Owned by the adapter; single-threaded.
 */
let isInHandler = false

/**
 * A header map pre-rendered for uWS: the first name, and the rest of the block as one buffer
 * ("v1\r\nn2: v2\r\n…: vN"), so the head costs one writeHeader() call instead of one per header.
 * uWS writes `name: value\r\n` verbatim, so the block is exactly what per-header calls produce.
 * Cached per map object: the cache engine reuses one frozen-by-convention map for every hit of an
 * object (sinks never mutate the maps they are given), so hot hits pay nothing here.
 */
interface RenderedHead {
  firstName: string
  rest: Buffer
}

/**
 * `headers` rendered, without the fields in `skipped`, with `suffix` (a pre-rendered block of
 * field lines, '' for none) after them; null when the map must take the per-header path.
 */
function renderHead(headers: HeaderMap, skipped: ReadonlySet<string>, suffix: string): RenderedHead | null {
  let firstName: string | null = null
  let rest = ''
  for (const name in headers) {
    if (skipped.has(name)) continue
    const value = headers[name]
    if (value === undefined) continue
    // Never splice a CR/LF into the head (RFC 9110 §5.5): such a map takes the per-header path,
    // which writes what it was given exactly as before.
    if (CRLF.test(name) || CRLF.test(value)) return null
    if (firstName === null) {
      firstName = name
      rest = value
    } else {
      rest += `\r\n${name}: ${value}`
    }
  }
  if (firstName === null) return null
  if (suffix !== '') rest += `\r\n${suffix}`
  return { firstName, rest: Buffer.from(rest, 'latin1') }
}

/** A block of field lines ("n1: v1\r\nn2: v2") as one writeHeader() call. */
function renderBlock(block: string): RenderedHead {
  const colon = block.indexOf(': ')
  return { firstName: block.slice(0, colon), rest: Buffer.from(block.slice(colon + 2), 'latin1') }
}

/** A server's CORS blocks, each ready for one writeHeader() call (rendered once per server). */
interface CorsHeads {
  readonly blocks: CorsBlocks
  /** Per block string, its rendered form (every block is one of a few strings of `blocks`). */
  readonly rendered: ReadonlyMap<string, RenderedHead>
  readonly preflight: RenderedHead
}

function renderCorsHeads(blocks: CorsBlocks): CorsHeads {
  const rendered = new Map<string, RenderedHead>()
  for (const block of [blocks.any ?? '', blocks.other, ...blocks.byOrigin.values()]) {
    if (block !== '') rendered.set(block, renderBlock(block))
  }
  return { blocks, rendered, preflight: renderBlock(`${blocks.preflight}\r\nallow: ${ALLOW_METHODS}`) }
}

/** The server a sink reports to (one object per server, not a closure per request). */
interface InFlightTracker {
  /** How long a response may wait on a client that takes no bytes before it is cut. */
  readonly sendTimeoutMs: number
  /**
   * Header maps rendered for this server (its CORS block differs from another server's). Cached
   * per map object: the cache engine reuses one frozen-by-convention map for every hit of an
   * object (sinks never mutate the maps they are given), so hot hits pay nothing here.
   */
  readonly heads: WeakMap<HeaderMap, RenderedHead | null>
  /** Fields never copied from a map: uWS's own, hop-by-hop, and CORS's when this server applies it. */
  readonly skipped: ReadonlySet<string>
  /** The CORS block of every response (`*`), already inside every rendered head; '' for none. */
  readonly corsAny: string
  readonly cors: CorsHeads | null
  settled(): void
  /** A uWS callback threw: reported, never rethrown into uWS (an exception there ends the process). */
  failed(err: unknown): void
}

/**
 * Slow clients. uWS closes an HTTP socket 10 s (HTTP_TIMEOUT_S, checked on a 4 s tick) after the
 * last write that could not be sent in full, and re-arms that timer only when it writes again;
 * a client reading from a full socket never makes the socket writable again in time (EPOLLOUT
 * waits for a third of a send buffer that autotunes to 4 MB: 40 s at 32 KB/s). So a response
 * waiting on backpressure joins this set, and every SEND_TICK_MS the ticker offers the socket
 * what is left of the pending chunk: the kernel takes what the client has read since, which is
 * progress, and the failed remainder re-arms uWS's timer. A response that made no progress for
 * sendTimeoutMs is cut (nginx's send_timeout). Only responses under backpressure are here: a hit
 * that leaves in one call costs nothing. Owned by the ticker; single-threaded.
 */
const SEND_TICK_MS = 2000
const slowSinks = new Set<UwsResponse>()
let sendTicker: NodeJS.Timeout | null = null

function watchSlow(sink: UwsResponse): void {
  slowSinks.add(sink)
  if (sendTicker !== null) return
  sendTicker = setInterval(tickSlow, SEND_TICK_MS)
  sendTicker.unref()
}

function tickSlow(): void {
  const nowMs = Date.now()
  for (const sink of slowSinks) if (!sink.tick(nowMs)) slowSinks.delete(sink)
  if (slowSinks.size === 0 && sendTicker !== null) {
    clearInterval(sendTicker)
    sendTicker = null
  }
}

/** ResponseSink over a uWS HttpResponse. Owned by one request, driven by one handler. */
class UwsResponse implements ResponseSink {
  #res: uWS.HttpResponse
  #isHead: boolean
  #isAborted = false
  #isEnded = false
  #abortCallbacks: (() => void)[] | null = null
  #status = 200
  #headers: HeaderMap | null = null
  #total: number | undefined = undefined
  #isHeadSent = false
  /** end() was called with a whole body the socket has not fully taken yet. */
  #isEnding = false
  #isWritableHooked = false
  /** uWS reported the response complete (end(), or a tryEnd that sent the last byte). */
  #isResponded = false
  #isAbortArmed = false
  // Backpressure (owned by the writer that is waiting): the chunk not yet fully accepted.
  #pending: { chunk: Uint8Array; baseOffset: number; resolve: () => void } | null = null
  #tracker: InFlightTracker | null
  #owner: InFlightTracker
  /** The request body of a POST/PUT/PATCH/DELETE; released before the uWS response ends. */
  #body: RequestBody | null = null
  // Send progress while under backpressure (see slowSinks): write offset and when it last moved.
  #isWatched = false
  #progressOffset = 0
  #progressMs = 0
  /** The last slice of a chunked body was left in uWS's buffer (see #writeSlices). */
  #isSliceRefused = false
  /** CORS for a list of origins: this request's block (chosen by its Origin), written after the head. */
  #corsBlock: RenderedHead | null = null

  constructor(res: uWS.HttpResponse, isHead: boolean, tracker: InFlightTracker) {
    this.#res = res
    this.#isHead = isHead
    this.#tracker = tracker
    this.#owner = tracker
  }

  /** The request's CORS block, chosen by its Origin (servers with a list of origins only). */
  setCors(block: RenderedHead | undefined): void {
    if (block !== undefined) this.#corsBlock = block
  }

  attachBody(body: RequestBody): void {
    this.#body = body
  }

  /**
   * The uWS response is about to end (or be closed) while still valid: the body stops touching
   * it and discards what nobody read (a 403 to a 4 MiB POST must not pause an ended response).
   */
  #releaseBody(): void {
    const body = this.#body
    if (body === null) return
    this.#body = null
    body.release()
  }

  /**
   * Register onAborted unless the response already ended. The adapter calls this before the uWS
   * handler returns (uWS requires it then for any response still open), not in the constructor:
   * a hot hit ends inside the handler and so costs no closure and no native call for it. Nothing
   * can abort a response while the handler runs synchronously (abort comes from the event loop;
   * our own abort() marks the sink before it closes the socket).
   */
  armAbort(): void {
    if (this.#isResponded || this.#isAborted) return
    this.#armAbortNow()
  }

  #armAbortNow(): void {
    if (this.#isAbortArmed) return
    this.#isAbortArmed = true
    this.#res.onAborted(() => {
      try {
        this.#onAborted()
      } catch (err) {
        this.#owner.failed(err)
      }
    })
  }

  #onAborted(): void {
    this.#isAborted = true
    const body = this.#body
    this.#body = null
    body?.abort()
    const pending = this.#pending
    this.#pending = null
    pending?.resolve()
    const callbacks = this.#abortCallbacks
    this.#abortCallbacks = null
    if (callbacks !== null) for (const cb of callbacks) cb()
    this.#settle()
  }

  get isAborted(): boolean {
    return this.#isAborted
  }

  get isDone(): boolean {
    return this.#isAborted || this.#isEnded || this.#isEnding
  }

  onAbort(cb: () => void): void {
    if (this.#isAborted) cb()
    else (this.#abortCallbacks ??= []).push(cb)
  }

  start(status: number, headers: HeaderMap, contentLength?: number): void {
    this.#status = status
    this.#headers = headers
    this.#total = contentLength
    // Inside the handler the head waits for the first write()/end(), so a hot hit is one packet.
    // Outside it (a fill's waiters, woken when upstream headers arrive) the head goes out at the
    // end of this microtask checkpoint unless a write()/end() took it first: every waiter of a
    // coalesced fill then has its headers before any waiter's first body chunk is copied, instead
    // of the last one's head queuing behind 99 chunk writes; a start() followed synchronously by
    // end() (errors, small disk hits) still leaves in one packet.
    if (!isInHandler && !this.#isHead && contentLength !== undefined && contentLength > 0) {
      queueMicrotask(this.#flushHead)
    }
  }

  /** Send status, headers, Content-Length and the blank line, no body bytes yet (see start()). */
  readonly #flushHead = (): void => {
    const total = this.#total
    if (this.#isHeadSent || this.isDone || total === undefined) return
    try {
      this.#res.cork(() => {
        this.#writeHead()
        // A zero-length tryEnd with the total writes Content-Length and ends the header block
        // without ending the response; later tryEnd calls continue the body at offset 0.
        this.#res.tryEnd(EMPTY, total)
      })
    } catch (err) {
      // A microtask outside any uWS callback: a throw here would be an uncaught exception.
      this.#fail(err)
    }
  }

  /** Client address, read from the live response (uWS: only valid until it ends or aborts). */
  peerAddress(): string {
    if (this.isDone) return ''
    return peerOf(this.#res)
  }

  #writeHead(): void {
    this.#isHeadSent = true
    const res = this.#res
    // uWS answers 200 OK when no status is written.
    if (this.#status !== 200) res.writeStatus(statusLine(this.#status))
    const owner = this.#owner
    const headers = this.#headers
    let head: RenderedHead | null | undefined = null
    if (headers !== null) {
      head = owner.heads.get(headers)
      if (head === undefined) {
        head = renderHead(headers, owner.skipped, owner.corsAny)
        owner.heads.set(headers, head)
      }
    }
    if (head !== null) {
      res.writeHeader(head.firstName, head.rest)
    } else {
      if (headers !== null) {
        for (const name in headers) {
          if (owner.skipped.has(name)) continue
          const value = headers[name]
          if (value !== undefined) res.writeHeader(name, value)
        }
      }
      // A rendered head carries the `*` block; this path adds it itself.
      const any = owner.corsAny !== '' ? owner.cors?.rendered.get(owner.corsAny) : undefined
      if (any !== undefined) res.writeHeader(any.firstName, any.rest)
    }
    const cors = this.#corsBlock
    if (cors !== null) res.writeHeader(cors.firstName, cors.rest)
  }

  #hookWritable(): void {
    if (this.#isWritableHooked) return
    this.#isWritableHooked = true
    this.#res.onWritable((offset) => {
      try {
        return this.#drain(offset)
      } catch (err) {
        this.#fail(err)
        return true
      }
    })
  }

  /**
   * A uWS call threw (the response was no longer valid): report it, treat the response as gone
   * and never touch it again. Writers waiting on backpressure are released.
   */
  #fail(err: unknown): void {
    this.#owner.failed(err)
    this.#onAborted()
  }

  /** A write is waiting on the socket: watch its progress (see slowSinks). */
  #watch(): void {
    if (this.#isWatched) return
    this.#isWatched = true
    this.#progressOffset = this.#res.getWriteOffset()
    this.#progressMs = Date.now()
    watchSlow(this)
  }

  /** From the send ticker: offer the socket the pending bytes, or cut a client that took none. */
  tick(nowMs: number): boolean {
    if (this.#pending === null || this.#isResponded || this.#isAborted) {
      this.#isWatched = false
      return false
    }
    try {
      const res = this.#res
      if (this.#total === undefined) return this.#tickChunked(nowMs)
      const offset = res.getWriteOffset()
      if (offset > this.#progressOffset) {
        this.#progressOffset = offset
        this.#progressMs = nowMs
      } else if (nowMs - this.#progressMs >= this.#owner.sendTimeoutMs) {
        // The client stopped reading: cut it (it sees a truncated body, never a clean end).
        this.#isWatched = false
        res.close()
        this.#onAborted()
        return false
      }
      res.cork(() => this.#drain(offset))
    } catch (err) {
      this.#isWatched = false
      this.#fail(err)
      return false
    }
    return true
  }

  /**
   * The ticker for a chunked body, whose bytes in uWS's buffer no offset shows: a small slice is
   * offered. Taken whole, the client is reading (progress, and the rest follows); refused, it
   * waits in uWS's buffer and re-arms uWS's timer. With nothing held back, the writer is let go
   * so its next chunk's first slice does that. No writable event and no slice taken for
   * sendTimeoutS: the client stopped reading, it is cut.
   */
  #tickChunked(nowMs: number): boolean {
    const res = this.#res
    const pending = this.#pending
    if (pending === null) return false
    if (nowMs - this.#progressMs >= this.#owner.sendTimeoutMs) {
      this.#isWatched = false
      res.close()
      this.#onAborted()
      return false
    }
    if (pending.chunk.byteLength === 0) {
      this.#pending = null
      pending.resolve()
      return true
    }
    res.cork(() => {
      const sent = this.#writeSlices(pending.chunk, 1, CHUNK_PROBE_BYTES)
      pending.chunk = pending.chunk.subarray(sent)
      if (!this.#isSliceRefused) this.#drain(0)
    })
    return true
  }

  /**
   * Hand uWS slices of a chunked body until one is not sent whole (it stays in uWS's buffer and
   * #isSliceRefused says so) or maxSlices went out; returns the bytes handed over.
   */
  #writeSlices(chunk: Uint8Array, maxSlices = Infinity, sliceBytes = CHUNK_SLICE_BYTES): number {
    const res = this.#res
    let offset = 0
    let slices = 0
    this.#isSliceRefused = false
    while (offset < chunk.byteLength && slices < maxSlices) {
      const end = Math.min(offset + sliceBytes, chunk.byteLength)
      const isOk = res.write(end - offset === chunk.byteLength ? chunk : chunk.subarray(offset, end))
      offset = end
      slices++
      if (!isOk) {
        this.#isSliceRefused = true
        break
      }
    }
    return offset
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.isDone || chunk.byteLength === 0) return RESOLVED
    const res = this.#res
    let isOk = false
    let isResponded = false
    let sentBytes = 0
    const baseOffset = res.getWriteOffset()
    // The last body byte ends the uWS response: the request body lets go of it first.
    if (this.#body !== null && this.#total !== undefined && baseOffset + chunk.byteLength >= this.#total) {
      this.#releaseBody()
    }
    const send = (): void => {
      if (!this.#isHeadSent) this.#writeHead()
      if (this.#isHead) return
      if (this.#total !== undefined) {
        ;[isOk, isResponded] = res.tryEnd(chunk, this.#total)
      } else {
        sentBytes = this.#writeSlices(chunk)
        isOk = !this.#isSliceRefused
      }
    }
    if (isInHandler) send()
    else res.cork(send)
    if (this.#isHead) return RESOLVED
    if (isResponded) {
      this.#isResponded = true
      this.#isEnded = true
      this.#settle()
      return RESOLVED
    }
    if (isOk) return RESOLVED
    // uWS calls onWritable only for a handler registered before the socket drains; we are still
    // on the same tick as the failed write, so registering now is in time.
    this.#hookWritable()
    const waiting = new Promise<void>((resolve) => {
      // For tryEnd we resend the unsent tail from onWritable, using the offset to know how much
      // went out; a chunked body keeps the slices not yet handed to uWS (see #writeSlices).
      this.#pending = { chunk: this.#total !== undefined ? chunk : chunk.subarray(sentBytes), baseOffset, resolve }
    })
    this.#watch()
    return waiting
  }

  #drain(offset: number): boolean {
    const pending = this.#pending
    if (pending === null) return true
    if (this.#total === undefined) {
      // A chunked body waits in uWS's own buffer, whose draining the write offset does not show:
      // the socket turning writable is the progress the send timeout counts.
      this.#progressMs = Date.now()
      const sent = this.#writeSlices(pending.chunk)
      if (this.#isSliceRefused) {
        pending.chunk = pending.chunk.subarray(sent)
        return false
      }
      this.#pending = null
      pending.resolve()
      return true
    }
    if (pending.chunk.byteLength === 0) {
      this.#pending = null
      pending.resolve()
      return true
    }
    const sent = offset - pending.baseOffset
    const rest = pending.chunk.subarray(sent)
    const [isOk, isResponded] = this.#res.tryEnd(rest, this.#total)
    if (isResponded) {
      this.#isEnded = true
      this.#pending = null
      pending.resolve()
      this.#settle()
      return true
    }
    if (isOk) {
      this.#pending = null
      pending.resolve()
    }
    return isOk
  }

  end(chunk?: Uint8Array): void {
    if (this.isDone) return
    this.#releaseBody()
    let isComplete = false
    if (isInHandler) isComplete = this.#end(chunk)
    else this.#res.cork(() => (isComplete = this.#end(chunk)))
    if (isComplete) {
      this.#isEnded = true
      this.#settle()
    } else {
      // The rest of a whole body goes out from onWritable (#drain), which ends and settles.
      this.#isEnding = true
    }
  }

  /** Write the head and finish; false when part of a whole body is still waiting for the socket. */
  #end(chunk: Uint8Array | undefined): boolean {
    const res = this.#res
    if (!this.#isHeadSent) this.#writeHead()
    if (this.#isHead) {
      // uWS keeps a HEAD answered with a Content-Length pending (no body bytes reach the total)
      // yet refuses any call on it afterwards: its abort handler must be in place first.
      if (this.#total !== undefined && this.#total > 0) this.#armAbortNow()
      res.endWithoutBody(this.#total)
    } else if (this.#total !== undefined && chunk === undefined) {
      // All bytes went out through tryEnd already; a zero-length tryEnd would not end it.
      if (res.getWriteOffset() >= this.#total) res.endWithoutBody(this.#total)
      else res.close()
    } else if (this.#status === 304 || this.#status === 204) {
      // RFC 9110 §15.4.5 / §15.3.5: no body, and Content-Length is not asserted.
      res.endWithoutBody()
    } else if (chunk !== undefined && chunk.byteLength > SMALL_BODY_BYTES && chunk.byteLength === this.#total) {
      // The whole body at once (memory hits). end() would copy whatever the socket does not take
      // now into uWS's own buffer (up to the whole object, per connection); tryEnd sends what fits
      // and we resend the tail from onWritable, straight from the caller's buffer (cache memory,
      // never mutated), so a hot 2 MB object costs no copy and no extra memory per connection.
      const [, isResponded] = res.tryEnd(chunk, this.#total)
      this.#isResponded = isResponded
      if (!isResponded) {
        this.#pending = { chunk, baseOffset: 0, resolve: noop }
        this.#hookWritable()
        this.#watch()
        return false
      }
    } else {
      res.end(chunk ?? EMPTY)
    }
    // Every other branch ended (or closed) the uWS response: it must not be touched again.
    this.#isResponded = true
    return true
  }

  abort(): void {
    if (this.isDone) return
    this.#releaseBody()
    this.#isAborted = true
    try {
      this.#res.close()
    } catch (err) {
      this.#owner.failed(err)
    }
    this.#settle()
  }

  #settle(): void {
    const tracker = this.#tracker
    this.#tracker = null
    tracker?.settled()
  }
}

/**
 * The request as handlers see it. Method, path and query are copied from uWS synchronously; the
 * headers are read from the live uWS request while its handler runs and copied only when needed:
 * on the first use of `headers`, or as the handler returns with the response still open (a handler
 * that went async may read them later). A hot hit reads three headers with header() and copies
 * none. The peer address is read on first use (most requests never ask), from the live response.
 */
class UwsRequest implements IncomingRequest {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly body: AsyncIterable<Uint8Array>
  #sink: UwsResponse
  /** Valid only while the uWS handler runs (uWS reuses it afterwards); null after release(). */
  #uws: uWS.HttpRequest | null
  #headers: HeaderMap | null = null
  #remoteAddress: string | null

  constructor(
    method: string,
    path: string,
    query: string,
    uws: uWS.HttpRequest,
    body: AsyncIterable<Uint8Array>,
    sink: UwsResponse,
    remoteAddress: string | null,
  ) {
    this.method = method
    this.path = path
    this.query = query
    this.#uws = uws
    this.body = body
    this.#sink = sink
    this.#remoteAddress = remoteAddress
  }

  get headers(): HeaderMap {
    return this.#headers ?? this.#copyHeaders()
  }

  #copyHeaders(): HeaderMap {
    const headers: HeaderMap = {}
    if (this.#uws !== null) {
      copyTarget = headers
      this.#uws.forEach(copyHeader)
    }
    this.#headers = headers
    return headers
  }

  header(name: string): string | undefined {
    // uWS answers '' for a header that is absent; an empty one reads the same from the copy.
    const value = this.#headers !== null ? this.#headers[name] : this.#uws?.getHeader(name)
    return value === '' ? undefined : value
  }

  headerLines(name: string): string | undefined {
    if (this.#uws === null) return this.header(name)
    linesName = name
    linesValue = undefined
    this.#uws.forEach(collectLine)
    const value = linesValue
    linesValue = undefined
    return value === '' ? undefined : value
  }

  /** The uWS handler is returning: keep a copy of the headers if the request outlives it. */
  release(isOutliving: boolean): void {
    if (isOutliving && this.#headers === null) this.#copyHeaders()
    this.#uws = null
  }

  /**
   * Read lazily: uWS turns the peer address into text only when asked. Valid while the response
   * is alive (read it synchronously in the handler, as the edge's token gate does); asked for the
   * first time after the response ended or aborted it is ''.
   */
  get remoteAddress(): string {
    this.#remoteAddress ??= this.#sink.peerAddress()
    return this.#remoteAddress
  }

  readBody(maxBytes: number): Promise<Buffer | null> {
    return collect(this.body, this.header('content-length'), maxBytes)
  }
}

/** The body of a GET/HEAD: nothing, shared by every such request. */
const EMPTY_BODY: AsyncIterable<Uint8Array> = {
  [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
}

// Target of req.forEach while one request's headers are copied (synchronous, so one slot suffices).
let copyTarget: HeaderMap = {}
function copyHeader(name: string, value: string): void {
  copyTarget[name] = value
}

// Target of req.forEach while one header's field lines are joined (synchronous, like copyTarget).
let linesName = ''
let linesValue: string | undefined
function collectLine(name: string, value: string): void {
  if (name === linesName) linesValue = linesValue === undefined ? value : `${linesValue}, ${value}`
}

function noop(): void {}

/**
 * The socket peer of a live uWS response. Formatted from its bytes: uWS's own text is the full
 * 8-group IPv6 form, and an IPv4 peer of a dual-stack listener comes as ::ffff:7f00:1 (mapped).
 */
function peerOf(res: uWS.HttpResponse): string {
  return addressText(new Uint8Array(res.getRemoteAddress()))
}

/** HTTP/1.1 server on uWebSockets.js with in-flight tracking for graceful drain. */
export class HttpServer {
  /** The plain-HTTP app; null when HTTPS took its place. */
  #app: uWS.TemplatedApp | null
  #tls: TlsListener | null = null
  #host: string
  #port: number
  #isPortShared: boolean
  #listenSocket: uWS.us_listen_socket | null = null
  #inFlight = 0
  #drainWaiters: (() => void)[] = []
  #handler: Handler
  #onHandlerError: (err: unknown) => void
  // One tracker for every sink of this server (not a closure per request).
  #tracker: InFlightTracker
  #cors: CorsHeads | null

  constructor(opts: HttpServerOptions) {
    if (typeof opts.host !== 'string' || opts.host === '') throw new TypeError('opts.host must be a host')
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new TypeError('opts.port must be an integer 0..65535')
    }
    if (typeof opts.handler !== 'function') throw new TypeError('opts.handler must be a function')
    const sendTimeoutS = opts.sendTimeoutS ?? DEFAULT_SEND_TIMEOUT_S
    if (typeof sendTimeoutS !== 'number' || !(sendTimeoutS > 0)) {
      throw new TypeError('opts.sendTimeoutS must be a positive number of seconds')
    }
    const corsBlocks = renderCors(opts.cors)
    const cors = corsBlocks === null ? null : renderCorsHeads(corsBlocks)
    this.#cors = cors
    this.#tracker = {
      sendTimeoutMs: sendTimeoutS * 1000,
      heads: new WeakMap(),
      skipped: cors === null ? OWN_HEADERS : new Set([...OWN_HEADERS, ...CORS_FIELDS]),
      corsAny: corsBlocks?.any ?? '',
      cors,
      settled: () => this.#settled(),
      failed: (err) => this.#onHandlerError(err),
    }
    this.#host = opts.host
    this.#port = opts.port
    this.#isPortShared = opts.isPortShared === true
    this.#handler = opts.handler
    this.#onHandlerError = opts.onHandlerError ?? noop
    const route = (res: uWS.HttpResponse, req: uWS.HttpRequest, client: string | null = null): void => {
      isInHandler = true
      try {
        this.#onRequest(res, req, client)
      } catch (err) {
        // An exception thrown back into uWS ends the process: report it and drop the connection.
        this.#onHandlerError(err)
        try {
          res.close()
        } catch {
          // Already ended or closed: nothing left to drop.
        }
      } finally {
        isInHandler = false
      }
    }
    if (opts.tls !== undefined) {
      this.#tls = new TlsListener({
        tls: opts.tls,
        host: opts.host,
        port: opts.port,
        route,
        log: opts.log,
        isPortShared: opts.isPortShared === true,
      })
    }
    let plainRoute: (res: uWS.HttpResponse, req: uWS.HttpRequest) => void = route
    if (opts.proxyProtocol !== undefined || opts.proxyFrontEnd !== undefined) {
      // Without proxyProtocol every request pays for the peer's and the header's address (the
      // front end's connections are told apart by their peer): see proxy-v1.ts.
      const peers = new ProxyPeers(opts.proxyProtocol ?? null, opts.proxyFrontEnd ?? '')
      // uWS has parsed any PROXY header before this request's head (and again before each later
      // request of the connection), so the decision is per request, before anything reads it.
      plainRoute = (res, req) => {
        let client: string | null = null
        try {
          client = peers.clientOf(peerOf(res), addressText(new Uint8Array(res.getProxiedRemoteAddress())))
        } catch (err) {
          // An exception thrown back into uWS ends the process: report it and drop the connection.
          this.#onHandlerError(err)
        }
        if (client === null) {
          res.close()
          return
        }
        route(res, req, client)
      }
    }
    this.#app = this.#tls !== null && opts.tls?.listen === undefined ? null : uWS.App().any('/*', plainRoute)
  }

  #onRequest(res: uWS.HttpResponse, req: uWS.HttpRequest, client: string | null): void {
    // Copy what every request needs synchronously: req is invalid once this function returns.
    const sent = req.getCaseSensitiveMethod()
    const method = sent === 'GET' || sent === 'HEAD' ? sent : sent.toUpperCase()
    const path = req.getUrl()
    const query = req.getQuery() ?? ''
    if (isFramingInvalid(req, method !== 'GET' && method !== 'HEAD')) {
      // RFC 9112 §6.3 asks for a 400 and then a close. In this uWS build the close must happen
      // now: a response ended here sits in uWS's cork buffer while its parser goes on to execute
      // the bytes behind this request (even with end(body, closeConnection)), and close()
      // discards that buffer. So the connection closes without an answer, as uWS does itself
      // for a Content-Length that is not a number.
      res.close()
      return
    }
    const cors = this.#cors
    if (cors !== null && method === 'OPTIONS' && this.#answerPreflight(res, req, cors)) return
    this.#inFlight++
    const sink = new UwsResponse(res, method === 'HEAD', this.#tracker)
    // A list of origins: the block depends on this request's Origin (read now, while req is valid).
    if (cors !== null && cors.blocks.any === null) {
      sink.setCors(cors.rendered.get(corsBlockFor(cors.blocks, req.getHeader('origin'))))
    }
    let body = EMPTY_BODY
    if (method !== 'GET' && method !== 'HEAD') {
      const stream = new RequestBody(res, this.#tracker)
      sink.attachBody(stream)
      body = stream
    }
    const request = new UwsRequest(method, path, query, req, body, sink, client)
    let result: void | Promise<void>
    try {
      result = this.#handler(request, sink)
    } catch (err) {
      request.release(false)
      this.#onHandlerError(err)
      sink.abort()
      return
    }
    request.release(result !== undefined || !sink.isDone)
    sink.armAbort()
    if (result !== undefined) {
      result.catch((err: unknown) => {
        this.#onHandlerError(err)
        sink.abort()
      })
    }
  }
  /**
   * A CORS preflight (an OPTIONS request with Origin and Access-Control-Request-Method, Fetch
   * §3.2.2) is answered here, before any handler: 204 with the methods, request headers and
   * max-age this server allows. Another OPTIONS goes to the handler like any method.
   */
  #answerPreflight(res: uWS.HttpResponse, req: uWS.HttpRequest, cors: CorsHeads): boolean {
    const origin = req.getHeader('origin')
    if (origin === '' || req.getHeader('access-control-request-method') === '') return false
    const block = cors.rendered.get(corsBlockFor(cors.blocks, origin))
    res.writeStatus(statusLine(204))
    if (block !== undefined) res.writeHeader(block.firstName, block.rest)
    res.writeHeader(cors.preflight.firstName, cors.preflight.rest)
    res.endWithoutBody()
    return true
  }

  /**
   * Start listening; resolves with the bound port (useful with port 0). The port is exclusive
   * (no SO_REUSEPORT, see listen.ts): a port another process holds rejects with ERR_LISTEN_IN_USE
   * instead of sharing its connections. Note: uSockets sets SO_REUSEADDR only for a non-zero port,
   * so a tier that must come back on the same port after a crash needs an explicit port in its
   * config (port 0 is for tests and the demo).
   */
  async listen(): Promise<number> {
    const tlsPort = this.#tls !== null ? await this.#tls.listen() : 0
    return this.#app === null ? tlsPort : this.#listenPlain(this.#app)
  }

  /** The HTTPS port (the same as listen()'s when HTTPS took the plain listener's place); 0 without TLS. */
  get tlsPort(): number {
    return this.#tls?.port ?? 0
  }

  /**
   * Re-read the certificate files (SIGHUP): new connections get the new certificates, open ones go
   * on. A bad file keeps the old ones in service (logged). False when not reloaded.
   */
  reloadTls(reason = 'reload'): Promise<boolean> {
    return this.#tls === null ? Promise.resolve(false) : this.#tls.reload(reason)
  }

  #listenPlain(plain: uWS.TemplatedApp): Promise<number> {
    return new Promise((resolve, reject) => {
      // listen(host, port, options, cb) exists in this build but is missing from its typings.
      const app = plain as unknown as {
        listen(host: string, port: number, options: number, cb: (socket: uWS.us_listen_socket | false) => void): void
      }
      // 0: uSockets' default options, SO_REUSEPORT on (a non-zero port only).
      app.listen(this.#host, this.#port, this.#isPortShared ? 0 : LISTEN_EXCLUSIVE_PORT, (socket) => {
        if (socket === false) {
          listenError(this.#host, this.#port).then(reject, reject)
          return
        }
        this.#listenSocket = socket
        resolve(uWS.us_socket_local_port(socket))
      })
    })
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /** Stop accepting connections, wait (up to timeoutMs) for in-flight responses, then close all. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#listenSocket !== null) {
      uWS.us_listen_socket_close(this.#listenSocket)
      this.#listenSocket = null
    }
    this.#tls?.stopListening()
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        this.#drainWaiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    // close() exists at run time in this uWS build but is missing from its typings.
    if (this.#app !== null) (this.#app as uWS.TemplatedApp & { close(): void }).close()
    this.#tls?.close()
  }

  /** A response ended or aborted (called once per request by its sink). */
  #settled(): void {
    this.#inFlight--
    if (this.#inFlight === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters
      this.#drainWaiters = []
      for (const w of waiters) w()
    }
  }
}

const BODY_HIGH_WATER_BYTES = 1024 * 1024
const BODY_LOW_WATER_BYTES = 256 * 1024

/**
 * A request body as an async iterable with backpressure: uWS delivers data only to a handler
 * registered synchronously, so we always subscribe and queue; past 1 MiB queued the socket is
 * paused until the consumer drains below 256 KiB. A client that goes away makes iteration throw.
 * Owned by one request; the consumer is the handler.
 *
 * uWS keeps calling onData after the response has ended (a 403 to a POST whose body is still
 * arriving), and any call on an ended response throws from inside the uWS callback, which ends
 * the process. So the sink releases the body just before the response ends: a paused socket is
 * resumed while that is still allowed, and from then on the rest of the body is read and
 * discarded (uWS parses it off the connection, which stays usable for the next request), never
 * queued and never paused. An iterator still running then throws.
 */
class RequestBody implements AsyncIterable<Uint8Array> {
  /** The live uWS response; null once released or aborted (never touched again). */
  #res: uWS.HttpResponse | null
  #owner: InFlightTracker
  #chunks: Buffer[] = []
  #queuedBytes = 0
  #isDone = false
  #isPaused = false
  #error: Error | null = null
  #wake: (() => void) | null = null

  constructor(res: uWS.HttpResponse, owner: InFlightTracker) {
    this.#res = res
    this.#owner = owner
    res.onData((ab, isLast) => {
      try {
        this.#onData(ab, isLast)
      } catch (err) {
        owner.failed(err)
      }
    })
  }

  #onData(ab: ArrayBuffer, isLast: boolean): void {
    if (isLast) this.#isDone = true
    const res = this.#res
    // Released or aborted: nobody reads the rest, drop it.
    if (res === null) return
    if (ab.byteLength > 0) {
      // uWS neuters the ArrayBuffer when this callback returns: copy it.
      const chunk = Buffer.from(ab.slice(0))
      this.#chunks.push(chunk)
      this.#queuedBytes += chunk.byteLength
    }
    if (!this.#isDone && !this.#isPaused && this.#queuedBytes > BODY_HIGH_WATER_BYTES) {
      this.#isPaused = true
      res.pause()
    }
    this.#notify()
  }

  /** The response is about to end (its uWS response still valid): discard the unread rest. */
  release(): void {
    const res = this.#res
    if (res === null) return
    this.#res = null
    if (this.#isPaused) {
      this.#isPaused = false
      try {
        res.resume()
      } catch (err) {
        this.#owner.failed(err)
      }
    }
    // A body that has fully arrived stays readable; one still arriving is cut here.
    if (!this.#isDone) {
      this.#chunks = []
      this.#queuedBytes = 0
      this.#error = new Error('the response ended before the request body was read')
    }
    this.#notify()
  }

  /** The client went away: readers stop with an error, and the socket is never touched again. */
  abort(): void {
    this.#res = null
    if (this.#isDone) return
    this.#error = new Error('client closed the connection during the request body')
    this.#notify()
  }

  #notify(): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = this.#chunks.shift()
      if (chunk !== undefined) {
        this.#queuedBytes -= chunk.byteLength
        const res = this.#res
        if (this.#isPaused && res !== null && this.#queuedBytes < BODY_LOW_WATER_BYTES) {
          this.#isPaused = false
          res.resume()
        }
        yield chunk
        continue
      }
      if (this.#error !== null) throw this.#error
      if (this.#isDone) return
      await new Promise<void>((resolve) => (this.#wake = resolve))
    }
  }
}

/** Collect a body up to maxBytes; null when it is larger (the rest is drained, not kept). */
async function collect(
  body: AsyncIterable<Uint8Array>,
  declared: string | undefined,
  maxBytes: number,
): Promise<Buffer | null> {
  if (declared !== undefined && Number(declared) > maxBytes) return null
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.byteLength
    if (size <= maxBytes) chunks.push(chunk)
  }
  return size > maxBytes ? null : Buffer.concat(chunks, size)
}
