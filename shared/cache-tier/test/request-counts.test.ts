import t from 'tap'
import type { CacheCounters } from '../../cache/index.js'
import { createMetrics, Histogram, parseMetrics } from '../../metrics/index.js'
import type { UpstreamStats } from '../../upstream/index.js'
import { RequestCounts, tierMetrics } from '../metrics.js'

/** The engine's counters, all 0 (not under test here). */
const counters = new Proxy({}, { get: () => 0 }) as CacheCounters

async function scrape(requests: RequestCounts, upstreams: UpstreamStats[] = []): Promise<Map<string, number>> {
  const metrics = createMetrics(
    'vcdn_edge',
    tierMetrics(
      () => counters,
      requests,
      () => upstreams,
    ),
  )
  return parseMetrics(await metrics.text())
}

t.test('requests are counted by status, status class and cache outcome, bytes by outcome', async (t) => {
  const r = new RequestCounts()
  r.add(200, 'HIT', 1000, 0.0001)
  r.add(200, 'HIT', 1000, 0.0001)
  r.add(206, 'HIT', 10, 0.0001)
  r.add(200, 'MISS', 5000, 0.2)
  r.add(404, 'MISS', 50, 0.01)
  r.add(403, 'NONE', 0, 0.00005)
  r.add(502, 'NONE', 0, 1)
  r.add(0, 'NONE', 0, 3)
  const m = await scrape(r)
  t.equal(m.get('vcdn_edge_requests_total{status="200",class="2xx",cache="HIT"}'), 2)
  t.equal(m.get('vcdn_edge_requests_total{status="206",class="2xx",cache="HIT"}'), 1)
  t.equal(m.get('vcdn_edge_requests_total{status="200",class="2xx",cache="MISS"}'), 1)
  t.equal(m.get('vcdn_edge_requests_total{status="404",class="4xx",cache="MISS"}'), 1)
  t.equal(m.get('vcdn_edge_requests_total{status="403",class="4xx",cache="NONE"}'), 1)
  t.equal(m.get('vcdn_edge_requests_total{status="502",class="5xx",cache="NONE"}'), 1)
  t.equal(m.get('vcdn_edge_requests_total{status="0",class="none",cache="NONE"}'), 1, 'no status sent: class none')
  t.equal(m.get('vcdn_edge_sent_bytes_by_cache_total{cache="HIT"}'), 2010)
  t.equal(m.get('vcdn_edge_sent_bytes_by_cache_total{cache="MISS"}'), 5050)
  t.equal(m.get('vcdn_edge_sent_bytes_by_cache_total{cache="NONE"}'), 0)
  t.equal(m.get('vcdn_edge_sent_bytes_total'), 7060)
  t.equal(m.get('vcdn_edge_request_duration_seconds_count{cache="HIT"}'), 3, '_count equals the HIT requests')
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="HIT",le="0.0001"}'), 3)
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="MISS",le="0.01"}'), 1)
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="MISS",le="0.1"}'), 1)
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="MISS",le="0.25"}'), 2)
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="NONE",le="0.0001"}'), 1)
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="NONE",le="1"}'), 2)
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="NONE",le="2.5"}'), 2)
  t.equal(m.get('vcdn_edge_request_duration_seconds_bucket{cache="NONE",le="+Inf"}'), 3)
  t.equal(m.get('vcdn_edge_workers'), 1)
})

t.test('upstream health and counts are exposed per upstream and role', async (t) => {
  const shieldTime = new Histogram()
  shieldTime.observe(0.004)
  const upstreams: UpstreamStats[] = [
    { url: 'http://s1', role: 'member', isUp: true, requests: 5, failures: 1, headersTime: shieldTime },
    { url: 'http://s2', role: 'member', isUp: false, requests: 3, failures: 3, headersTime: new Histogram() },
    { url: 'http://o', role: 'fallback', isUp: true, requests: 2, failures: 0, headersTime: new Histogram() },
  ]
  const m = await scrape(new RequestCounts(), upstreams)
  t.equal(m.get('vcdn_edge_upstream_up{upstream="http://s1",role="member"}'), 1)
  t.equal(m.get('vcdn_edge_upstream_up{upstream="http://s2",role="member"}'), 0)
  t.equal(m.get('vcdn_edge_upstream_up{upstream="http://o",role="fallback"}'), 1)
  t.equal(m.get('vcdn_edge_upstream_attempts_total{upstream="http://s2",role="member"}'), 3)
  t.equal(m.get('vcdn_edge_upstream_failures_total{upstream="http://s1",role="member"}'), 1)
  t.equal(m.get('vcdn_edge_upstream_duration_seconds_bucket{upstream="http://s1",role="member",le="0.0025"}'), 0)
  t.equal(m.get('vcdn_edge_upstream_duration_seconds_bucket{upstream="http://s1",role="member",le="0.005"}'), 1)
  t.equal(m.get('vcdn_edge_upstream_duration_seconds_count{upstream="http://o",role="fallback"}'), 0)
  // A later scrape reads the state afresh: a member that came back is up again.
  upstreams[1] = { ...upstreams[1]!, isUp: true }
  const again = await scrape(new RequestCounts(), upstreams)
  t.equal(again.get('vcdn_edge_upstream_up{upstream="http://s2",role="member"}'), 1)
})
