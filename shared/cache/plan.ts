// Response planning: how one request is answered from a stored representation or from a fill's
// head (status, headers, Content-Length, the byte range to send). Pure functions beside the HTTP
// rules (http-semantics.ts); the engine asks and delivers the plan (docs/architecture.md §5).

import { evaluatePreconditions, isIfRangeSatisfied, parseRange } from '../http/index.js'
import type { HeaderMap } from '../http/types.js'
import { ageSeconds, notModifiedHeaders, responseHeaders, type StoredObject } from './stored-object.js'
import type { CacheOutcome, ServeRequest } from './types.js'

/** How to answer one request from a representation of `size` bytes. */
export interface ResponsePlan {
  status: number
  headers: HeaderMap
  /** Content-Length to report; undefined for 304 and for a body of unknown length. */
  contentLength: number | undefined
  /** Body byte range [start, end); start === end for no body; end Infinity until the fill ends. */
  start: number
  end: number
}

/** RFC 9110 §13.2.2 (conditionals first), then §14.2 (Range), for a stored representation. */
export function planStored(obj: StoredObject, req: ServeRequest, outcome: CacheOutcome, now: number): ResponsePlan {
  const headers = responseHeaders(obj.headers, outcome, ageSeconds(obj, now))
  return planResponse(obj.status, headers, obj.size, req, obj.etag, obj.lastModified)
}

/**
 * A fill's answer while it streams: `headers` are the client's (responseHeaders of the upstream's
 * stored fields). With a Content-Length it is planned like a stored representation; chunked, the
 * total is unknown when headers arrive, so a Range is ignored and the full 200 is streamed (RFC
 * 9110 §14.2 allows ignoring Range). Conditionals still apply.
 */
export function planFillAnswer(
  status: number,
  upstream: HeaderMap,
  headers: HeaderMap,
  contentLength: number | null,
  req: ServeRequest,
): ResponsePlan {
  if (contentLength !== null) {
    return planResponse(status, headers, contentLength, req, upstream['etag'], upstream['last-modified'])
  }
  const precondition =
    status === 200
      ? evaluatePreconditions(req.method, req.headers, {
          etag: upstream['etag'],
          lastModified: upstream['last-modified'],
        })
      : 'proceed'
  if (precondition !== 'proceed') return preconditionPlan(precondition, headers)
  const end = req.method === 'HEAD' ? 0 : Number.POSITIVE_INFINITY
  return { status, headers, contentLength: undefined, start: 0, end }
}

/** RFC 9110 §15.4.5 / §15.5.13: a 304 or 412 carries the validators and caching fields, no content. */
function preconditionPlan(result: 'not-modified' | 'failed', headers: HeaderMap): ResponsePlan {
  const status = result === 'not-modified' ? 304 : 412
  return {
    status,
    headers: notModifiedHeaders(headers),
    contentLength: status === 304 ? undefined : 0,
    start: 0,
    end: 0,
  }
}

/**
 * RFC 9110 §13.2.2: conditionals are evaluated first (304 for GET/HEAD, 412 when If-Match or
 * If-Unmodified-Since fails), then §14 Range for GET only (HEAD ignores Range, §14.2) and only on
 * a 200 whose If-Range matches.
 */
function planResponse(
  status: number,
  headers: HeaderMap,
  size: number,
  req: ServeRequest,
  etag: string | undefined,
  lastModified: string | undefined,
): ResponsePlan {
  const isHead = req.method === 'HEAD'
  if (status !== 200) return { status, headers, contentLength: size, start: 0, end: isHead ? 0 : size }
  const precondition = evaluatePreconditions(req.method, req.headers, { etag, lastModified, date: headers['date'] })
  if (precondition !== 'proceed') return preconditionPlan(precondition, headers)
  const rangeHeader = req.headers['range']
  if (!isHead && rangeHeader !== undefined && isIfRangeSatisfied(req.headers, { etag, lastModified })) {
    const range = parseRange(rangeHeader, size)
    if (range.kind === 'unsatisfiable') {
      return {
        status: 416,
        headers: { ...headers, 'content-range': `bytes */${size}` },
        contentLength: 0,
        start: 0,
        end: 0,
      }
    }
    if (range.kind === 'range') {
      return {
        status: 206,
        headers: { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${size}` },
        contentLength: range.end - range.start + 1,
        start: range.start,
        end: range.end + 1,
      }
    }
  }
  return { status: 200, headers, contentLength: size, start: 0, end: isHead ? 0 : size }
}
