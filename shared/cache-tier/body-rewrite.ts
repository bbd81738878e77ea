// An outgoing body transform for small responses (the edge's query-token playlists,
// docs/architecture.md §3): the cache serves and stores the upstream's bytes as they are; this sink
// sits between the engine and the client, buffers a 200 body, and sends the transformed one with
// its own Content-Length. Owned by one request.
import { isVcdnError, type ErrorCode } from '../errors/index.js'
import { sendError, type HeaderMap, type ResponseSink } from '../http/index.js'

/** Transforms a whole 200 body; throws a VcdnError to answer with its code instead. */
export type BodyRewrite = (body: Buffer) => Uint8Array

/** Largest body buffered for a rewrite (a VOD media playlist of hours is a few hundred KiB). */
export const REWRITE_MAX_BYTES = 1024 * 1024

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * Fields that describe the stored bytes and not the rewritten ones. A strong ETag names one
 * representation (RFC 9110 §8.8.3): the rewritten body is another, so it carries none and the
 * request reaches the engine without conditionals (no 304 for a validator of the token-free
 * copy). Range requests are not honoured on it either (RFC 9110 §14.2 lets a server ignore Range),
 * so no Accept-Ranges. Digests are of the other bytes.
 */
const DROPPED = new Set(['etag', 'accept-ranges', 'content-md5', 'digest', 'content-digest', 'repr-digest'])

function withoutDropped(headers: HeaderMap): HeaderMap {
  const out: HeaderMap = {}
  for (const name in headers) if (!DROPPED.has(name)) out[name] = headers[name] as string
  return out
}

/**
 * A ResponseSink that passes anything but a 200 through unchanged and buffers a 200 body (at most
 * `maxBytes`) to send `rewrite(body)` instead, headers kept but for DROPPED. A body beyond the cap
 * is answered ERR_PLAYLIST_TOO_LARGE, a rewrite that throws with its code.
 */
export class RewritingSink implements ResponseSink {
  readonly #res: ResponseSink
  readonly #rewrite: BodyRewrite
  readonly #maxBytes: number
  #mode: 'idle' | 'pass' | 'buffer' | 'done' = 'idle'
  #headers: HeaderMap = {}
  #chunks: Uint8Array[] = []
  #bytes = 0
  /** What the client was answered: the status sent, and the code when it was a coded error. */
  status = 0
  code: ErrorCode | null = null

  constructor(res: ResponseSink, rewrite: BodyRewrite, maxBytes = REWRITE_MAX_BYTES) {
    this.#res = res
    this.#rewrite = rewrite
    this.#maxBytes = maxBytes
  }

  get isAborted(): boolean {
    return this.#res.isAborted
  }

  onAbort(cb: () => void): void {
    this.#res.onAbort(cb)
  }

  start(status: number, headers: HeaderMap, contentLength?: number): void {
    if (this.#mode !== 'idle') return
    if (status !== 200) {
      this.#mode = 'pass'
      this.status = status
      this.#res.start(status, headers, contentLength)
      return
    }
    this.#mode = 'buffer'
    this.#headers = headers
    if (contentLength !== undefined && contentLength > this.#maxBytes) this.#fail('ERR_PLAYLIST_TOO_LARGE')
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#mode === 'pass') return this.#res.write(chunk)
    if (this.#mode !== 'buffer' || chunk.byteLength === 0) return RESOLVED
    this.#bytes += chunk.byteLength
    if (this.#bytes > this.#maxBytes) {
      this.#fail('ERR_PLAYLIST_TOO_LARGE')
      return RESOLVED
    }
    // The engine may reuse nothing it handed over (memory-tier buffers are never mutated; fill
    // chunks are fresh), so keeping the reference is safe.
    this.#chunks.push(chunk)
    return RESOLVED
  }

  end(chunk?: Uint8Array): void {
    if (this.#mode === 'pass') {
      this.#mode = 'done'
      this.#res.end(chunk)
      return
    }
    if (this.#mode !== 'buffer') return
    if (chunk !== undefined && chunk.byteLength > 0) {
      void this.write(chunk)
      if (this.#mode !== 'buffer') return
    }
    this.#mode = 'done'
    const body = Buffer.concat(this.#chunks, this.#bytes)
    this.#chunks = []
    let out: Uint8Array
    try {
      out = this.#rewrite(body)
    } catch (err) {
      // Answered, never thrown into the engine: the request is this sink's alone.
      this.#fail(isVcdnError(err) ? err.code : 'ERR_INTERNAL')
      return
    }
    if (this.#res.isAborted) return
    this.status = 200
    this.#res.start(200, withoutDropped(this.#headers), out.byteLength)
    this.#res.end(out)
  }

  abort(): void {
    // An upstream that fails mid-body: the client gets the cut, as it would without the rewrite.
    if (this.#mode === 'done') return
    this.#mode = 'done'
    this.#res.abort()
  }

  #fail(code: ErrorCode): void {
    this.#mode = 'done'
    this.#chunks = []
    this.code = code
    this.status = this.#res.isAborted ? 0 : sendError(this.#res, code)
  }
}
