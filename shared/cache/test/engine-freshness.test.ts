// What the origin said is the truth (RFC 9111 §4.2): freshness comes from the response, from
// §4.2.2 heuristics, or from a per-type default only where an operator configured one.
// Each row: upstream reply → a first GET, then GETs after the clock moves → expected outcome,
// status and how many requests the upstream has seen by then.
import t from 'tap'
import type { HeaderMap } from '../../http/types.js'
import type { CacheOutcome } from '../index.js'
import { harness, ok } from './fixtures/harness.js'

const T0 = Date.UTC(2025, 0, 1)
const httpDate = (ms: number): string => new Date(ms).toUTCString()
const DAY_S = 24 * 3600

interface Step {
  /** Seconds after the first GET. */
  atSec: number
  outcome: CacheOutcome
  upstreamCalls: number
}

interface Row {
  name: string
  key: string
  reply: HeaderMap
  status?: number
  /** Default MISS. */
  firstOutcome?: CacheOutcome
  steps: Step[]
}

const rows: Row[] = [
  {
    name: 'a segment without freshness or Last-Modified is not reused',
    key: '/v/a/seg.m4s',
    reply: {},
    steps: [{ atSec: 1, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'an "other" object without freshness is not reused 1 s later (it used to be cached 60 s)',
    key: '/v/a/thumbs.vtt',
    reply: {},
    steps: [{ atSec: 1, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'a playlist without freshness is not reused (no silent 2 s default)',
    key: '/v/a/index.m3u8',
    reply: {},
    steps: [{ atSec: 1, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'Last-Modified 1000 s before Date gives 10 % heuristic freshness: 100 s',
    key: '/v/b/seg.m4s',
    reply: { date: httpDate(T0), 'last-modified': httpDate(T0 - 1000_000) },
    steps: [
      { atSec: 99, outcome: 'HIT', upstreamCalls: 1 },
      { atSec: 101, outcome: 'MISS', upstreamCalls: 2 },
    ],
  },
  {
    name: 'heuristic freshness is capped at one day',
    key: '/v/c/seg.m4s',
    reply: { date: httpDate(T0), 'last-modified': httpDate(T0 - 365 * DAY_S * 1000) },
    steps: [
      { atSec: DAY_S - 1, outcome: 'HIT', upstreamCalls: 1 },
      { atSec: DAY_S + 1, outcome: 'MISS', upstreamCalls: 2 },
    ],
  },
  {
    name: 'a stored response without freshness but with an ETag is revalidated before reuse',
    key: '/v/d/seg.m4s',
    reply: { etag: '"v1"' },
    steps: [{ atSec: 1, outcome: 'REVALIDATED', upstreamCalls: 2 }],
  },
  // RFC 9111 §5.3: an Expires that is not an HTTP-date (RFC 9110 §5.6.7) means already expired,
  // even in the forms Date.parse reads as a date far in the future.
  ...[
    'Thu, 18 Aug 2050 02:01:18 UTC',
    'Thu 18 Aug 2050 02:01:18 GMT',
    'Thu, 18  Aug  2050 02:01:18 GMT',
    'Thu, 18-Aug-2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 2:01:18 GMT',
    'THU, 18 Aug 2050 02:01:18 GMT',
  ].map((expires): Row => ({
    name: `an invalid Expires (${expires}) means already expired`,
    key: '/v/x/seg.m4s',
    reply: { date: httpDate(T0), expires },
    steps: [{ atSec: 1, outcome: 'MISS', upstreamCalls: 2 }],
  })),
  // A 404 that states its own freshness is obeyed; the negative TTL (10 s) is for the others.
  {
    name: 'a 404 with an Expires in the past is not reused',
    key: '/v/n/a.m4s',
    status: 404,
    reply: { date: httpDate(T0), expires: httpDate(T0 - 1000) },
    steps: [{ atSec: 1, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'a 404 with max-age=0 is not reused',
    key: '/v/n/b.m4s',
    status: 404,
    reply: { 'cache-control': 'max-age=0' },
    steps: [{ atSec: 1, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'a 404 with max-age=60 is reused for 60 s, not the 10 s negative TTL',
    key: '/v/n/c.m4s',
    status: 404,
    reply: { 'cache-control': 'max-age=60' },
    steps: [
      { atSec: 30, outcome: 'HIT', upstreamCalls: 1 },
      { atSec: 61, outcome: 'MISS', upstreamCalls: 2 },
    ],
  },
  // RFC 9111 §5.1: an Age that is not one non-negative integer cannot be trusted: stale.
  ...['7200, 0', '0, 0', '3600, 3600', 'abc', '-7200', '7200.0', '7200;foo=bar'].map((age): Row => ({
    name: `a response with Age: ${age} and max-age=3600 is not reused`,
    key: '/v/age/seg.m4s',
    reply: { date: httpDate(T0), 'cache-control': 'max-age=3600', age },
    steps: [{ atSec: 1, outcome: 'MISS', upstreamCalls: 2 }],
  })),
  // RFC 9213: CDN-Cache-Control (then Surrogate-Control) decides for this cache over Cache-Control.
  {
    name: 'a short CDN-Cache-Control max-age wins over a long Cache-Control one',
    key: '/v/cdn/a.m4s',
    reply: { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'max-age=1' },
    steps: [{ atSec: 2, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'CDN-Cache-Control max-age lets this cache store what Cache-Control: no-store keeps from browsers',
    key: '/v/cdn/b.m4s',
    reply: { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' },
    steps: [{ atSec: 30, outcome: 'HIT', upstreamCalls: 1 }],
  },
  {
    name: 'CDN-Cache-Control: no-store is not stored despite Cache-Control: max-age',
    key: '/v/cdn/c.m4s',
    reply: { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'no-store' },
    firstOutcome: 'PASS',
    steps: [{ atSec: 1, outcome: 'PASS', upstreamCalls: 2 }],
  },
  {
    name: 'CDN-Cache-Control wins over Surrogate-Control',
    key: '/v/cdn/d.m4s',
    reply: { 'surrogate-control': 'max-age=3600', 'cdn-cache-control': 'max-age=1' },
    steps: [{ atSec: 2, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'a short Surrogate-Control max-age wins over a long Cache-Control one',
    key: '/v/sc/a.m4s',
    reply: { 'cache-control': 'max-age=3600', 'surrogate-control': 'max-age=1' },
    steps: [{ atSec: 2, outcome: 'MISS', upstreamCalls: 2 }],
  },
  {
    name: 'a long Surrogate-Control max-age wins over a short Cache-Control one',
    key: '/v/sc/b.m4s',
    reply: { 'cache-control': 'max-age=1', 'surrogate-control': 'max-age=3600' },
    steps: [{ atSec: 60, outcome: 'HIT', upstreamCalls: 1 }],
  },
  {
    name: 'Surrogate-Control targeted at this cache (;vcdn) wins over Cache-Control: no-store',
    key: '/v/sc/d.m4s',
    reply: { 'cache-control': 'no-store', 'surrogate-control': 'max-age=3600;vcdn' },
    steps: [{ atSec: 60, outcome: 'HIT', upstreamCalls: 1 }],
  },
  {
    name: 'Surrogate-Control: no-store is not stored despite Cache-Control: max-age',
    key: '/v/sc/c.m4s',
    reply: { 'cache-control': 'max-age=10000', 'surrogate-control': 'no-store' },
    firstOutcome: 'PASS',
    steps: [{ atSec: 1, outcome: 'PASS', upstreamCalls: 2 }],
  },
]

for (const row of rows) {
  void t.test(row.name, async (t) => {
    const h = await harness(t, { defaultTtlMs: {} })
    h.clock.now = T0
    const body = Buffer.from(`body of ${row.key}`)
    h.upstream.handler = (_key, init) =>
      init.headers['if-none-match'] === row.reply['etag'] && row.reply['etag'] !== undefined
        ? { status: 304, headers: { etag: row.reply['etag'] }, body: (async function* () {})() }
        : ok(body, row.reply, row.status ?? 200)
    const first = await h.get(row.key)
    t.equal(first.result.outcome, row.firstOutcome ?? 'MISS', 'first GET')
    for (const step of row.steps) {
      h.clock.now = T0 + step.atSec * 1000
      const got = await h.get(row.key)
      t.equal(got.result.outcome, step.outcome, `outcome after ${step.atSec} s`)
      t.equal(got.sink.status, row.status ?? 200, `status after ${step.atSec} s`)
      t.ok(got.sink.body.equals(body), `body after ${step.atSec} s`)
      t.equal(h.upstream.calls.length, step.upstreamCalls, `upstream requests after ${step.atSec} s`)
    }
  })
}

void t.test('a per-type default applies only to the kinds an operator configured', async (t) => {
  const h = await harness(t, { defaultTtlMs: { playlist: 2_000 } })
  h.clock.now = T0
  await h.get('/v/a/index.m3u8')
  await h.get('/v/a/seg.m4s')
  h.clock.now += 1_000
  t.equal((await h.get('/v/a/index.m3u8')).result.outcome, 'HIT', 'configured playlist default')
  t.equal((await h.get('/v/a/seg.m4s')).result.outcome, 'MISS', 'segment default not configured')
  t.equal(h.upstream.calls.length, 3)
})
