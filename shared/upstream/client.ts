import { Pool, type Dispatcher } from 'undici'
import { Readable } from 'node:stream'
import { VcdnError } from '../errors/index.js'

export interface UpstreamClientOptions {
  /** 'http://host:port' (a path, if any, is prefixed to every request path). */
  baseUrl: string
  /** Keep-alive connections in the pool (default 32). */
  connections?: number
  /** Time to response headers (default 10_000). */
  headersTimeoutMs?: number
  /** Longest idle gap between body chunks (default 30_000). */
  bodyTimeoutMs?: number
  /** TCP connect timeout (default 3_000). */
  connectTimeoutMs?: number
  /** Tier authentication header added to every request (docs/architecture.md §4). */
  secretHeader?: { name: string; value: string }
}

export interface UpstreamRequestInit {
  /** An RFC 9110 §9 method token, e.g. 'GET' or, passed through by a cache, 'POST'/'DELETE'. */
  method: string
  headers?: Record<string, string>
  /** A whole body, or a stream of it (sent as it arrives; chunked unless headers carry Content-Length). */
  body?: string | Uint8Array | AsyncIterable<Uint8Array>
  signal?: AbortSignal
}

export interface UpstreamResponse {
  status: number
  /**
   * Lower-case names. Repeated field lines are combined into one comma-separated value (RFC 9110
   * §5.3), except Set-Cookie, which cannot be combined (§5.3 note): its first line is kept.
   */
  headers: Record<string, string>
  /**
   * Iterate it to the end, or break out of the loop (which destroys the socket), or call
   * `discard()`: otherwise the connection stays checked out until bodyTimeoutMs.
   * Throws ERR_UPSTREAM_BODY mid-way on reset, idle timeout or fewer bytes than Content-Length.
   */
  body: AsyncIterable<Uint8Array>
  /** Release the connection without reading the body (small rests are drained for reuse). */
  discard(): Promise<void>
}

const CLOSE_GRACE_MS = 2_000
// A short rest is cheaper to read than to lose the keep-alive connection over (same idea as
// undici's own dump()).
const DISCARD_DRAIN_BYTES = 128 * 1024

/**
 * A keep-alive pool (undici Pool, HTTP/1.1) to one upstream, with failures mapped to coded errors:
 * before headers ERR_UPSTREAM_CONNECT (refused, reset, DNS, closed pool) or ERR_UPSTREAM_TIMEOUT
 * (connect or headers timeout; 504 like nginx's proxy_connect_timeout/proxy_read_timeout);
 * while iterating the body ERR_UPSTREAM_BODY. `cause` always holds the undici/system error.
 * A request aborted through the caller's signal rejects with the signal's own error, uncoded:
 * it is not the upstream's fault and must not count against its health.
 */
export class UpstreamClient {
  readonly #pool: Pool
  readonly #basePath: string
  readonly #secretHeader: { name: string; value: string } | undefined
  readonly baseUrl: string

