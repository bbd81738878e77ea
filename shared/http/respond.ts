// Small response helpers shared by every tier's front door.
import { timingSafeEqual, createHash } from 'node:crypto'
import { ERRORS, errorBody, type ErrorCode } from '../errors/index.js'
import type { HeaderMap, ResponseSink } from './types.js'

const JSON_HEADERS: HeaderMap = { 'content-type': 'application/json', 'cache-control': 'no-store' }

/** Answer with the registered status and the coded JSON body; never internals. */
export function sendError(res: ResponseSink, code: ErrorCode, extra: HeaderMap = {}): number {
  const status = ERRORS[code].status
  const body = Buffer.from(errorBody(code))
  res.start(status, { ...JSON_HEADERS, ...extra }, body.byteLength)
  res.end(body)
  return status
}

export function sendJson(res: ResponseSink, status: number, value: unknown, extra: HeaderMap = {}): number {
  const body = Buffer.from(JSON.stringify(value))
  res.start(status, { ...JSON_HEADERS, ...extra }, body.byteLength)
  res.end(body)
  return status
}

export function sendText(
  res: ResponseSink,
  status: number,
  text: string,
  contentType = 'text/plain; charset=utf-8',
): number {
  const body = Buffer.from(text)
  res.start(status, { 'content-type': contentType, 'cache-control': 'no-store' }, body.byteLength)
  res.end(body)
  return status
}

/**
 * Constant-time comparison of a presented secret (tier secret header, bearer value). Both sides are
 * hashed first so the comparison time does not depend on the secret's length either.
 */
export function secretEquals(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false
  const a = createHash('sha256').update(presented).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}
