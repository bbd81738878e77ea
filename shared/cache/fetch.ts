// The fetch of one fill (docs/architecture.md §5.3), the role of Varnish's fetch on a busyobj: ask
// the upstream (conditionally when it revalidates a stored copy), decide from the answer's head
// what is stored where, stream the body into the Fill (which readers follow) and into the fill's
// temp file, then commit: fsync, make room, rename into objects/, index row (storage.ts).
//
// Ownership: the fetch is the fill's only writer (its chunks, its temp file, its head); it counts
// upstreamRequests, fillErrors and storeErrors; everything stored goes through the store.

import { performance } from 'node:perf_hooks'
import { isVcdnError, VcdnError } from '../errors/index.js'
import type { HeaderMap } from '../http/types.js'
import type { Fill, FillPlan } from './fill.js'
import { FillFile } from './fill-file.js'
import { cacheDirectives, isStorable, parseContentLength, pickStoredHeaders } from './http-semantics.js'
import { ownedBody } from './memory-tier.js'
import type { ResolvedOptions } from './options.js'
import type { CacheStore } from './storage.js'
import { describeStored, isStorableStatus } from './stored-object.js'
import type { CacheCounters } from './types.js'
import { forwardedRequestHeaders, parseVary, primaryKey, variantKey } from './vary.js'

export interface FetchContext {
  readonly o: ResolvedOptions
  readonly store: CacheStore
  readonly counters: CacheCounters
  /** Take the fill out of the engine's map of joinable fills (later requests start their own). */
  readonly forget: (fill: Fill) => void
}

export function asUpstreamError(err: unknown): VcdnError {
  if (isVcdnError(err)) return err
  return new VcdnError('ERR_UPSTREAM_CONNECT', undefined, { cause: err })
}

export async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    const it = body[Symbol.asyncIterator]()
    await it.return?.()
  } catch {
    // Nothing to do: the body was not wanted.
  }
}

/**
 * Run a fill to its end; `clientHeaders` are every header of the request it is for (Vary values,
 * forwarded fields). Handles its own failures: the fill always gets a head, a state and `finish`.
 */
