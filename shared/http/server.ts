// The one home of uWebSockets.js (STYLE.md "One home per third-party package"). Every uWS rule lives
// here and nowhere else:
// - onAborted is registered synchronously, before the handler can await anything;
// - every write that may happen after an await is wrapped in cork();
// - request fields are copied synchronously (uWS invalidates HttpRequest when the handler returns);
// - bodies stream with tryEnd + onWritable (known length) or write + onWritable (chunked), which is
//   the backpressure contract of ResponseSink.write();
// - a response is never touched after it was aborted or ended.
import { STATUS_CODES } from 'node:http'
import uWS from 'uWebSockets.js'
import type { HeaderMap, ResponseSink, ServerRequest } from './types.js'

export interface IncomingRequest extends ServerRequest {
  /** Collect the request body (up to maxBytes; over that resolves null). Empty for GET/HEAD. */
  readBody(maxBytes: number): Promise<Buffer | null>
}

export type Handler = (req: IncomingRequest, res: ResponseSink) => void | Promise<void>

export interface HttpServerOptions {
  host: string
  port: number
  handler: Handler
  /** Called when a handler throws or rejects after it has started a response: the adapter aborts. */
  onHandlerError?: (err: unknown) => void
}

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

const EMPTY = new Uint8Array(0)
const RESOLVED = Promise.resolve()

/** ResponseSink over a uWS HttpResponse. Owned by one request, driven by one handler. */
class UwsResponse implements ResponseSink {
  #res: uWS.HttpResponse
  #isHead: boolean
  #isAborted = false
  #isEnded = false
  #abortCallbacks: (() => void)[] = []
  #status = 200
  #headers: HeaderMap | null = null
  #total: number | undefined = undefined
  #isHeadSent = false
  // Backpressure (owned by the writer that is waiting): the chunk not yet fully accepted.
  #pending: { chunk: Uint8Array; baseOffset: number; resolve: () => void } | null = null
  #onSettled: () => void

