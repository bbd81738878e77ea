// The content server shields fill from (DESIGN §7): GET/HEAD of /v/... out of the store, with
// strong ETags, Last-Modified, single ranges and per-type Cache-Control. Tier-authenticated.
import { TIER_SECRET_HEADER } from '../../shared/config/index.js'
import { isVcdnError } from '../../shared/errors/index.js'
import {
  contentRange,
  parseRange,
  pipeToSink,
  secretEquals,
  sendError,
  type HeaderMap,
  type IncomingRequest,
  type ResponseSink,
} from '../../shared/http/index.js'
import { validateStoreKey, type ObjectInfo, type Store } from '../../shared/store/index.js'
import type { OriginConfig } from './config.js'

export interface ContentResult {
  status: number
  bytes: number
}

export function cacheControlFor(key: string, cc: OriginConfig['cacheControl']): string {
  const dot = key.lastIndexOf('.')
  const ext = dot < 0 ? '' : key.slice(dot + 1)
  switch (ext) {
    case 'm4s':
    case 'mp4':
    case 'ts':
    case 'jpg':
      return cc.segment
    case 'm3u8':
    case 'mpd':
    case 'vtt':
      return cc.playlist
    default:
      return cc.other
  }
}

/** RFC 9110 §13.1.2: If-None-Match uses the weak comparison. */
function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true
  const bare = etag.replace(/^W\//, '')
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare)
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
  const key = req.path.slice(1)
  try {
    validateStoreKey(key)
  } catch {
    return { status: sendError(res, 'ERR_REQUEST_PATH'), bytes: 0 }
  }
  const info = await store.head(key)
  if (info === null) {
    return { status: sendError(res, 'ERR_NOT_FOUND', { 'cache-control': config.cacheControl.notFound }), bytes: 0 }
  }
  const headers = baseHeaders(info, config)
  // RFC 9110 §13.2.2: If-None-Match takes precedence over If-Modified-Since.
  const inm = req.headers['if-none-match']
  const ims = req.headers['if-modified-since']
  const isNotModified =
    inm !== undefined
      ? etagMatches(inm, info.etag)
      : ims !== undefined && Math.floor(info.lastModifiedMs / 1000) <= Math.floor(Date.parse(ims) / 1000)
  if (isNotModified) {
    res.start(304, headers)
    res.end()
    return { status: 304, bytes: 0 }
  }
  // RFC 9110 §13.1.5: If-Range with a strong validator that does not match → full representation.
  const ifRange = req.headers['if-range']
  const range =
    ifRange !== undefined && ifRange !== info.etag
      ? ({ kind: 'none' } as const)
      : parseRange(req.headers['range'], info.size)
  if (range.kind === 'unsatisfiable') {
    return { status: sendError(res, 'ERR_REQUEST_RANGE', { 'content-range': `bytes */${info.size}` }), bytes: 0 }
  }
  if (req.method === 'HEAD') {
    res.start(200, headers, info.size)
    res.end()
    return { status: 200, bytes: 0 }
  }
  const isPartial = range.kind === 'range'
  const got = await store.get(key, isPartial ? { start: range.start, end: range.end } : undefined)
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

function baseHeaders(info: ObjectInfo, config: OriginConfig): HeaderMap {
  return {
    'content-type': info.contentType,
    etag: info.etag,
    'last-modified': new Date(info.lastModifiedMs).toUTCString(),
    'cache-control': cacheControlFor(info.key, config.cacheControl),
    'accept-ranges': 'bytes',
  }
}
