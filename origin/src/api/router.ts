// A tiny method + path router for the control API. Patterns are '/'-separated: ':name' captures
// one segment, '*name' the rest of the path (output keys). Handlers throw VcdnError; the router
// maps it to the coded JSON answer (or cuts the connection when the response already started).
import { isVcdnError, toCode } from '../../../shared/errors/index.js'
import { sendError, type HeaderMap, type IncomingRequest, type ResponseSink } from '../../../shared/http/index.js'

export interface ApiContext {
  req: IncomingRequest
  res: TrackedResponse
  params: Record<string, string>
  query: URLSearchParams
}

export type RouteHandler = (ctx: ApiContext) => Promise<void> | void

interface Route {
  method: string
  segments: string[]
  handler: RouteHandler
}

/**
 * ResponseSink that adds headers every API answer carries (CORS, tus) and remembers the status,
 * for the access log and for deciding whether an error can still be answered.
 */
export class TrackedResponse implements ResponseSink {
  readonly #inner: ResponseSink
  readonly #extra: HeaderMap
  status = 0

  constructor(inner: ResponseSink, extra: HeaderMap) {
    this.#inner = inner
    this.#extra = extra
  }

  get isAborted(): boolean {
    return this.#inner.isAborted
  }

  get isStarted(): boolean {
    return this.status !== 0
  }

  onAbort(cb: () => void): void {
    this.#inner.onAbort(cb)
  }

  start(status: number, headers: HeaderMap, contentLength?: number): void {
    this.status = status
    const merged = { ...this.#extra, ...headers }
    if (contentLength === undefined) this.#inner.start(status, merged)
    else this.#inner.start(status, merged, contentLength)
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#inner.write(chunk)
  }

  end(chunk?: Uint8Array): void {
    this.#inner.end(chunk)
  }

  abort(): void {
    this.#inner.abort()
  }
}

export class Router {
  readonly #routes: Route[] = []

  add(method: string, pattern: string, handler: RouteHandler): this {
    this.#routes.push({ method, segments: pattern.split('/').filter((s) => s !== ''), handler })
    return this
  }

  /** Handle the request; false when no route's path matched (the caller answers 404). */
  async handle(req: IncomingRequest, res: TrackedResponse, onError: (err: unknown) => void): Promise<boolean> {
    const parts = req.path.split('/').filter((s) => s !== '')
    const allowed = new Set<string>()
    for (const route of this.#routes) {
      const params = match(route.segments, parts)
      if (params === null) continue
      if (route.method !== req.method) {
        allowed.add(route.method)
        continue
      }
      try {
        await route.handler({ req, res, params, query: new URLSearchParams(req.query) })
      } catch (err) {
        if (!isVcdnError(err)) onError(err)
        if (res.isAborted) return true
        if (res.isStarted) res.abort()
        else sendError(res, toCode(err))
      }
      return true
    }
    if (allowed.size === 0) return false
    sendError(res, 'ERR_REQUEST_METHOD', { allow: [...allowed].join(', ') })
    return true
  }
}

function match(segments: string[], parts: string[]): Record<string, string> | null {
  const params: Record<string, string> = {}
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string
    if (seg.startsWith('*')) {
      if (i >= parts.length) return null
      params[seg.slice(1)] = parts.slice(i).join('/')
      return params
    }
    const part = parts[i]
    if (part === undefined) return null
    if (seg.startsWith(':')) params[seg.slice(1)] = part
    else if (seg !== part) return null
  }
  return parts.length === segments.length ? params : null
}
