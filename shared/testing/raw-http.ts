// A raw HTTP/1.1 client for tests of how a server treats hostile or slow clients: it writes bytes
// as given (pipelined requests, bodies the server never asked for), reads whole responses by
// Content-Length in order, and can read at a bounded rate or stop reading altogether.
import { createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'

export interface RawResponse {
  status: number
  /** Lower-case header names; the last value of a repeated header. */
  headers: Record<string, string>
  /** Empty when the body was counted, not kept (`isBodyKept: false`). */
  body: Buffer
  bodyBytes: number
}

export class RawConnection {
  readonly #sock: Socket
  #chunks: Buffer[] = []
  #buffered = 0
  #isClosed = false
  #error: Error | null = null
  #wake: (() => void) | null = null
  /** Body and head bytes received so far, whether or not a response was parsed from them. */
  receivedBytes = 0
  #rateBytesPerS = 0
  #rateStartMs = 0
  #rateBytes = 0
  #resumeTimer: NodeJS.Timeout | null = null
  #isStopped = false
  readonly closed: Promise<void>

  private constructor(sock: Socket) {
    this.#sock = sock
    this.closed = new Promise((resolve) => sock.once('close', () => resolve()))
    sock.on('data', (d: Buffer) => this.#onData(d))
    sock.on('error', (e) => {
      this.#error = e
      this.#notify()
    })
    sock.on('close', () => {
      this.#isClosed = true
      if (this.#resumeTimer !== null) clearTimeout(this.#resumeTimer)
      this.#notify()
    })
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, host)
      sock.once('connect', () => {
        sock.off('error', reject)
        resolve(new RawConnection(sock))
      })
      sock.once('error', reject)
    })
  }

  get isClosed(): boolean {
    return this.#isClosed
  }

  /** Write bytes; resolves once they are handed to the kernel, or once the socket is gone. */
  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (this.#isClosed || this.#sock.destroyed) {
        resolve()
        return
      }
      this.#sock.write(data, () => resolve())
    })
  }

  /**
   * Read at most bytesPerS on average from now on: the socket is paused whenever it is ahead of
   * that rate, so the kernel's windows fill and the server sees a slow reader.
   */
  throttle(bytesPerS: number): void {
    this.#rateBytesPerS = bytesPerS
    this.#rateStartMs = Date.now()
    this.#rateBytes = 0
    if (bytesPerS === 0 && this.#resumeTimer !== null) {
      clearTimeout(this.#resumeTimer)
      this.#resumeTimer = null
      if (!this.#isStopped && !this.#isClosed) this.#sock.resume()
    }
  }

  /** Resolves once n bytes (heads included) have arrived; one waiter at a time. */
  async received(n: number, timeoutMs: number): Promise<void> {
    const deadlineMs = Date.now() + timeoutMs
    while (this.receivedBytes < n) await this.#waitData(deadlineMs, `${n} bytes (${this.receivedBytes} received)`)
  }

  /** Stop reading for good: the server's writes back up until it gives up. */
  stopReading(): void {
    this.#isStopped = true
    this.#sock.pause()
  }

  #onData(d: Buffer): void {
    this.#chunks.push(d)
    this.#buffered += d.byteLength
    this.receivedBytes += d.byteLength
    if (this.#rateBytesPerS > 0) {
      this.#rateBytes += d.byteLength
      const dueMs = this.#rateStartMs + (this.#rateBytes / this.#rateBytesPerS) * 1000
      const aheadMs = dueMs - Date.now()
      if (aheadMs > 0 && this.#resumeTimer === null) {
        this.#sock.pause()
        // Pacing, not synchronisation: the reader models a client on a slow link.
        this.#resumeTimer = setTimeout(() => {
          this.#resumeTimer = null
          if (!this.#isStopped && !this.#isClosed) this.#sock.resume()
        }, aheadMs)
      }
    }
    this.#notify()
  }

  #notify(): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  /** Merge leading chunks until the first holds at least n bytes (or all there is). */
  #front(n: number): Buffer {
    let first = this.#chunks[0]
    if (first === undefined) return Buffer.alloc(0)
    if (first.byteLength < n && this.#chunks.length > 1) {
      let size = 0
      let k = 0
      while (size < n && k < this.#chunks.length) size += this.#chunks[k++]!.byteLength
      first = Buffer.concat(this.#chunks.slice(0, k), size)
      this.#chunks.splice(0, k, first)
    }
    return first
  }

  #take(n: number): Buffer {
    const first = this.#front(n)
    const out = first.subarray(0, n)
    if (first.byteLength <= n) this.#chunks.shift()
    else this.#chunks[0] = first.subarray(n)
    this.#buffered -= out.byteLength
    return out
  }

  /** The first bytes buffered (enough to find a head or a chunk size line in). */
  #peek(): Buffer {
    return this.#front(64 * 1024)
  }

  async #waitData(deadlineMs: number, what: string): Promise<void> {
    if (this.#error !== null) throw this.#error
    if (this.#isClosed) throw new Error(`connection closed before ${what} (${this.#buffered} bytes pending)`)
    const leftMs = deadlineMs - Date.now()
    if (leftMs <= 0) throw new Error(`no ${what} within the deadline (${this.#buffered} bytes pending)`)
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, leftMs)
      this.#wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  /**
   * The next whole response (Content-Length framed; none for HEAD, 204 and 304 when `isHead`).
   * Rejects, saying how many bytes arrived, if the connection closes first or the deadline passes.
   */
  async response(opts: { timeoutMs: number; isHead?: boolean; isBodyKept?: boolean }): Promise<RawResponse> {
    const deadlineMs = Date.now() + opts.timeoutMs
    let end = -1
    for (;;) {
      end = this.#peek().indexOf('\r\n\r\n')
      if (end >= 0) break
      await this.#waitData(deadlineMs, 'a response head')
    }
    const head = this.#take(end + 4).toString('latin1')
    const lines = head.split('\r\n')
    const status = Number(lines[0]!.split(' ')[1])
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const hasBody = opts.isHead !== true && status !== 204 && status !== 304
    if (hasBody && headers['transfer-encoding'] === 'chunked') return this.#chunked(status, headers, deadlineMs)
    const length = hasBody ? Number(headers['content-length'] ?? 0) : 0
    if (opts.isBodyKept === false) {
      let counted = 0
      for (;;) {
        counted += this.#take(Math.min(this.#buffered, length - counted)).byteLength
        if (counted === length) break
        await this.#waitData(deadlineMs, `the rest of a ${length}-byte body (${counted} received)`)
      }
      return { status, headers, body: Buffer.alloc(0), bodyBytes: length }
    }
    while (this.#buffered < length) {
      await this.#waitData(deadlineMs, `the rest of a ${length}-byte body (${this.#buffered} received)`)
    }
    return { status, headers, body: Buffer.from(this.#take(length)), bodyBytes: length }
  }

  /** A chunked body (RFC 9112 §7.1), always kept; no trailer fields expected. */
  async #chunked(status: number, headers: Record<string, string>, deadlineMs: number): Promise<RawResponse> {
    const parts: Buffer[] = []
    let bodyBytes = 0
    for (;;) {
      let eol = -1
      while ((eol = this.#peek().indexOf('\r\n')) < 0) await this.#waitData(deadlineMs, 'a chunk size line')
      const size = parseInt(this.#take(eol + 2).toString('latin1'), 16)
      if (!(size >= 0)) throw new Error('malformed chunk size line')
      while (this.#buffered < size + 2) await this.#waitData(deadlineMs, `a ${size}-byte chunk (${bodyBytes} so far)`)
      const data = this.#take(size + 2)
      if (size === 0) return { status, headers, body: Buffer.concat(parts, bodyBytes), bodyBytes }
      parts.push(Buffer.from(data.subarray(0, size)))
      bodyBytes += size
    }
  }

  destroy(): void {
    if (this.#resumeTimer !== null) clearTimeout(this.#resumeTimer)
    this.#sock.destroy()
  }
}

/**
 * GET `path`, read it at `bytesPerS` until `slowPhaseS` worth of bytes arrived (longer than uWS's
 * idle timer, so a server that cuts slow readers shows it), then at full speed to the end.
 */
export async function slowGet(
  port: number,
  path: string,
  bytesPerS: number,
  opts: { slowPhaseS: number; deadlineMs: number; isBodyKept?: boolean },
): Promise<{ status: number; hash: string; bytes: number }> {
  const isBodyKept = opts.isBodyKept ?? true
  const conn = await RawConnection.open(port)
  try {
    conn.throttle(bytesPerS)
    await conn.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`)
    await conn.received(bytesPerS * opts.slowPhaseS, opts.deadlineMs)
    conn.throttle(0)
    const r = await conn.response({ timeoutMs: opts.deadlineMs, isBodyKept })
    return {
      status: r.status,
      hash: isBodyKept ? createHash('sha256').update(r.body).digest('hex') : '',
      bytes: r.bodyBytes,
    }
  } finally {
    conn.destroy()
  }
}
