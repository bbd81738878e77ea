// One table of Range and conditional requests (RFC 9110 §13, §14) that every tier answering
// them runs against itself: the origin's content server and the cache engine must agree row for
// row, because both use shared/http's parseRange and evaluatePreconditions.

export interface Representation {
  readonly etag: string
  /** IMF-fixdate, as the server sends it. */
  readonly lastModified: string
  readonly size: number
}

export interface ConditionalCase {
  readonly name: string
  readonly headers: (r: Representation) => Record<string, string>
  readonly status: 200 | 206 | 304 | 412 | 416
  /** For 206: the first and last byte. */
  readonly range?: readonly [number, number]
}

const shiftDate = (date: string, deltaMs: number): string => new Date(Date.parse(date) + deltaMs).toUTCString()

/** RFC 850 form of an IMF-fixdate (RFC 9110 §5.6.7): "Sunday, 06-Nov-94 08:49:37 GMT". */
function rfc850(date: string): string {
  const d = new Date(Date.parse(date))
  const day = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][d.getUTCDay()] ?? ''
  const [, dd = '', mon = '', yyyy = '', time = ''] = d.toUTCString().split(' ')
  return `${day}, ${dd}-${mon}-${yyyy.slice(2)} ${time} GMT`
}

export const CONDITIONAL_CASES: readonly ConditionalCase[] = [
  {
    name: 'the range unit is case-insensitive (Bytes)',
    headers: () => ({ range: 'Bytes=0-9' }),
    status: 206,
    range: [0, 9],
  },
  {
    name: 'the range unit is case-insensitive (BYTES)',
    headers: () => ({ range: 'BYTES=5-' }),
    status: 206,
    range: [5, -1],
  },
  { name: 'whitespace around = is not a range (ignored)', headers: () => ({ range: 'bytes = 0-9' }), status: 200 },
  { name: 'whitespace inside a range-spec is not a range', headers: () => ({ range: 'bytes=0 - 9' }), status: 200 },
  {
    name: 'If-Range with the exact Last-Modified date honours the range',
    headers: (r) => ({ range: 'bytes=0-9', 'if-range': r.lastModified }),
    status: 206,
    range: [0, 9],
  },
  {
    name: 'If-Range with the Last-Modified date in the RFC 850 form honours the range',
    headers: (r) => ({ range: 'bytes=0-9', 'if-range': rfc850(r.lastModified) }),
    status: 206,
    range: [0, 9],
  },
  {
    name: 'If-Modified-Since in a non-HTTP-date form (UTC) is ignored',
    headers: () => ({ 'if-modified-since': 'Thu, 18 Aug 2050 02:01:18 UTC' }),
    status: 200,
  },
  {
    name: 'If-Modified-Since with a two-digit year in IMF form is ignored',
    headers: () => ({ 'if-modified-since': 'Sun, 18 Aug 30 02:01:18 GMT' }),
    status: 200,
  },
  { name: 'If-Match with another entity-tag fails: 412', headers: () => ({ 'if-match': '"other"' }), status: 412 },
  {
    name: 'If-Match with a weak entity-tag fails (strong comparison)',
    headers: (r) => ({ 'if-match': `W/${r.etag}` }),
    status: 412,
  },
  {
    name: 'If-Unmodified-Since before Last-Modified fails: 412',
    headers: (r) => ({ 'if-unmodified-since': shiftDate(r.lastModified, -86_400_000) }),
    status: 412,
  },
  {
    name: 'If-Match is evaluated before If-None-Match',
    headers: (r) => ({ 'if-match': '"other"', 'if-none-match': r.etag }),
    status: 412,
  },
]
