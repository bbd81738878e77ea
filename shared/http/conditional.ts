// The one evaluator of conditional requests (RFC 9110 §13) and the one HTTP-date parser
// (RFC 9110 §5.6.7), used by the origin's content server and by the caches. Pure functions.

import type { HeaderMap } from './types.js'

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const DAY = `(?:${DAYS.join('|')})`
const MONTH = `(${MONTHS.join('|')})`
const TIME = '(\\d\\d):(\\d\\d):(\\d\\d)'
// The three forms of §5.6.7, case-sensitive as its grammar is (%s"..."), nothing else.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`)
const RFC850_DATE = new RegExp(`^(?:${LONG_DAYS.join('|')}), (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`)
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`)

/**
 * An HTTP-date (RFC 9110 §5.6.7) as epoch ms, or null when the value is not exactly one of
 * IMF-fixdate, the obsolete RFC 850 form or asctime (Date.parse accepts far more: other zones,
 * two-digit years, missing commas, dashes, one-digit hours...). `nowMs` resolves RFC 850's
 * two-digit year: a date more than 50 years ahead is taken as the most recent past such year.
 */
export function parseHttpDate(value: string | undefined, nowMs: number = Date.now()): number | null {
  if (value === undefined) return null
  const v = value.trim()
  let day: string, month: string, year: number, hh: string, mm: string, ss: string
  let m = IMF_FIXDATE.exec(v)
  if (m !== null) {
    ;[, day = '', month = '', , hh = '', mm = '', ss = ''] = m
    year = Number(m[3])
  } else if ((m = RFC850_DATE.exec(v)) !== null) {
    ;[, day = '', month = '', , hh = '', mm = '', ss = ''] = m
    const nowYear = new Date(nowMs).getUTCFullYear()
    year = Math.floor(nowYear / 100) * 100 + Number(m[3])
    if (year > nowYear + 50) year -= 100
  } else if ((m = ASCTIME_DATE.exec(v)) !== null) {
    ;[, month = '', day = '', hh = '', mm = '', ss = ''] = m
    year = Number(m[6])
  } else {
    return null
  }
  const monthIndex = MONTHS.indexOf(month)
  const dayOfMonth = Number(day.trim())
  const [h, min, s] = [Number(hh), Number(mm), Number(ss)]
  // §5.6.7: hour 00-23, minute 00-59, second 00-60 (a leap second).
  if (h > 23 || min > 59 || s > 60 || dayOfMonth < 1) return null
  const ms = Date.UTC(year, monthIndex, dayOfMonth, h, min, Math.min(s, 59))
  // Day 31 of a 30-day month (or Feb 29 of a common year) would roll over: not a date.
  if (new Date(ms).getUTCDate() !== dayOfMonth) return null
  return ms
}

/** IMF-fixdate (RFC 9110 §5.6.7), the form every tier sends. */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString()
}

/** What a stored or served representation offers to compare against. */
export interface Validators {
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  /**
   * A cache's stand-in for a missing Last-Modified in If-Modified-Since only: the stored
   * response's Date (RFC 9111 §4.3.2). Never used for If-Range or If-Unmodified-Since.
   */
  readonly date?: string | undefined
}

function splitTags(list: string): string[] {
  // Entity-tags are quoted and cannot contain '"', so splitting on commas outside quotes is exact.
  const tags: string[] = []
  let current = ''
  let isQuoted = false
  for (const ch of list) {
    if (ch === '"') isQuoted = !isQuoted
    if (ch === ',' && !isQuoted) {
      if (current.trim().length > 0) tags.push(current.trim())
      current = ''
    } else {
      current += ch
    }
  }
  if (current.trim().length > 0) tags.push(current.trim())
  return tags
}

/** RFC 9110 §8.8.3.2 weak comparison: opaque tags equal, W/ prefix ignored. */
function isWeakMatch(a: string, b: string): boolean {
  const strip = (t: string): string => (t.startsWith('W/') ? t.slice(2) : t)
  return strip(a.trim()) === strip(b.trim())
}

/** RFC 9110 §8.8.3.2 strong comparison: both strong and character-for-character equal. */
function isStrongMatch(a: string, b: string): boolean {
  const x = a.trim()
  const y = b.trim()
  return !x.startsWith('W/') && !y.startsWith('W/') && x === y
}

function matchesAny(list: string, etag: string | undefined, isMatch: (a: string, b: string) => boolean): boolean {
  if (list.trim() === '*') return true // the representation exists
  if (etag === undefined) return false
  return splitTags(list).some((t) => isMatch(t, etag))
}

export type Precondition = 'proceed' | 'not-modified' | 'failed'

/**
 * RFC 9110 §13.2.2, in its order, for a representation that exists: If-Match (strong), else
 * If-Unmodified-Since; then If-None-Match (weak), else If-Modified-Since for GET/HEAD. A date
 * that is not a valid HTTP-date, or a date condition without Last-Modified, is ignored
 * (§13.1.3, §13.1.4). 'not-modified' → 304 (GET/HEAD), 'failed' → 412.
 */
export function evaluatePreconditions(method: string, req: HeaderMap, v: Validators): Precondition {
  const isGetOrHead = method === 'GET' || method === 'HEAD'
  const lastModifiedMs = parseHttpDate(v.lastModified)
  const ifMatch = req['if-match']
  if (ifMatch !== undefined) {
    if (!matchesAny(ifMatch, v.etag, isStrongMatch)) return 'failed'
  } else {
    const ius = parseHttpDate(req['if-unmodified-since'])
    if (ius !== null && lastModifiedMs !== null && lastModifiedMs > ius) return 'failed'
  }
  const ifNoneMatch = req['if-none-match']
  if (ifNoneMatch !== undefined) {
    if (matchesAny(ifNoneMatch, v.etag, isWeakMatch)) return isGetOrHead ? 'not-modified' : 'failed'
    return 'proceed'
  }
  if (isGetOrHead) {
    const ims = parseHttpDate(req['if-modified-since'])
    const modifiedMs = lastModifiedMs ?? (v.lastModified === undefined ? parseHttpDate(v.date) : null)
    if (ims !== null && modifiedMs !== null && modifiedMs <= ims) return 'not-modified'
  }
  return 'proceed'
}

/**
 * RFC 9110 §13.1.5: a Range is honoured only when If-Range (if any) matches — an entity-tag by
 * strong comparison, or an HTTP-date exactly equal to Last-Modified. Anything else → full 200.
 */
export function isIfRangeSatisfied(req: HeaderMap, v: Validators): boolean {
  const ifRange = req['if-range']
  if (ifRange === undefined) return true
  const value = ifRange.trim()
  if (value.startsWith('"') || value.startsWith('W/')) return v.etag !== undefined && isStrongMatch(value, v.etag)
  const date = parseHttpDate(value)
  return date !== null && date === parseHttpDate(v.lastModified)
}
