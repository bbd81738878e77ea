import t from 'tap'
import {
  contentKind,
  freshnessLifetimeMs,
  HEURISTIC_MAX_MS,
  isIfRangeSatisfied,
  isNotModified,
  parseCacheControl,
  parseRange,
  stalePolicy,
} from '../http-semantics.js'

const defaults = { playlist: 2_000, segment: 1_000_000, other: 60_000 }
const now = Date.UTC(2025, 0, 1)

void t.test('parseRange follows RFC 9110 §14.1.2 for one range and ignores the rest', async (t) => {
  const cases: Array<[string | undefined, number, ReturnType<typeof parseRange>]> = [
    ['bytes=0-99', 1000, { start: 0, end: 99 }],
    ['bytes=100-', 1000, { start: 100, end: 999 }],
    ['bytes=-100', 1000, { start: 900, end: 999 }],
    ['bytes=-5000', 1000, { start: 0, end: 999 }],
    ['bytes=500-5000', 1000, { start: 500, end: 999 }],
    ['bytes=1000-', 1000, 'unsatisfiable'],
    ['bytes=-0', 1000, 'unsatisfiable'],
    ['bytes=5-1', 1000, null],
    ['bytes=0-1,5-9', 1000, null],
    ['items=0-1', 1000, null],
    ['bytes=abc', 1000, null],
    ['bytes=-', 1000, null],
    [undefined, 1000, null],
  ]
  for (const [header, total, want] of cases) t.same(parseRange(header, total), want, String(header))
})

void t.test(
  'freshness prefers s-maxage, then max-age, then Expires minus Date, then a configured per-type default',
  async (t) => {
    const f = (h: Record<string, string>, key = '/v/a/seg.m4s'): number =>
      freshnessLifetimeMs(h, parseCacheControl(h['cache-control']), 200, key, defaults, now)
    t.equal(f({ 'cache-control': 'max-age=10, s-maxage=20' }), 20_000)
    t.equal(f({ 'cache-control': 'public, max-age=10' }), 10_000)
    t.equal(f({ expires: new Date(now + 30_000).toUTCString(), date: new Date(now).toUTCString() }), 30_000)
    t.equal(f({ expires: 'garbage' }), 0)
    t.equal(f({ 'cache-control': 'no-cache, max-age=100' }), 0)
    t.equal(f({}, '/v/a/master.m3u8'), 2_000)
    t.equal(f({}, '/v/a/manifest.mpd'), 2_000)
    t.equal(f({}, '/v/a/poster.jpg'), 1_000_000)
    t.equal(f({}, '/v/a/thumbs.vtt'), 60_000)
    t.equal(contentKind('/v/a.b/noext'), 'other')
  },
)

void t.test('heuristic freshness follows RFC 9111 §4.2.2: 10 % of the Last-Modified age, capped', async (t) => {
  const date = new Date(now).toUTCString()
  const lmAgo = (sec: number): string => new Date(now - sec * 1000).toUTCString()
  // headers, status, configured defaults → lifetime ms
  const table: Array<[Record<string, string>, number, Partial<typeof defaults>, number]> = [
    [{}, 200, {}, 0],
    [{ date }, 200, {}, 0],
    [{ date, 'last-modified': lmAgo(1000) }, 200, {}, 100_000],
    [{ 'last-modified': lmAgo(1000) }, 200, {}, 100_000],
    [{ date, 'last-modified': lmAgo(30 * 24 * 3600) }, 200, {}, HEURISTIC_MAX_MS],
    [{ date, 'last-modified': new Date(now + 5000).toUTCString() }, 200, {}, 0],
    [{ date, 'last-modified': 'not a date' }, 200, {}, 0],
    [{ date, 'last-modified': lmAgo(1000) }, 404, {}, 100_000],
    [{ date, 'last-modified': lmAgo(1000) }, 302, {}, 0],
    [{ date, 'last-modified': lmAgo(1000), 'cache-control': 'public' }, 302, {}, 100_000],
    [{ date, 'last-modified': lmAgo(1000) }, 200, { segment: 7_000 }, 7_000],
    [{ date, 'last-modified': lmAgo(1000) }, 200, { playlist: 7_000 }, 100_000],
    [{ date, 'last-modified': lmAgo(1000), expires: date }, 200, { segment: 7_000 }, 0],
  ]
  for (const [h, status, configured, want] of table) {
    const got = freshnessLifetimeMs(h, parseCacheControl(h['cache-control']), status, '/v/a/seg.m4s', configured, now)
    t.equal(got, want, `${status} ${JSON.stringify(h)} ${JSON.stringify(configured)}`)
  }
})

void t.test('stale policy honours RFC 5861 windows and RFC 9111 §4.2.4 prohibitions', async (t) => {
  t.same(stalePolicy(parseCacheControl('max-age=1, stale-while-revalidate=5, stale-if-error=7'), 99), {
    isStaleAllowed: true,
    staleWhileRevalidateMs: 5000,
    staleIfErrorMs: 7000,
  })
  t.same(stalePolicy(parseCacheControl('max-age=1'), 99), {
    isStaleAllowed: true,
    staleWhileRevalidateMs: 0,
    staleIfErrorMs: 99,
  })
  t.equal(stalePolicy(parseCacheControl('max-age=1, must-revalidate, stale-if-error=5'), 99).isStaleAllowed, false)
  t.equal(stalePolicy(parseCacheControl('s-maxage=1'), 99).staleIfErrorMs, 0)
})

void t.test('conditionals use weak etag comparison, * and If-Modified-Since only without If-None-Match', async (t) => {
  const lm = new Date(now).toUTCString()
  t.ok(isNotModified({ 'if-none-match': '"a"' }, '"a"', undefined))
  t.ok(isNotModified({ 'if-none-match': 'W/"a"' }, '"a"', undefined))
  t.ok(isNotModified({ 'if-none-match': '"x", "a,b"' }, '"a,b"', undefined))
  t.ok(isNotModified({ 'if-none-match': '*' }, undefined, undefined))
  t.notOk(isNotModified({ 'if-none-match': '"b"' }, '"a"', lm))
  t.notOk(isNotModified({ 'if-none-match': '"b"', 'if-modified-since': lm }, '"a"', lm))
  t.ok(isNotModified({ 'if-modified-since': lm }, '"a"', lm))
  t.notOk(isNotModified({ 'if-modified-since': new Date(now - 1000).toUTCString() }, '"a"', lm))
  t.notOk(isNotModified({ 'if-modified-since': 'junk' }, '"a"', lm))
  t.ok(isIfRangeSatisfied({ 'if-range': '"a"' }, '"a"', lm))
  t.notOk(isIfRangeSatisfied({ 'if-range': 'W/"a"' }, 'W/"a"', lm))
  t.ok(isIfRangeSatisfied({ 'if-range': lm }, '"a"', lm))
  t.notOk(isIfRangeSatisfied({ 'if-range': '"b"' }, '"a"', lm))
})
