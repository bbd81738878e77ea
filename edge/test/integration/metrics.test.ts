// What an operator graphs (docs/architecture.md §10.3), read from real edge and shield processes
// on 127.0.0.1: requests and bytes by status class and cache outcome, latency histograms, upstream
// health, and the Grafana dashboard in config/grafana, whose every metric must exist.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseMetrics } from '../../../shared/metrics/index.js'
import { ROOT, ScriptedOrigin, waitFor } from '../../../shared/testing/index.js'
import { randomBytes, topology, SECRET } from './topology.js'

/** The origin answers this long after the request, so a MISS takes at least as long. */
const ORIGIN_DELAY_MS = 300
const DASHBOARD = join(ROOT, 'config', 'grafana', 'vcdn-dashboard.json')

type Samples = Map<string, number>

async function scrape(adminUrl: string): Promise<Samples> {
  return parseMetrics(await (await fetch(`${adminUrl}/metrics`)).text())
}

/** `a="1",b="x"` → { a: '1', b: 'x' } (label values here hold no quotes or commas). */
function labelsOf(series: string): Record<string, string> {
  const open = series.indexOf('{')
  if (open < 0) return {}
  const out: Record<string, string> = {}
  for (const m of series.slice(open + 1, -1).matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!
  return out
}

/** The sum of every series of `name` whose labels include `want`. */
function sum(samples: Samples, name: string, want: Record<string, string> = {}): number {
  let total = 0
  for (const [series, value] of samples) {
    const brace = series.indexOf('{')
    if ((brace < 0 ? series : series.slice(0, brace)) !== name) continue
    const labels = labelsOf(series)
    if (Object.entries(want).every(([k, v]) => labels[k] === v)) total += value
  }
  return total
}

/** Metric names (with a sample) on a /metrics page: histogram series keep their _bucket/_sum/_count. */
function namesOf(samples: Samples): Set<string> {
  return new Set([...samples.keys()].map((s) => (s.includes('{') ? s.slice(0, s.indexOf('{')) : s)))
}

/** Every PromQL expression in a Grafana dashboard: panel targets and query variables. */
function dashboardQueries(dashboard: unknown): string[] {
  const out: string[] = []
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x)
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if ((k === 'expr' || k === 'definition') && typeof x === 'string') out.push(x)
        else walk(x)
      }
    }
  }
  walk(dashboard)
  return out
}

/** Whether (), {} and [] nest properly outside quoted label values. */
function isBalanced(query: string): boolean {
  const stack: string[] = []
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' }
  let isQuoted = false
  for (const c of query) {
    if (c === '"') isQuoted = !isQuoted
    else if (isQuoted) continue
    else if (c === '(' || c === '{' || c === '[') stack.push(c)
    else if (c in pairs && stack.pop() !== pairs[c]) return false
  }
  return stack.length === 0 && !isQuoted
}

