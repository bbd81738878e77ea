import t from 'tap'
import {
  evaluatePreconditions,
  isIfRangeSatisfied,
  parseHttpDate,
  type Precondition,
  type Validators,
} from '../conditional.js'

const NOW = Date.UTC(2026, 0, 1)
const SUNDAY = Date.UTC(1994, 10, 6, 8, 49, 37)

void t.test('HTTP-dates parse only in the three RFC 9110 §5.6.7 forms', async (t) => {
  const table: Array<[string, number | null]> = [
    ['Sun, 06 Nov 1994 08:49:37 GMT', SUNDAY],
    ['Sunday, 06-Nov-94 08:49:37 GMT', SUNDAY],
    ['Sun Nov  6 08:49:37 1994', SUNDAY],
    ['  Sun, 06 Nov 1994 08:49:37 GMT  ', SUNDAY],
    ['Thursday, 18-Aug-50 02:01:18 GMT', Date.UTC(2050, 7, 18, 2, 1, 18)],
    ['Thursday, 18-Aug-99 02:01:18 GMT', Date.UTC(1999, 7, 18, 2, 1, 18)],
    ['Thu Aug  8 02:01:18 2050', Date.UTC(2050, 7, 8, 2, 1, 18)],
    ['Tue, 19 Jan 2038 03:14:08 GMT', Date.UTC(2038, 0, 19, 3, 14, 8)],
    // Forms Date.parse accepts and RFC 9110 does not:
    ['Thu, 18 Aug 2050 02:01:18 UTC', null],
    ['Thu, 18 Aug 2050 02:01:18 AEST', null],
    ['Thu, 18 Aug 50 02:01:18 GMT', null],
    ['Thu 18 Aug 2050 02:01:18 GMT', null],
    ['Thu, 18  Aug  2050 02:01:18 GMT', null],
    ['Thu, 18-Aug-2050 02:01:18 GMT', null],
    ['Thu, 18 Aug 2050 02.01.18 GMT', null],
    ['Thu, 18 Aug 2050 2:01:18 GMT', null],
    ['THU, 18 Aug 2050 02:01:18 GMT', null],
    ['Thu, 18 AUG 2050 02:01:18 GMT', null],
    ['Thu, 18 Aug 2050 02:01:18 gMT', null],
    ['2050-08-18T02:01:18Z', null],
    ['0', null],
    ['-1', null],
    ['', null],
    ['Thu, 31 Jun 2050 02:01:18 GMT', null],
    ['Thu, 18 Aug 2050 24:00:00 GMT', null],
  ]
  for (const [value, want] of table) t.equal(parseHttpDate(value, NOW), want, JSON.stringify(value))
  t.equal(parseHttpDate(undefined), null)
})

void t.test('preconditions are evaluated in the RFC 9110 §13.2.2 order', async (t) => {
  const lm = 'Sun, 06 Nov 1994 08:49:37 GMT'
  const before = 'Sat, 05 Nov 1994 08:49:37 GMT'
  const after = 'Mon, 07 Nov 1994 08:49:37 GMT'
  const v = { etag: '"a"', lastModified: lm }
  // method, request headers, validators → result
  const table: Array<[string, Record<string, string>, Validators, Precondition]> = [
    ['GET', {}, v, 'proceed'],
    ['GET', { 'if-none-match': '"a"' }, v, 'not-modified'],
    ['GET', { 'if-none-match': 'W/"a"' }, v, 'not-modified'],
    ['GET', { 'if-none-match': '"x", "a"' }, v, 'not-modified'],
    ['GET', { 'if-none-match': '*' }, v, 'not-modified'],
    ['GET', { 'if-none-match': '"b"', 'if-modified-since': lm }, v, 'proceed'],
    ['GET', { 'if-modified-since': lm }, v, 'not-modified'],
    ['HEAD', { 'if-modified-since': after }, v, 'not-modified'],
    ['GET', { 'if-modified-since': before }, v, 'proceed'],
    ['GET', { 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 UTC' }, v, 'proceed'],
    ['GET', { 'if-modified-since': lm }, { etag: undefined, lastModified: undefined }, 'proceed'],
    ['GET', { 'if-match': '"a"' }, v, 'proceed'],
    ['GET', { 'if-match': '*' }, v, 'proceed'],
    ['GET', { 'if-match': '"b"' }, v, 'failed'],
    ['GET', { 'if-match': 'W/"a"' }, v, 'failed'],
    ['GET', { 'if-match': '"b"', 'if-none-match': '"a"' }, v, 'failed'],
    ['GET', { 'if-unmodified-since': before }, v, 'failed'],
    ['GET', { 'if-unmodified-since': lm }, v, 'proceed'],
    ['GET', { 'if-unmodified-since': 'yesterday' }, v, 'proceed'],
    ['GET', { 'if-match': '"a"', 'if-unmodified-since': before }, v, 'proceed'],
    ['DELETE', { 'if-none-match': '"a"' }, v, 'failed'],
    ['DELETE', { 'if-modified-since': lm }, v, 'proceed'],
    // RFC 9111 §4.3.2: a cache without Last-Modified compares If-Modified-Since with Date.
    ['GET', { 'if-modified-since': lm }, { etag: undefined, lastModified: undefined, date: lm }, 'not-modified'],
    ['GET', { 'if-modified-since': before }, { etag: undefined, lastModified: undefined, date: lm }, 'proceed'],
    ['GET', { 'if-modified-since': lm }, { etag: undefined, lastModified: 'junk', date: lm }, 'proceed'],
    ['GET', { 'if-unmodified-since': before }, { etag: undefined, lastModified: undefined, date: lm }, 'proceed'],
  ]
  for (const [method, req, validators, want] of table) {
    t.equal(evaluatePreconditions(method, req, validators), want, `${method} ${JSON.stringify(req)}`)
  }
})

void t.test('If-Range matches a strong entity-tag or the exact Last-Modified date (RFC 9110 §13.1.5)', async (t) => {
  const lm = 'Sun, 06 Nov 1994 08:49:37 GMT'
  const table: Array<
    [Record<string, string>, { etag: string | undefined; lastModified: string | undefined }, boolean]
  > = [
    [{}, { etag: '"a"', lastModified: lm }, true],
    [{ 'if-range': '"a"' }, { etag: '"a"', lastModified: lm }, true],
    [{ 'if-range': '"b"' }, { etag: '"a"', lastModified: lm }, false],
    [{ 'if-range': 'W/"a"' }, { etag: 'W/"a"', lastModified: lm }, false],
    [{ 'if-range': '"a"' }, { etag: 'W/"a"', lastModified: lm }, false],
    [{ 'if-range': lm }, { etag: '"a"', lastModified: lm }, true],
    [{ 'if-range': 'Sunday, 06-Nov-94 08:49:37 GMT' }, { etag: '"a"', lastModified: lm }, true],
    [{ 'if-range': 'Sun, 06 Nov 1994 08:49:38 GMT' }, { etag: '"a"', lastModified: lm }, false],
    [{ 'if-range': 'Sun, 06 Nov 1994 08:49:37 UTC' }, { etag: '"a"', lastModified: lm }, false],
    [{ 'if-range': lm }, { etag: '"a"', lastModified: undefined }, false],
  ]
  for (const [req, v, want] of table) t.equal(isIfRangeSatisfied(req, v), want, JSON.stringify([req, v]))
})
