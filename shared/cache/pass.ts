// Pass-through of methods the cache does not answer (docs/architecture.md §5): with
// passUnsafeMethods the request goes to the upstream (its body streamed) and the answer streams
// back as PASS, never stored; a non-error answer to an unsafe method invalidates (RFC 9111 §4.4).
// Without the option: 405 with Allow: GET, HEAD.

import { performance } from 'node:perf_hooks'
import { errorBody } from '../errors/index.js'
import type { HeaderMap, ResponseSink } from '../http/types.js'
import { asUpstreamError, drain } from './fetch.js'
import { parseContentLength, pickStoredHeaders, upstreamAgeSec } from './http-semantics.js'
import type { ResolvedOptions } from './options.js'
import { countOutcome, JSON_HEADERS, respondError } from './respond.js'
import { responseHeaders } from './stored-object.js'
import type { CacheCounters, PassRequest, ServeRequest, ServeResult } from './types.js'
import { forwardedRequestHeaders, primaryKey } from './vary.js'

/** RFC 9110 §9.2.1: methods that do not change the target, so passing them invalidates nothing. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

export interface PassContext {
  readonly o: ResolvedOptions
  readonly counters: CacheCounters
  /** The engine's keyFor (its query policy), for Location / Content-Location targets. */
  readonly keyFor: (path: string, query: string) => string
  /** Purge a key with its variants (the engine's purge: fills first, then the store). */
  readonly purge: (key: string) => Promise<unknown>
}

export async function passThrough(req: PassRequest, sink: ResponseSink, ctx: PassContext): Promise<ServeResult> {
  const { o, counters } = ctx
  if (!o.passUnsafeMethods) {
    countOutcome(counters, 'PASS')
    const body = Buffer.from(errorBody('ERR_REQUEST_METHOD'))
    if (!sink.isAborted) sink.start(405, { ...JSON_HEADERS, allow: 'GET, HEAD', 'x-cache': 'PASS' }, body.length)
    if (!sink.isAborted) sink.end(body)
    return { outcome: 'PASS', status: 405, bytes: body.length, upstreamMs: null }
  }
  const controller = new AbortController()
  sink.onAbort(() => controller.abort())
  const headers = forwardedRequestHeaders(req.headers)
  const length = req.headers['content-length']
  if (length !== undefined) headers['content-length'] = length
  const t0 = performance.now()
  counters.upstreamRequests++
  let res
  try {
    res = await o.fetch(req.key, { method: req.method, headers, signal: controller.signal, body: req.body })
  } catch (err) {
    const upstreamMs = Math.round(performance.now() - t0)
    if (controller.signal.aborted) return { outcome: 'PASS', status: 0, bytes: 0, upstreamMs }
    const error = asUpstreamError(err)
    o.log.warn({ err, key: req.key, method: req.method, code: error.code }, 'cache pass failed before headers')
    const asServe: ServeRequest = { method: 'GET', key: req.key, headers: req.headers }
    return respondError(counters, sink, asServe, error.code, 'PASS', upstreamMs)
  }
  const upstreamMs = Math.round(performance.now() - t0)
  // RFC 9111 §4.4: an unsafe method invalidates once the upstream answered with a non-error
  // status; a safe one passed through (OPTIONS, TRACE: RFC 9110 §9.2.1) changes nothing.
  if (res.status < 400 && !SAFE_METHODS.has(req.method))
    await invalidate(req.key, res.headers, req.headers['host'], ctx)
  countOutcome(counters, 'PASS')
  const stored = pickStoredHeaders(res.headers)
  const bodiless = res.status === 204 || res.status === 304 || res.status < 200
  const contentLength = bodiless ? 0 : parseContentLength(res.headers)
  if (sink.isAborted) {
    await drain(res.body)
    return { outcome: 'PASS', status: res.status, bytes: 0, upstreamMs }
  }
  sink.start(res.status, responseHeaders(stored, 'PASS', upstreamAgeSec(stored)), contentLength ?? undefined)
  let bytes = 0
  try {
    for await (const chunk of res.body) {
      if (sink.isAborted) break
      if (chunk.length === 0) continue
      bytes += chunk.length
      await sink.write(chunk)
    }
    if (!sink.isAborted) sink.end()
  } catch (err) {
    o.log.warn({ err, key: req.key, method: req.method }, 'cache pass failed mid-body')
    if (!sink.isAborted) sink.abort()
  }
  return { outcome: 'PASS', status: res.status, bytes, upstreamMs }
}

/** RFC 9111 §4.4: the target, and Location / Content-Location targets of the same origin. */
async function invalidate(key: string, headers: HeaderMap, host: string | undefined, ctx: PassContext): Promise<void> {
  const targets = new Set([primaryKey(key)])
  const base = new URL(`http://${host ?? 'target.invalid'}${primaryKey(key)}`)
  for (const name of ['location', 'content-location']) {
    const value = headers[name]
    if (value === undefined) continue
    try {
      const url = new URL(value, base)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') continue
      if (url.host !== base.host) continue
      targets.add(ctx.keyFor(url.pathname, url.search.slice(1)))
    } catch {
      // Not a URL, or not a path this cache could have stored: nothing to invalidate.
    }
  }
  for (const target of targets) await ctx.purge(target)
}