export async function runFill(fill: Fill, clientHeaders: HeaderMap, ctx: FetchContext): Promise<void> {
  const { key, base } = fill
  const { o, store, counters } = ctx
  // The origin must see what it may vary on (RFC 9111 §4.1); the engine's own fields follow.
  const requestHeaders: HeaderMap = forwardedRequestHeaders(clientHeaders)
  // RFC 9111 §4.3.1: validate the stored copy with its validators.
  if (base?.etag !== undefined) requestHeaders['if-none-match'] = base.etag
  if (base?.lastModified !== undefined) requestHeaders['if-modified-since'] = base.lastModified
  const isConditional = base !== null && (base.etag !== undefined || base.lastModified !== undefined)

  const t0 = performance.now()
  counters.upstreamRequests++
  let res
  try {
    res = await o.fetch(primaryKey(key), { method: 'GET', headers: requestHeaders, signal: fill.controller.signal })
  } catch (err) {
    const error = asUpstreamError(err)
    o.log.warn({ err, key, code: error.code }, 'cache fill failed before headers')
    counters.fillErrors++
    ctx.forget(fill)
    fill.publishHead({ kind: 'error', error, upstreamMs: Math.round(performance.now() - t0) })
    fill.finish(false)
    return
  }
  const upstreamMs = Math.round(performance.now() - t0)
  const receivedAt = o.now()

  if (res.status === 304 && isConditional && base !== null) {
    await drain(res.body)
    // RFC 9111 §4.3.4: freshen the stored response with the 304's header fields.
    const isRefreshed = !fill.isPurged && store.refresh(base, res.headers, receivedAt)
    ctx.forget(fill)
    fill.publishHead({ kind: 'not-modified', headers: res.headers, upstreamMs })
    fill.finish(isRefreshed)
    return
  }

  // RFC 9213: CDN-Cache-Control / Surrogate-Control, when present, decide for this cache.
  const cc = cacheDirectives(res.headers)
  const contentLength = parseContentLength(res.headers)
  // RFC 9110 §7.6.1: hop-by-hop fields go no further; every end-to-end field is stored and forwarded.
  const headers = pickStoredHeaders(res.headers)
  // A response that sets a cookie is passed, never stored (RFC 9111 §7.3 lets a cache store it;
  // like Varnish's and nginx's defaults we do not, so one viewer's cookie is never another's).
  // RFC 9111 §4.1: the answer is stored as the variant its Vary and this fill's request name;
  // `Vary: *` never matches a later request, so it is not stored.
  const vary = parseVary(headers['vary'])
  const primary = primaryKey(key)
  const storeKey = vary === null || vary === '*' ? primary : variantKey(primary, vary, clientHeaders)
  fill.storeKey = vary === '*' ? null : storeKey
  // RFC 9111 §3.5: an answer to a request with Authorization is stored only when the origin says
  // a shared cache may (public, s-maxage, must-revalidate).
  const isAuthorized =
    clientHeaders['authorization'] !== undefined &&
    !(cc.has('public') || cc.has('s-maxage') || cc.has('must-revalidate'))
  const isPass = !isStorable(cc) || headers['set-cookie'] !== undefined || vary === '*' || isAuthorized
  const maxStorableBytes = Math.floor(o.maxBytes * o.highWatermark)
  let plan: FillPlan = 'none'
  if (
    !isPass &&
    res.status !== 404 &&
    isStorableStatus(res.status, cc, headers) &&
    (contentLength === null || contentLength <= maxStorableBytes)
  )
    plan = 'disk'
  // 404s are cached briefly, in memory only (this module's README): a flood of missing keys never
  // reaches the disk or the index. 5xx are never stored (isStorableStatus).
  if (!isPass && res.status === 404 && (contentLength === null || contentLength <= o.memoryObjectMaxBytes))
    plan = 'memory'
  if (plan === 'disk') {
    try {
      fill.attachFile(await FillFile.create(store.tmpDir))
    } catch (err) {
      o.log.error({ err, key }, 'cache temp file open failed; passing through')
      counters.storeErrors++
      plan = 'none'
    }
  }
  // Uncacheable answers are not shared with later requests: they go upstream themselves.
  if (plan === 'none') ctx.forget(fill)
  // From now on requests for this target look up their variant; an answer that will not be
  // stored (no-store, Vary: *) leaves the target's shape as it was.
  else if (vary !== null && vary !== '*') store.rememberVary(primary, vary)
  fill.publishHead({ kind: 'body', status: res.status, headers, contentLength, upstreamMs, plan, isPass, receivedAt })

  let written = 0
  let shouldStore = plan !== 'none'
  try {
    let file = fill.file
    for await (const raw of res.body) {
      if (raw.length === 0) continue
      const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
      if (contentLength !== null && fill.received + chunk.length > contentLength) {
        throw new VcdnError('ERR_UPSTREAM_BODY', 'more bytes than content-length')
      }
      fill.push(chunk)
      if (file !== null) {
        if (await writeChunk(file, chunk, written, key, ctx)) {
          written += chunk.length
          store.addInflight(chunk.length)
          fill.markWritten(chunk.length)
        } else {
          // The disk refused (full, I/O error): the upstream is fine, so every reader still gets
          // the whole body. From here on chunks stay in memory (no markWritten), the bytes
          // already written stay readable from the open temp file, and nothing is stored.
          file = null
          shouldStore = false
        }
      }
      if (plan === 'memory' && fill.received > o.memoryObjectMaxBytes) shouldStore = false
      if (plan === 'disk' && fill.received > maxStorableBytes) shouldStore = false
    }
    if (contentLength !== null && fill.received !== contentLength) {
      throw new VcdnError('ERR_UPSTREAM_BODY', 'fewer bytes than content-length')
    }
  } catch (err) {
    // Mid-body failure: every reader is aborted, nothing is cached (docs/architecture.md §5.3).
    o.log.warn({ err, key, received: fill.received }, 'cache fill failed mid-body')
    counters.fillErrors++
    ctx.forget(fill)
    fill.fail(err)
    store.addInflight(-written)
    await fill.discardTemp()
    await fill.unref()
    fill.finish(false)
    return
  }

  fill.complete()
  let isStored = false
  try {
    if (shouldStore && !fill.isPurged && !store.isClosed)
      isStored = await commit(fill, storeKey, res.status, headers, receivedAt, plan, ctx)
    if (isStored) await store.dropOtherShapes(storeKey)
  } catch (err) {
    o.log.error({ err, key }, 'cache commit failed')
    counters.storeErrors++
  } finally {
    store.addInflight(-written)
    ctx.forget(fill)
    await fill.discardTemp()
    await fill.unref()
    fill.finish(isStored)
  }
}

/** Write one chunk at `position` of the temp file; false (logged, counted) if the disk refused. */
async function writeChunk(
  file: FillFile,
  chunk: Buffer,
  position: number,
  key: string,
  ctx: FetchContext,
): Promise<boolean> {
  try {
    await file.write(chunk, position)
    return true
  } catch (err) {
    ctx.o.log.error({ err, key }, 'cache temp file write failed; serving without storing')
    ctx.counters.storeErrors++
    return false
  }
}

/** Memory only: the whole body into the memory tier. Disk: fsync → make room → rename → index row. */
async function commit(
  fill: Fill,
  key: string,
  status: number,
  headers: HeaderMap,
  receivedAt: number,
  plan: FillPlan,
  ctx: FetchContext,
): Promise<boolean> {
  const { o: config, store } = ctx
  const size = fill.received
  if (plan === 'memory') {
    const body = ownedBody(fill.wholeBody(), config.isMemoryShared)
    if (body === null) return false
    const obj = describeStored({ key, status, size, headers, storedAt: receivedAt, file: null, config })
    store.storeInMemory(obj, body, fill.isPrefetch)
    return true
  }
  const file = fill.file
  if (file === null) return false
  await file.sync()
  // Make room before the rename so objects/ stays within the budget.
  await store.makeRoom()
  if (fill.isPurged || store.isClosed) return false
  const slot = store.newSlot(key)
  await file.moveTo(slot.path)
  if (fill.isPurged || store.isClosed) {
    await store.unlinkObject(slot.file)
    return false
  }
  const obj = describeStored({ key, status, size, headers, storedAt: receivedAt, file: slot.file, config })
  const body = size <= config.memoryObjectMaxBytes ? ownedBody(fill.wholeBody(), config.isMemoryShared) : null
  await store.insert(obj, slot.file, fill.isPrefetch, body)
  return true
}
