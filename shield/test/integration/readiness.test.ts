// /readyz of a shield follows its origins (docs/architecture.md §10.2): not ready (503,
// ERR_UPSTREAM_NONE) while no origin answers, ready within a probe or two of one starting.
import t from 'tap'
import { freePort, ScriptedOrigin, startTier, tempDir, waitFor } from '../../../shared/testing/index.js'

// Probes run every 2 s and a down origin is re-probed with a doubling backoff (capped at 30 s, but
// the origin below starts within a few probes): generous for a slow, busy machine.
const READY_WAIT_MS = 60_000

void t.test('a shield whose origin is down is not ready until the origin answers', async (t) => {
  const tmp = tempDir('vcdn-shield-readyz-')
  t.teardown(tmp.remove)
  const originPort = await freePort()
  const shield = await startTier(
    'shield',
    {
      tierSecret: 'shield-readiness-tier-secret-0123456789',
      upstreams: [`http://127.0.0.1:${originPort}`],
      cache: { dir: `${tmp.dir}/cache` },
      accessLog: false,
    },
    { dir: tmp.dir },
  )
  t.teardown(() => shield.stop())
  const before = await fetch(`${shield.adminUrl}/readyz`)
  t.equal(before.status, 503, 'not ready with its only origin down')
  t.same(await before.json(), { ready: false, error: { code: 'ERR_UPSTREAM_NONE', message: 'no healthy upstream' } })

  const origin = new ScriptedOrigin()
  await origin.listen(originPort)
  t.teardown(() => origin.close())
  const ready = await waitFor(
    async () => {
      const r = await fetch(`${shield.adminUrl}/readyz`)
      const body: unknown = await r.json()
      return r.status === 200 ? { body } : null
    },
    { timeoutMs: READY_WAIT_MS, what: 'the shield ready once its origin answers' },
  )
  t.same(ready.body, { ready: true })
  t.ok(origin.count('/healthz') >= 1, 'readiness came from a probe of the origin')
  const text = await (await fetch(`${shield.adminUrl}/metrics`)).text()
  t.match(text, /^# TYPE vcdn_shield_cache_fills_total counter$/m, 'engine totals are counters')
})