  constructor(opts: UpstreamClientOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('UpstreamClient: options must be an object')
    let url: URL
    try {
      url = new URL(opts.baseUrl)
    } catch {
      throw new TypeError('UpstreamClient: options.baseUrl must be an absolute http(s) URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError('UpstreamClient: options.baseUrl must use http: or https:')
    }
    const connections = positiveInt(opts.connections, 32, 'connections')
    const headersTimeoutMs = positiveInt(opts.headersTimeoutMs, 10_000, 'headersTimeoutMs')
    const bodyTimeoutMs = positiveInt(opts.bodyTimeoutMs, 30_000, 'bodyTimeoutMs')
    const connectTimeoutMs = positiveInt(opts.connectTimeoutMs, 3_000, 'connectTimeoutMs')
    if (opts.secretHeader !== undefined) {
      const { name, value } = opts.secretHeader
      if (typeof name !== 'string' || !/^[A-Za-z0-9-]+$/.test(name) || typeof value !== 'string') {
        throw new TypeError('UpstreamClient: options.secretHeader must be { name: token, value: string }')
      }
      this.#secretHeader = { name: name.toLowerCase(), value }
    }
    this.baseUrl = opts.baseUrl
    this.#basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
    this.#pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      headersTimeout: headersTimeoutMs,
      bodyTimeout: bodyTimeoutMs,
      connect: { timeout: connectTimeoutMs },
    })
  }

  async request(path: string, init: UpstreamRequestInit): Promise<UpstreamResponse> {
    const headers: Record<string, string> = { ...init.headers }
    if (this.#secretHeader !== undefined) headers[this.#secretHeader.name] = this.#secretHeader.value
    let res: Dispatcher.ResponseData
    try {
      res = await this.#pool.request({
        path: this.#basePath + path,
        method: init.method,
        headers,
        ...(init.body !== undefined ? { body: requestBody(init.body) } : {}),
        ...(init.signal !== undefined ? { signal: init.signal } : {}),
      })
    } catch (err) {
      throw beforeHeadersError(err, init.signal)
    }
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue
      const combined = !Array.isArray(value) ? value : name === 'set-cookie' ? value[0] : value.join(', ')
      if (combined !== undefined) out[name] = combined
    }
    // RFC 9110 §6.4.1: HEAD, 1xx, 204 and 304 responses have no content whatever Content-Length says.
    const isBodiless =
      init.method === 'HEAD' || res.statusCode < 200 || res.statusCode === 204 || res.statusCode === 304
    const declared = out['content-length']
    const expectedBytes = !isBodiless && declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined
    const raw = res.body as unknown as Readable & { dump(opts?: { limit?: number }): Promise<void> }
    return {
      status: res.statusCode,
      headers: out,
      body: readBody(raw, expectedBytes, this.baseUrl + path),
      discard: async () => {
        try {
          await raw.dump({ limit: DISCARD_DRAIN_BYTES })
        } catch {
          // The connection is gone either way; nothing to report for a body nobody wanted.
        }
      },
    }
  }

  async close(): Promise<void> {
    // Graceful first (in-flight requests finish), then cut whatever still hangs on.
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), CLOSE_GRACE_MS)
      timer.unref()
    })
    const outcome = await Promise.race([this.#pool.close().then(() => 'closed' as const), grace])
    clearTimeout(timer)
    if (outcome === 'timeout') await this.#pool.destroy()
  }
}

function requestBody(body: string | Uint8Array | AsyncIterable<Uint8Array>): string | Uint8Array | Readable {
  return typeof body === 'string' || body instanceof Uint8Array ? body : Readable.from(body, { objectMode: false })
}

async function* readBody(raw: Readable, expectedBytes: number | undefined, where: string): AsyncGenerator<Uint8Array> {
  const it = raw[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>
  let receivedBytes = 0
  let isComplete = false
  try {
    for (;;) {
      let next: IteratorResult<Uint8Array>
      try {
        next = await it.next()
      } catch (err) {
        throw new VcdnError('ERR_UPSTREAM_BODY', `${where} after ${receivedBytes} bytes`, { cause: err })
      }
      if (next.done === true) break
      receivedBytes += next.value.byteLength
      yield next.value
    }
    isComplete = true
    // undici rejects a short body itself (SocketError / content-length mismatch, see the tests);
    // counting here keeps the guarantee independent of the library version.
    if (expectedBytes !== undefined && receivedBytes !== expectedBytes) {
      throw new VcdnError('ERR_UPSTREAM_BODY', `${where}: ${receivedBytes} of ${expectedBytes} bytes`)
    }
  } finally {
    // The consumer broke out early (or we threw): free the connection instead of leaving it
    // checked out until the body timeout.
    if (!isComplete) raw.destroy()
  }
}

function beforeHeadersError(err: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return err
  const code = err !== null && typeof err === 'object' && 'code' in err ? err.code : undefined
  if (code === 'UND_ERR_INVALID_ARG') return err // a bug in the caller, not an upstream failure
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') {
    return new VcdnError('ERR_UPSTREAM_TIMEOUT', String(code), { cause: err })
  }
  return new VcdnError('ERR_UPSTREAM_CONNECT', typeof code === 'string' ? code : undefined, { cause: err })
}

function positiveInt(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`UpstreamClient: options.${field} must be a positive integer`)
  return value
}
