import t from 'tap'
import { createMetrics, Histogram, HistogramsBy, LATENCY_BUCKETS_S, parseMetrics } from '../index.js'

t.test('an observation lands in the first bucket whose bound is at or above it (le)', async (t) => {
  const h = new Histogram([0.001, 0.01, 0.1])
  for (const v of [0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.2, 99]) h.observe(v)
  const s = h.snapshot()
  t.same(s.buckets, [
    [0.001, 3],
    [0.01, 5],
    [0.1, 7],
    [Infinity, 9],
  ])
  t.equal(s.count, 9, '_count is the number of observations')
  t.equal(h.count, 9)
  t.ok(Math.abs(s.sum - (0.0005 + 0.001 + 0.0011 + 0.01 + 0.05 + 0.1 + 0.2 + 99)) < 1e-9, '_sum adds the values')
})

t.test('the default buckets run from 0.1 ms to 10 s, ascending', async (t) => {
  t.equal(LATENCY_BUCKETS_S[0], 0.0001)
  t.equal(LATENCY_BUCKETS_S.at(-1), 10)
  t.ok(LATENCY_BUCKETS_S.includes(0.001), '1 ms is a bound')
  for (let i = 1; i < LATENCY_BUCKETS_S.length; i++) t.ok(LATENCY_BUCKETS_S[i]! > LATENCY_BUCKETS_S[i - 1]!)
})

t.test('bounds that are empty, unsorted or not finite are refused naming the index', async (t) => {
  t.throws(() => new Histogram([]), /non-empty/)
  t.throws(() => new Histogram([0.1, 0.01]), /bounds\[1\]/)
  t.throws(() => new Histogram([0.1, Infinity]), /bounds\[1\]/)
  t.throws(() => new HistogramsBy('not a label'), /label name/)
})

t.test('histograms by label keep one histogram per value, the last one reused', async (t) => {
  const by = new HistogramsBy('cache', [0.001, 1])
  by.observe('HIT', 0.0001)
  by.observe('HIT', 0.0002)
  by.observe('MISS', 0.5)
  by.observe('HIT', 2)
  const seen = new Map([...by.samples()].map(([labels, h]) => [labels.cache, h.snapshot()]))
  t.same([...seen.keys()], ['HIT', 'MISS'])
  t.same(seen.get('HIT')?.buckets, [
    [0.001, 2],
    [1, 2],
    [Infinity, 3],
  ])
  t.equal(seen.get('MISS')?.count, 1)
})

t.test('a collected histogram is exposed as _bucket{le}, _sum and _count in Prometheus text', async (t) => {
  const by = new HistogramsBy('cache', [0.001, 0.01])
  const metrics = createMetrics('vcdn_test', {
    request_duration_seconds: { type: 'histogram', help: 'request time', collect: () => by.samples() },
    upstream_up: {
      type: 'gauge',
      help: 'up by upstream',
      labels: ['upstream'],
      collect: () => [[{ upstream: 'http://a' }, 1] as const, [{ upstream: 'http://b' }, 0] as const],
    },
  })
  by.observe('HIT', 0.0005)
  by.observe('HIT', 0.005)
  by.observe('MISS', 0.5)
  const text = await metrics.text()
  t.match(text, /^# TYPE vcdn_test_request_duration_seconds histogram$/m)
  const values = parseMetrics(text)
  t.equal(values.get('vcdn_test_request_duration_seconds_bucket{cache="HIT",le="0.001"}'), 1)
  t.equal(values.get('vcdn_test_request_duration_seconds_bucket{cache="HIT",le="0.01"}'), 2)
  t.equal(values.get('vcdn_test_request_duration_seconds_bucket{cache="HIT",le="+Inf"}'), 2)
  t.equal(values.get('vcdn_test_request_duration_seconds_count{cache="HIT"}'), 2)
  t.equal(values.get('vcdn_test_request_duration_seconds_bucket{cache="MISS",le="0.01"}'), 0)
  t.equal(values.get('vcdn_test_request_duration_seconds_bucket{cache="MISS",le="+Inf"}'), 1)
  t.equal(values.get('vcdn_test_request_duration_seconds_sum{cache="MISS"}'), 0.5)
  t.equal(values.get('vcdn_test_upstream_up{upstream="http://a"}'), 1, 'labelled gauges')
  t.equal(values.get('vcdn_test_upstream_up{upstream="http://b"}'), 0)
  by.observe('HIT', 0.02)
  const again = parseMetrics(await metrics.text())
  t.equal(again.get('vcdn_test_request_duration_seconds_count{cache="HIT"}'), 3, 'read afresh at each scrape')
  t.equal(again.get('vcdn_test_request_duration_seconds_bucket{cache="HIT",le="+Inf"}'), 3)
})
