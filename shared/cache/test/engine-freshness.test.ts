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
    t.equal(first.result.outcome, 'MISS', 'first GET')
    for (const step of row.steps) {
      h.clock.now = T0 + step.atSec * 1000
      const got = await h.get(row.key)
      t.equal(got.result.outcome, step.outcome, `outcome after ${step.atSec} s`)
      t.equal(got.sink.status, 200, `status after ${step.atSec} s`)
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
