// Transport-neutral request/response shapes. The uWebSockets.js adapter (./server.ts) implements
// them; the cache engine and the tiers only ever see these, so swapping the server touches one file.

/** Header map with lower-case names. */
export type HeaderMap = Record<string, string>

export interface ServerRequest {
  /** Upper-case method, e.g. 'GET'. */
  readonly method: string
  /** Raw path as received, without the query string (still percent-encoded). */
  readonly path: string
  /** Raw query string without the leading '?', '' when absent. */
  readonly query: string
  /**
   * Every request header. Copying them costs per header (a player sends ten or more), so code that
   * needs only a few reads them with header() instead; the hot path of a cache hit never asks.
   */
  readonly headers: HeaderMap
  /** One header by lower-case name; an absent header, like an empty one, is undefined. */
  header(name: string): string | undefined
  /**
   * Every field line of one header by lower-case name, joined by ', ' (RFC 9110 §5.3), for list
   * headers whose lines may come from different senders (X-Forwarded-For); undefined when absent.
   * Read it synchronously in the handler: later only the last line is known.
   */
  headerLines(name: string): string | undefined
  /** Client address as text (IPv4 dotted or IPv6). */
  readonly remoteAddress: string
}

/**
 * Where a response goes. Owned by one request; the adapter enforces the uWebSockets.js rules
 * (cork, backpressure, never touching an aborted response) behind it.
 */
export interface ResponseSink {
  /** True once the client went away (or abort() was called); later calls are ignored. */
  readonly isAborted: boolean
  /** Called once when the client goes away before end(). */
  onAbort(cb: () => void): void
  /**
   * Status line and headers. They are sent with the first write()/end(). When contentLength is
   * given the adapter sends Content-Length and exactly that many body bytes must follow (for HEAD,
   * none do and the length is only reported); otherwise the body is chunked.
   */
  start(status: number, headers: HeaderMap, contentLength?: number): void
  /** Send a body chunk; resolves when the client can take more (backpressure). */
  write(chunk: Uint8Array): Promise<void>
  /** Finish the response, optionally with a last chunk. */
  end(chunk?: Uint8Array): void
  /** Cut the connection: the client sees a truncated response, never a clean end (mid-body failure). */
  abort(): void
}
