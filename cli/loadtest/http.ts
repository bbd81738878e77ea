// The load tool's HTTP side: one keep-alive pool per origin it meets (the master URL's, and any
// absolute URI's) through shared/upstream, every request bounded by one overall timeout, TTFB
// measured to the response headers.
import { isVcdnError, VcdnError } from '../../shared/errors/index.js'
import { UpstreamClient } from '../../shared/upstream/index.js'

export interface Fetched {
  status: number
  headers: Record<string, string>
  bytes: number
  ttfbMs: number
  totalMs: number
  /** The body as text, when asked for (playlists). */
  text: string | undefined
}

export interface HttpOptions {
  /** Whole request, connect to last byte. */
  timeoutMs: number
  /** Keep-alive connections per origin. */
  connections: number
  headers: Readonly<Record<string, string>>
}

// A playlist larger than this is not one a player would load either.
const MAX_TEXT_BYTES = 8 * 1024 * 1024
// Absolute URIs could name any number of hosts; a load run talks to a few.
const MAX_ORIGINS = 16

export class LoadHttp {
  readonly #clients = new Map<string, UpstreamClient>()
  readonly #o: HttpOptions

  constructor(o: HttpOptions) {
    this.#o = o
  }

  /**
   * GET `url` (with `extraHeaders` besides the run's own); reads the body to the end (as text when `isText`). Throws a coded VcdnError for
   * anything that is not an HTTP answer: ERR_UPSTREAM_CONNECT (refused, reset, DNS),
   * ERR_UPSTREAM_TIMEOUT (the overall timeout), ERR_UPSTREAM_BODY (cut short, too large).
   */
  async get(url: URL, isText: boolean, extraHeaders?: Readonly<Record<string, string>>): Promise<Fetched> {
    const client = this.#client(url)
    const signal = AbortSignal.timeout(this.#o.timeoutMs)
    const t0 = performance.now()
    try {
      const res = await client.request(url.pathname + url.search, {
        method: 'GET',
        headers: extraHeaders === undefined ? { ...this.#o.headers } : { ...this.#o.headers, ...extraHeaders },
        signal,
      })
      const ttfbMs = performance.now() - t0
      let bytes = 0
      const chunks: Uint8Array[] = []
      for await (const chunk of res.body) {
        bytes += chunk.byteLength
        if (isText) {
          if (bytes > MAX_TEXT_BYTES)
            throw new VcdnError('ERR_UPSTREAM_BODY', `${url.pathname}: over ${MAX_TEXT_BYTES} bytes`)
          chunks.push(chunk)
        }
      }
      return {
        status: res.status,
        headers: res.headers,
        bytes,
        ttfbMs,
        totalMs: performance.now() - t0,
        text: isText ? Buffer.concat(chunks).toString('utf8') : undefined,
      }
    } catch (err) {
      if (isVcdnError(err)) throw err
      // The overall timeout fired: shared/upstream hands the abort back uncoded (the caller's
      // own signal); for the load run it is the server's lateness.
      if (signal.aborted)
        throw new VcdnError('ERR_UPSTREAM_TIMEOUT', `${url.pathname} after ${this.#o.timeoutMs} ms`, { cause: err })
      throw new VcdnError('ERR_UPSTREAM_CONNECT', url.host, { cause: err })
    }
  }

  #client(url: URL): UpstreamClient {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new VcdnError('ERR_UPSTREAM_CONNECT', `not an http(s) URL: ${url.protocol}`)
    }
    let client = this.#clients.get(url.origin)
    if (client === undefined) {
      if (this.#clients.size >= MAX_ORIGINS) {
        throw new VcdnError('ERR_UPSTREAM_CONNECT', `more than ${MAX_ORIGINS} hosts in the playlists`)
      }
      client = new UpstreamClient({
        baseUrl: url.origin,
        connections: this.#o.connections,
        headersTimeoutMs: this.#o.timeoutMs,
        bodyTimeoutMs: this.#o.timeoutMs,
        connectTimeoutMs: Math.min(this.#o.timeoutMs, 3_000),
      })
      this.#clients.set(url.origin, client)
    }
    return client
  }

  async close(): Promise<void> {
    await Promise.all([...this.#clients.values()].map((c) => c.close()))
    this.#clients.clear()
  }
}