  constructor(res: uWS.HttpResponse, isHead: boolean, onSettled: () => void) {
    this.#res = res
    this.#isHead = isHead
    this.#onSettled = onSettled
    res.onAborted(() => {
      this.#isAborted = true
      const pending = this.#pending
      this.#pending = null
      pending?.resolve()
      for (const cb of this.#abortCallbacks) cb()
      this.#abortCallbacks = []
      this.#settle()
    })
    res.onWritable((offset) => this.#drain(offset))
  }

  get isAborted(): boolean {
    return this.#isAborted
  }

  get isDone(): boolean {
    return this.#isAborted || this.#isEnded
  }

  onAbort(cb: () => void): void {
    if (this.#isAborted) cb()
    else this.#abortCallbacks.push(cb)
  }

  start(status: number, headers: HeaderMap, contentLength?: number): void {
    this.#status = status
    this.#headers = headers
    this.#total = contentLength
  }

  #writeHead(): void {
    this.#isHeadSent = true
    const res = this.#res
    res.writeStatus(statusLine(this.#status))
    const headers = this.#headers
    if (headers !== null) {
      for (const name in headers) {
        if (OWN_HEADERS.has(name)) continue
        const value = headers[name]
        if (value !== undefined) res.writeHeader(name, value)
      }
    }
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.isDone || chunk.byteLength === 0) return RESOLVED
    const res = this.#res
    let isOk = false
    let isResponded = false
    const baseOffset = res.getWriteOffset()
    res.cork(() => {
      if (!this.#isHeadSent) this.#writeHead()
      if (this.#isHead) return
      if (this.#total !== undefined) {
        ;[isOk, isResponded] = res.tryEnd(chunk, this.#total)
      } else {
        isOk = res.write(chunk)
      }
    })
    if (this.#isHead) return RESOLVED
    if (isResponded) {
      this.#isEnded = true
      this.#settle()
      return RESOLVED
    }
    if (isOk) return RESOLVED
    return new Promise<void>((resolve) => {
      // tryEnd keeps what it could not send only for chunked write(); for tryEnd we resend the
      // unsent tail from onWritable, using the offset to know how much went out.
      this.#pending = { chunk: this.#total !== undefined ? chunk : EMPTY, baseOffset, resolve }
    })
  }

  #drain(offset: number): boolean {
    const pending = this.#pending
    if (pending === null) return true
    if (this.#total === undefined || pending.chunk.byteLength === 0) {
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
    const res = this.#res
    res.cork(() => {
      if (!this.#isHeadSent) this.#writeHead()
      if (this.#isHead) {
        res.endWithoutBody(this.#total)
      } else if (this.#total !== undefined && chunk === undefined) {
        // All bytes went out through tryEnd already; a zero-length tryEnd would not end it.
        if (res.getWriteOffset() >= this.#total) res.endWithoutBody(this.#total)
        else res.close()
      } else if (this.#status === 304 || this.#status === 204) {
        // RFC 9110 §15.4.5 / §15.3.5: no body, and Content-Length is not asserted.
        res.endWithoutBody()
      } else {
        res.end(chunk ?? EMPTY)
      }
    })
    this.#isEnded = true
    this.#settle()
  }

  abort(): void {
    if (this.isDone) return
    this.#isAborted = true
    this.#res.close()
    this.#settle()
  }

  #settle(): void {
    const cb = this.#onSettled
    this.#onSettled = noop
    cb()
  }
}

function noop(): void {}

/** HTTP/1.1 server on uWebSockets.js with in-flight tracking for graceful drain. */
export class HttpServer {
  #app: uWS.TemplatedApp
  #host: string
  #port: number
  #listenSocket: uWS.us_listen_socket | null = null
  #inFlight = 0
  #drainWaiters: (() => void)[] = []

  constructor(opts: HttpServerOptions) {
    if (typeof opts.host !== 'string' || opts.host === '') throw new TypeError('opts.host must be a host')
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new TypeError('opts.port must be an integer 0..65535')
    }
    if (typeof opts.handler !== 'function') throw new TypeError('opts.handler must be a function')
    this.#host = opts.host
    this.#port = opts.port
    const handler = opts.handler
    const onHandlerError = opts.onHandlerError ?? noop
    this.#app = uWS.App().any('/*', (res, req) => {
      // Copy everything synchronously: req is invalid once this function returns.
      const method = req.getCaseSensitiveMethod().toUpperCase()
      const path = req.getUrl()
      const query = req.getQuery() ?? ''
      const headers: HeaderMap = {}
      req.forEach((k, v) => {
        headers[k] = v
      })
      this.#inFlight++
      const sink = new UwsResponse(res, method === 'HEAD', () => this.#settled())
      const request: IncomingRequest = {
        method,
        path,
        query,
        headers,
        remoteAddress: remoteAddress(res),
        readBody: bodyReader(res, method, headers),
      }
      let result: void | Promise<void>
      try {
        result = handler(request, sink)
      } catch (err) {
        onHandlerError(err)
        sink.abort()
        return
      }
      if (result !== undefined) {
        result.catch((err: unknown) => {
          onHandlerError(err)
          sink.abort()
        })
      }
    })
  }

  /**
   * Start listening; resolves with the bound port (useful with port 0). Note: uSockets sets
   * SO_REUSEADDR only for a non-zero port, so a tier that must come back on the same port after a
   * crash needs an explicit port in its config (port 0 is for tests and the demo).
   */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#app.listen(this.#host, this.#port, (socket) => {
        if (socket === false) {
          reject(new Error(`cannot listen on ${this.#host}:${this.#port}`))
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
    ;(this.#app as uWS.TemplatedApp & { close(): void }).close()
  }

  #settled(): void {
    this.#inFlight--
    if (this.#inFlight === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters
      this.#drainWaiters = []
      for (const w of waiters) w()
    }
  }
}

function remoteAddress(res: uWS.HttpResponse): string {
  const text = Buffer.from(res.getRemoteAddressAsText()).toString('latin1')
  // uWS reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; tokens bind the plain form.
  return text.startsWith('::ffff:') && text.includes('.') ? text.slice(7) : text
}

/**
 * Bodies must be subscribed to synchronously (uWS drops data that arrives before onData); we
 * buffer them until the handler asks, bounded by the handler's maxBytes.
 */
function bodyReader(res: uWS.HttpResponse, method: string, headers: HeaderMap): IncomingRequest['readBody'] {
  if (method === 'GET' || method === 'HEAD') return () => Promise.resolve(Buffer.alloc(0))
  const chunks: Buffer[] = []
  let size = 0
  let isDone = false
  let isTooLarge = false
  let limit = Number(headers['content-length'] ?? Infinity)
  let waiter: ((b: Buffer | null) => void) | null = null
  const finish = (): void => {
    if (waiter === null || !isDone) return
    waiter(isTooLarge ? null : Buffer.concat(chunks, size))
    waiter = null
  }
  res.onData((ab, isLast) => {
    if (!isTooLarge) {
      size += ab.byteLength
      if (size > limit) isTooLarge = true
      else chunks.push(Buffer.from(ab.slice(0)))
    }
    if (isLast) {
      isDone = true
      finish()
    }
  })
  return (maxBytes) =>
    new Promise((resolve) => {
      limit = Math.min(limit, maxBytes)
      if (size > limit) isTooLarge = true
      waiter = resolve
      finish()
    })
}
