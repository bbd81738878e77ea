import t from 'tap'
import {
  cacheDirectives,
  freshnessLifetimeMs,
  HEURISTIC_MAX_MS,
  isAgeInvalid,
  parseCacheControl,
  stalePolicy,
} from '../http-semantics.js'

const defaults = { playlist: 2_000, segment: 1_000_000, other: 60_000 }
const now = Date.UTC(2025, 0, 1)

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
    t.equal(f({}, '/v/a/thumbs.vtt'), 2_000, 'WebVTT is in the playlist class, as at the origin')
    t.equal(f({}, '/v/a.b/noext'), 60_000, 'a name without an extension is in the other class')
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

void t.test('Age is valid only as one non-negative integer (RFC 9111 §5.1)', async (t) => {
  const table: Array<[string | undefined, boolean]> = [
    [undefined, false],
    ['0', false],
    [' 7200 ', false],
    ['7200, 0', true],
    ['0,7200', true],
    ['abc', true],
    ['-1', true],
    ['1.5', true],
    ['7200;foo=bar', true],
    ['', true],
  ]
  for (const [age, want] of table) t.equal(isAgeInvalid(age === undefined ? {} : { age }), want, String(age))
})

void t.test('CDN-Cache-Control, then Surrogate-Control, then Cache-Control decide (RFC 9213 §2.1)', async (t) => {
  const table: Array<[Record<string, string>, string]> = [
    [{ 'cache-control': 'max-age=1' }, 'max-age=1'],
    [{ 'cache-control': 'max-age=1', 'surrogate-control': 'max-age=2' }, 'max-age=2'],
    [{ 'cache-control': 'max-age=1', 'surrogate-control': 'max-age=2', 'cdn-cache-control': 'max-age=3' }, 'max-age=3'],
    [{ 'cache-control': 'max-age=1', 'cdn-cache-control': ' ' }, 'max-age=1'],
    [{ 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=3' }, 'max-age=3'],
    [{ 'cache-control': 'max-age=1', 'surrogate-control': 'max-age=2;vcdn, no-store;other' }, 'max-age=2'],
    [{ 'cache-control': 'max-age=1', 'surrogate-control': 'max-age=2;other' }, 'max-age=1'],
    [{ 'cache-control': 'max-age=1', 'surrogate-control': 'no-store;other, max-age=5' }, 'max-age=5'],
  ]
  for (const [h, want] of table) t.same([...cacheDirectives(h)], [...parseCacheControl(want)], JSON.stringify(h))
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
