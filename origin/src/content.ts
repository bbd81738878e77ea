// The content server shields fill from (docs/architecture.md §7.1): GET/HEAD of /v/... out of the
// store, with strong ETags, Last-Modified, single ranges and per-type Cache-Control.
// Tier-authenticated.
import { TIER_SECRET_HEADER } from '../../shared/config/index.js'
import { isVcdnError } from '../../shared/errors/index.js'
import {
  contentRange,
  evaluatePreconditions,
  formatHttpDate,
  isIfRangeSatisfied,
  parseRange,
  pipeToSink,
  secretEquals,
  sendError,
  type HeaderMap,
  type IncomingRequest,
  type ResponseSink,
} from '../../shared/http/index.js'
import { contentClassOf, storeKeyOf } from '../../shared/namespace/index.js'
import { validateStoreKey, type ObjectInfo, type Store } from '../../shared/store/index.js'
import type { OriginConfig } from './config.js'

export interface ContentResult {
  status: number
  bytes: number
}

/**
 * Cache-Control of a stored object by its content class, from the namespace's one extension
 * table (docs/architecture.md §2): segments immutable, playlists short and purged on reprocess.
 */
export function cacheControlFor(key: string, cc: OriginConfig['cacheControl']): string {
  return cc[contentClassOf(key)]
}

export async function serveContent(
  req: IncomingRequest,
  res: ResponseSink,
  store: Store,
  config: OriginConfig,
): Promise<ContentResult> {
  if (!secretEquals(req.headers[TIER_SECRET_HEADER], config.tierSecret)) {
    return { status: sendError(res, 'ERR_TIER_AUTH'), bytes: 0 }
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return { status: sendError(res, 'ERR_REQUEST_METHOD', { allow: 'GET, HEAD' }), bytes: 0 }
  }
  const key = storeKeyOf(req.path)
  try {
    validateStoreKey(key)
  } catch {
    return { status: sendError(res, 'ERR_REQUEST_PATH'), bytes: 0 }
  }
  let info: ObjectInfo | null
  try {
    info = await store.head(key)
  } catch (err) {
    return storeFailure(res, err)
  }
  if (info === null) {
    return { status: sendError(res, 'ERR_NOT_FOUND', { 'cache-control': config.cacheControl.notFound }), bytes: 0 }
  }
  const headers = baseHeaders(info, config)
  // RFC 9110 §13.2.2 and §14, by the same rules the caches apply (shared/http).
  const validators = { etag: headers['etag'], lastModified: headers['last-modified'] }
  const precondition = evaluatePreconditions(req.method, req.headers, validators)
  if (precondition !== 'proceed') {
    const status = precondition === 'not-modified' ? 304 : 412
    res.start(status, headers, status === 304 ? undefined : 0)
    res.end()
    return { status, bytes: 0 }
  }
  // §13.1.5: an If-Range that does not match → the full representation.
  const range = isIfRangeSatisfied(req.headers, validators)
    ? parseRange(req.headers['range'], info.size)
    : ({ kind: 'none' } as const)
  if (range.kind === 'unsatisfiable') {
    return { status: sendError(res, 'ERR_REQUEST_RANGE', { 'content-range': `bytes */${info.size}` }), bytes: 0 }
  }
  if (req.method === 'HEAD') {
    res.start(200, headers, info.size)
    res.end()
    return { status: 200, bytes: 0 }
  }
  const isPartial = range.kind === 'range'
  let got: Awaited<ReturnType<Store['get']>>
  try {
    got = await store.get(key, isPartial ? { start: range.start, end: range.end } : undefined)
  } catch (err) {
    return storeFailure(res, err)
  }
  if (got === null) {
    return { status: sendError(res, 'ERR_NOT_FOUND', { 'cache-control': config.cacheControl.notFound }), bytes: 0 }
  }
  const length = isPartial ? range.end - range.start + 1 : info.size
  if (isPartial) headers['content-range'] = contentRange(range.start, range.end, info.size)
  const status = isPartial ? 206 : 200
  res.onAbort(() => (got.body as NodeJS.ReadableStream & { destroy(): void }).destroy())
  res.start(status, headers, length)
  try {
    const bytes = await pipeToSink(got.body as AsyncIterable<Uint8Array>, res)
    res.end()
    return { status, bytes }
  } catch (err) {
    // Mid-body failure: the client must see a truncated response, never a clean end.
    res.abort()
    if (isVcdnError(err)) return { status, bytes: 0 }
    throw err
  }
}

/**
 * A store that fails before any byte is sent (S3 refusing the credentials, unreachable, out of
 * space…) answers with its coded status, 503 for the S3 ones, so shields may serve stale
 * (RFC 5861 §4); the body names the code, never the cause.
 */
function storeFailure(res: ResponseSink, err: unknown): ContentResult {
  if (!isVcdnError(err)) throw err
  return { status: sendError(res, err.code), bytes: 0 }
}

function baseHeaders(info: ObjectInfo, config: OriginConfig): HeaderMap {
  return {
    'content-type': info.contentType,
    etag: info.etag,
    'last-modified': formatHttpDate(info.lastModifiedMs),
    'cache-control': cacheControlFor(info.key, config.cacheControl),
    'accept-ranges': 'bytes',
  }
}
