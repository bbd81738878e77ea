// /readyz of an edge follows its upstreams (docs/architecture.md §10.2): not ready (503,
// ERR_UPSTREAM_NONE) while no shield answers, ready within a probe or two of one starting, not
// ready again once it stops; the origin fallback, when configured, counts as an upstream. Also:
// the engine's totals are exposed as Prometheus counters.
import t from 'tap'
import { freePort, ScriptedOrigin, startTier, tempDir, waitFor } from '../../../shared/testing/index.js'

const SECRET = 'edge-readiness-tier-secret-0123456789'
// Probes run every 2 s and a down shield is re-probed with a doubling backoff (capped at 30 s, but
// the shield below starts within a few probes): generous for a slow, busy machine.
const READY_WAIT_MS = 60_000

async function readyz(adminUrl: string): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${adminUrl}/readyz`)
  return { status: r.status, body: await r.json() }
}

const NOT_READY = { ready: false, error: { code: 'ERR_UPSTREAM_NONE', message: 'no healthy upstream' } }

void t.test('an edge whose shield is down is not ready until the shield answers', async (t) => {
  const tmp = tempDir('vcdn-edge-readyz-')
  t.teardown(tmp.remove)
  const origin = new ScriptedOrigin()
  await origin.listen()
  t.teardown(() => origin.close())
  const shieldPort = await freePort()
  const edge = await startTier(
    'edge',
    {
      tierSecret: SECRET,
      shields: [`http://127.0.0.1:${shieldPort}`],
      originFallback: false,
      requireToken: false,
      cache: { dir: `${tmp.dir}/edge-cache` },
      accessLog: false,
    },
    { dir: tmp.dir },
  )
  t.teardown(() => edge.stop())
  t.same(await readyz(edge.adminUrl), { status: 503, body: NOT_READY }, 'not ready with its only shield down')

  const shield = await startTier(
    'shield',
    {
      tierSecret: SECRET,
      listen: { port: shieldPort },
      upstreams: [origin.url],
      cache: { dir: `${tmp.dir}/shield-cache` },
      accessLog: false,
    },
    { dir: tmp.dir },
  )
  let isShieldRunning = true
  t.teardown(() => (isShieldRunning ? shield.stop() : undefined))
  const ready = await waitFor(
    async () => {
      const r = await readyz(edge.adminUrl)
      return r.status === 200 ? r : null
    },
    { timeoutMs: READY_WAIT_MS, what: 'the edge ready once its shield answers' },
  )
  t.same(ready.body, { ready: true })

  await shield.stop()
  isShieldRunning = false
  const down = await waitFor(
    async () => {
      const r = await readyz(edge.adminUrl)
      return r.status === 503 ? r : null
    },
    { timeoutMs: READY_WAIT_MS, what: 'the edge not ready once its shield stopped' },
  )
  t.same(down.body, NOT_READY, 'the body names why')
})

void t.test('the origin fallback counts as an upstream for readiness', async (t) => {
  const tmp = tempDir('vcdn-edge-readyz-fallback-')
  t.teardown(tmp.remove)
  const origin = new ScriptedOrigin()
  await origin.listen()
  let isOriginRunning = true
  t.teardown(() => (isOriginRunning ? origin.close() : undefined))
  const edge = await startTier(
    'edge',
    {
      tierSecret: SECRET,
      shields: [`http://127.0.0.1:${await freePort()}`],
      origin: origin.url,
      originFallback: true,
      requireToken: false,
      cache: { dir: `${tmp.dir}/edge-cache` },
      accessLog: false,
    },
    { dir: tmp.dir },
  )
  t.teardown(() => edge.stop())
  const ready = await waitFor(
    async () => {
      const r = await readyz(edge.adminUrl)
      return r.status === 200 ? r : null
    },
    { timeoutMs: READY_WAIT_MS, what: 'the edge ready through its origin fallback' },
  )
  t.same(ready.body, { ready: true })
  t.ok(origin.count('/healthz') >= 1, 'the fallback origin was probed')

  await origin.close()
  isOriginRunning = false
  const down = await waitFor(
    async () => {
      const r = await readyz(edge.adminUrl)
      return r.status === 503 ? r : null
    },
    { timeoutMs: READY_WAIT_MS, what: 'the edge not ready once shield and origin are both down' },
  )
  t.same(down.body, NOT_READY)

  // Counters, not gauges: Prometheus' rate() and increase() only apply to counters.
  const text = await (await fetch(`${edge.adminUrl}/metrics`)).text()
  for (const name of [
    'requests_total',
    'sent_bytes_total',
    'cache_hits_total',
    'cache_misses_total',
    'cache_fills_total',
    'upstream_requests_total',
    'cache_evictions_total',
  ])
    t.match(text, new RegExp(`^# TYPE vcdn_edge_${name} counter$`, 'm'), `${name} is a counter`)
  t.notMatch(text, /^# TYPE vcdn_edge_\w+(?<!_total) counter$/m, 'every counter name ends in _total')
  t.match(text, /^# TYPE vcdn_edge_cache_memory_bytes gauge$/m, 'sizes stay gauges')
})