t.test('metrics of an edge and a shield in front of a slow origin', async (t) => {
  const origin = new ScriptedOrigin()
  await origin.listen()
  t.teardown(() => origin.close())
  const topo = await topology({ shields: 1, originUrl: origin.url })
  t.teardown(() => topo.close())
  const edge = topo.edge
  const shield = topo.shields[0]!
  const seg = '/v/met/720p/seg_00001.m4s'
  const body = randomBytes(20_000, 11)
  origin.static(
    seg,
    body,
    { 'content-type': 'video/iso.segment', 'cache-control': 'public, max-age=3600' },
    ORIGIN_DELAY_MS,
  )

  t.test('requests are counted by status class and cache outcome, bytes by outcome, and timed', async (t) => {
    // What the client saw, by X-Cache: the counters must say the same.
    const seen = new Map<string, number>()
    const url = edge.url + topo.sign(seg)
    await waitFor(
      async () => {
        const r = await fetch(url)
        const got = Buffer.from(await r.arrayBuffer())
        t.equal(r.status, 200)
        t.equal(got.length, body.length)
        const cache = r.headers.get('x-cache') ?? 'none'
        seen.set(cache, (seen.get(cache) ?? 0) + 1)
        return cache === 'HIT' && (seen.get('HIT') ?? 0) >= 3
      },
      { timeoutMs: 30_000, what: 'three HITs' },
    )
    // The first request is a MISS; one sent before its fill was committed joins it and is a MISS too.
    t.ok((seen.get('MISS') ?? 0) >= 1, 'the first request was a MISS')
    const refused = await fetch(edge.url + seg) // no token
    const code = ((await refused.json()) as { error: { code: string } }).error.code
    t.match(refused.status, /^4/)

    const m = await scrape(edge.adminUrl)
    let requests = 0
    for (const [cache, n] of seen) {
      t.equal(sum(m, 'vcdn_edge_requests_total', { status: '200', class: '2xx', cache }), n, `${cache} requests`)
      t.equal(sum(m, 'vcdn_edge_sent_bytes_by_cache_total', { cache }), n * body.length, `${cache} bytes`)
      t.equal(sum(m, 'vcdn_edge_request_duration_seconds_count', { cache }), n, `${cache} timed`)
      requests += n
    }
    t.equal(
      sum(m, 'vcdn_edge_requests_total', { status: String(refused.status), class: '4xx', cache: 'NONE' }),
      1,
      'the refusal is a 4xx answered before the cache',
    )
    t.equal(sum(m, 'vcdn_edge_refused_total', { code }), 1, `refused_total{code="${code}"}`)
    requests += 1
    t.equal(sum(m, 'vcdn_edge_requests_total'), requests, 'every request counted once')
    t.equal(sum(m, 'vcdn_edge_request_duration_seconds_count'), requests, '_count equals the requests')
    t.equal(sum(m, 'vcdn_edge_request_duration_seconds_bucket', { le: '+Inf' }), requests, '+Inf holds every request')
    t.equal(
      sum(m, 'vcdn_edge_sent_bytes_by_cache_total'),
      sum(m, 'vcdn_edge_sent_bytes_total'),
      'bytes by outcome add up',
    )

    // The first MISS waited for the origin: it is above every bucket below the delay, and in +Inf.
    const misses = seen.get('MISS') ?? 0
    t.equal(sum(m, 'vcdn_edge_request_duration_seconds_bucket', { cache: 'MISS', le: '+Inf' }), misses)
    t.ok(
      sum(m, 'vcdn_edge_request_duration_seconds_bucket', { cache: 'MISS', le: '0.25' }) <= misses - 1,
      'the first MISS is not ≤ 0.25 s',
    )
    t.ok(sum(m, 'vcdn_edge_request_duration_seconds_sum', { cache: 'MISS' }) >= ORIGIN_DELAY_MS / 1000, 'MISS _sum')
    // The upstream time is the shield's time to headers, which waited for the origin too.
    const shieldMember = { upstream: shield.url, role: 'member' }
    t.equal(sum(m, 'vcdn_edge_upstream_duration_seconds_count', shieldMember), 1, 'one fill from the shield')
    t.equal(sum(m, 'vcdn_edge_upstream_duration_seconds_bucket', { ...shieldMember, le: '0.25' }), 0)
    t.equal(sum(m, 'vcdn_edge_upstream_attempts_total', shieldMember), 1)
    t.equal(sum(m, 'vcdn_edge_upstream_failures_total', shieldMember), 0)
    t.equal(sum(m, 'vcdn_edge_upstream_up', shieldMember), 1, 'the shield is up')
    t.equal(sum(m, 'vcdn_edge_upstream_up', { upstream: origin.url, role: 'fallback' }), 1, 'the fallback is listed')
    t.equal(sum(m, 'vcdn_edge_workers'), 1)

    const s = await scrape(shield.adminUrl)
    t.equal(sum(s, 'vcdn_shield_requests_total', { class: '2xx', cache: 'MISS' }), 1, 'the shield filled once')
    const originMember = { upstream: origin.url, role: 'member' }
    t.equal(sum(s, 'vcdn_shield_upstream_duration_seconds_count', originMember), 1)
    t.equal(sum(s, 'vcdn_shield_upstream_duration_seconds_bucket', { ...originMember, le: '0.25' }), 0)
    t.equal(sum(s, 'vcdn_shield_upstream_duration_seconds_bucket', { ...originMember, le: '+Inf' }), 1)
    t.ok(sum(s, 'vcdn_shield_upstream_duration_seconds_sum', originMember) >= ORIGIN_DELAY_MS / 1000)
  })

  t.test("the Grafana dashboard's queries name only metrics that a running edge and shield expose", async (t) => {
    // A refusal at the shield too, so that its refused_total{code} series exists.
    const noSecret = await fetch(shield.url + seg)
    t.equal(noSecret.status, 401)
    await noSecret.arrayBuffer()
    const withSecret = await fetch(shield.url + seg, { headers: { 'x-vcdn-tier': SECRET } })
    t.equal(withSecret.status, 200)
    await withSecret.arrayBuffer()

    const dashboard: unknown = JSON.parse(readFileSync(DASHBOARD, 'utf8'))
    const queries = dashboardQueries(dashboard)
    t.ok(queries.length >= 10, `${queries.length} queries`)
    for (const q of queries) {
      t.notMatch(q, /\bvcdn_(?!\$\{tier\}_)/, `every metric is named through $tier: ${q}`)
      t.ok(isBalanced(q), `brackets balance: ${q}`)
    }
    const used = new Set(queries.flatMap((q) => [...q.matchAll(/\bvcdn_\$\{tier\}_(\w+)/g)].map((m) => m[1]!)))
    for (const name of ['requests_total', 'request_duration_seconds_bucket', 'upstream_up', 'refused_total'])
      t.ok(used.has(name), `the dashboard graphs ${name}`)
    for (const node of [edge, shield]) {
      const exposed = namesOf(await scrape(node.adminUrl))
      for (const name of used) {
        const full = `vcdn_${node.tier}_${name}`
        t.ok(exposed.has(full), `${node.tier} exposes ${full}`)
      }
    }
  })

  t.test('an upstream that dies is marked down with its failures counted, and up again once back', async (t) => {
    const member = { upstream: shield.url, role: 'member' }
    const before = await scrape(edge.adminUrl)
    await shield.stop()
    const cold = '/v/met/720p/seg_00002.m4s'
    origin.static(cold, randomBytes(5_000, 12), { 'content-type': 'video/iso.segment' })
    // The shield refuses connections now: the edge counts the failure and asks its origin fallback.
    const r = await fetch(edge.url + topo.sign(cold))
    t.equal(r.status, 200, 'served through the fallback')
    await r.arrayBuffer()
    const after = await scrape(edge.adminUrl)
    t.equal(
      sum(after, 'vcdn_edge_upstream_failures_total', member) -
        sum(before, 'vcdn_edge_upstream_failures_total', member),
      1,
      'the refused connection is a failure of the shield',
    )
    t.ok(sum(after, 'vcdn_edge_upstream_attempts_total', { upstream: origin.url, role: 'fallback' }) >= 1)
    // Probes (every 2 s) add failures until the threshold marks it down.
    await waitFor(async () => sum(await scrape(edge.adminUrl), 'vcdn_edge_upstream_up', member) === 0, {
      timeoutMs: 30_000,
      what: 'upstream_up 0 for the stopped shield',
    })
    await topo.startShield(0)
    await waitFor(async () => sum(await scrape(edge.adminUrl), 'vcdn_edge_upstream_up', member) === 1, {
      timeoutMs: 60_000,
      what: 'upstream_up 1 once the shield is back',
    })
  })
})
