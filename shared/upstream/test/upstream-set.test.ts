import t from 'tap'
import type { Test } from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { UpstreamClient, UpstreamSet, type UpstreamResponse } from '../index.js'

interface Upstream {
  url: string
  port: number
  hits: number
  isHealthy: boolean
  stop(): Promise<void>
  restart(): Promise<void>
}

async function upstream(t: Test, name: string): Promise<Upstream> {
  const sockets = new Set<Socket>()
  let server: Server
  const u: Upstream = {
    url: '',
    port: 0,
    hits: 0,
    isHealthy: true,
    stop: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
    restart: async () => listen(u.port),
  }
  const listen = async (port: number): Promise<void> => {
    server = createServer((req, res) => {
      if (req.url === '/healthz') {
        res.statusCode = u.isHealthy ? 200 : 503
        res.end()
        return
      }
      u.hits++
      res.end(`${name} ${req.url}`)
    })
    server.on('connection', (s) => {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    u.port = (server.address() as AddressInfo).port
    u.url = `http://127.0.0.1:${u.port}`
  }
  await listen(0)
  t.teardown(() => u.stop().catch(() => undefined))
  return u
}

async function text(res: UpstreamResponse): Promise<string> {
  let out = ''
  for await (const chunk of res.body) out += Buffer.from(chunk).toString()
  return out
}

async function until(check: () => boolean, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met before the deadline')
    await new Promise((r) => setTimeout(r, 10))
  }
}

const URLS = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080']
const KEYS = Array.from({ length: 3000 }, (_, i) => `/v/vid${i % 97}/720p/seg_${String(i).padStart(5, '0')}.m4s`)

t.test('HRW order is stable and covers every healthy url', async (t) => {
  const set = new UpstreamSet({ urls: URLS })
  t.teardown(() => set.close())
  const again = new UpstreamSet({ urls: [...URLS].reverse() })
  t.teardown(() => again.close())
  for (const key of KEYS.slice(0, 100)) {
    const order = set.order(key)
    t.same([...order].sort(), [...URLS].sort())
    t.same(again.order(key), order, 'independent of configuration order and process')
  }
})

t.test('HRW spreads 3000 keys roughly evenly over 3 urls', async (t) => {
  const set = new UpstreamSet({ urls: URLS })
  t.teardown(() => set.close())
  const counts = new Map<string, number>()
  for (const key of KEYS) {
    const first = set.order(key)[0] ?? ''
    counts.set(first, (counts.get(first) ?? 0) + 1)
  }
  for (const url of URLS) {
    const n = counts.get(url) ?? 0
    t.ok(n > 850 && n < 1150, `${url}: ${n}`)
  }
})

t.test('removing one url moves only the keys it owned', async (t) => {
  const full = new UpstreamSet({ urls: URLS })
  const reduced = new UpstreamSet({ urls: URLS.filter((u) => u !== URLS[1]) })
  t.teardown(() => Promise.all([full.close(), reduced.close()]))
  let moved = 0
  for (const key of KEYS) {
    const before = full.order(key)[0]
    const after = reduced.order(key)[0]
    if (before !== URLS[1]) t.equal(after, before)
    else moved++
  }
  t.ok(moved > 0)
  full.markFailure(URLS[1] ?? '')
  t.equal(full.healthy().length, 3, 'one failure is below the threshold')
  full.markFailure(URLS[1] ?? '')
  full.markFailure(URLS[1] ?? '')
  t.same(full.healthy(), [URLS[0], URLS[2]])
  for (const key of KEYS.slice(0, 200))
    t.same(full.order(key), reduced.order(key), 'a down url is skipped exactly like a removed one')
  full.markSuccess(URLS[1] ?? '')
  t.equal(full.healthy().length, 3)
})

t.test('requests keep succeeding through the other upstream and the dead one is marked down', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const logs: string[] = []
  const log = {
    info: (_o: object, msg?: string) => logs.push(`info ${msg}`),
    warn: (_o: object, msg?: string) => logs.push(`warn ${msg}`),
  }
  const set = new UpstreamSet({ urls: [a.url, b.url], failThreshold: 2, log })
  t.teardown(() => set.close())
  await a.stop()
  for (const key of KEYS.slice(0, 30)) {
    const res = await set.request(key, { method: 'GET' })
    t.equal(res.upstream, b.url)
    t.equal(await text(res), `b ${key}`)
  }
  t.same(set.healthy(), [b.url])
  t.ok(logs.includes('warn upstream marked down'))
})

t.test('a recovered upstream is marked up by the active probe', async (t) => {
  const a = await upstream(t, 'a')
  const b = await upstream(t, 'b')
  const set = new UpstreamSet({ urls: [a.url, b.url], failThreshold: 1, probeIntervalMs: 20, backoffMaxMs: 50 })
  t.teardown(() => set.close())
  set.start()
  await a.stop()
  await until(() => set.healthy().length === 1)
  t.same(set.healthy(), [b.url], 'the probe noticed the dead upstream without any traffic')
  await a.restart()
  await until(() => set.healthy().length === 2)
  const keyForA = KEYS.find((k) => set.order(k)[0] === a.url) ?? ''
  const res = await set.request(keyForA, { method: 'GET' })
  t.equal(res.upstream, a.url)
  t.equal(await text(res), `a ${keyForA}`)
})

t.test('a failing health endpoint keeps a down upstream down with backoff', async (t) => {
  const a = await upstream(t, 'a')
  let nowMs = 0
  const set = new UpstreamSet({
    urls: [a.url],
    failThreshold: 1,
    probeIntervalMs: 100,
    backoffMaxMs: 400,
    now: () => nowMs,
  })
  t.teardown(() => set.close())
  a.isHealthy = false
  await set.probe()
  t.same(set.healthy(), [], 'a 503 probe is a failure')
  a.isHealthy = true
  await set.probe()
  t.same(set.healthy(), [], 'not probed again before its backoff')
  nowMs += 100
  await set.probe()
  t.same(set.healthy(), [a.url])
})

t.test('a 5xx answer is returned and does not mark the upstream down', async (t) => {
  const server = createServer((_req, res) => {
    res.statusCode = 503
    res.end('busy')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const set = new UpstreamSet({ urls: [url], failThreshold: 2 })
  t.teardown(() => set.close())
  const first = await set.request('/v/a/x', { method: 'GET' })
  t.equal(first.status, 503)
  await text(first)
  t.same(set.healthy(), [url])
  for (let i = 0; i < 3; i++) await text(await set.request('/v/a/x', { method: 'GET' }))
  t.same(set.healthy(), [url], 'a shield relaying an origin outage stays in the set')
})

t.test('with no healthy upstream the fallback is used', async (t) => {
  const a = await upstream(t, 'a')
  const origin = await upstream(t, 'origin')
  const set = new UpstreamSet({
    urls: [a.url],
    failThreshold: 1,
    fallback: new UpstreamClient({ baseUrl: origin.url }),
  })
  t.teardown(() => set.close())
  await a.stop()
  const res = await set.request('/v/a/master.m3u8', { method: 'GET' })
  t.equal(res.upstream, origin.url, 'the failed attempt falls through to the fallback in the same request')
  t.equal(await text(res), 'origin /v/a/master.m3u8')
  t.same(set.healthy(), [])
  const again = await set.request('/v/a/seg.m4s', { method: 'GET' })
  t.equal(again.upstream, origin.url)
  await text(again)
})

t.test('with every upstream failing and no fallback the last failure is returned', async (t) => {
  const a = await upstream(t, 'a')
  const set = new UpstreamSet({ urls: [a.url], failThreshold: 1 })
  t.teardown(() => set.close())
  await a.stop()
  await t.rejects(set.request('/v/a/x', { method: 'GET' }), { code: 'ERR_UPSTREAM_CONNECT' })
  t.same(set.healthy(), [], 'marked down')
  await t.rejects(
    set.request('/v/a/x', { method: 'GET' }),
    { code: 'ERR_UPSTREAM_CONNECT' },
    'still tried, still refused',
  )
})

t.test('with every upstream marked down and no fallback, they are still tried', async (t) => {
  const a = await upstream(t, 'a')
  const set = new UpstreamSet({ urls: [a.url], failThreshold: 1 })
  t.teardown(() => set.close())
  set.markFailure(a.url)
  t.same(set.healthy(), [], 'marked down')
  const res = await set.request('/v/a/x', { method: 'GET' })
  t.equal(res.status, 200, 'a lone upstream marked down is tried rather than refused')
  t.equal(await text(res), 'a /v/a/x')
  t.same(set.healthy(), [a.url], 'and a success brings it back')
})

t.test('the constructor names the invalid field', async (t) => {
  t.throws(() => new UpstreamSet({ urls: [] }), /options\.urls/)
  t.throws(() => new UpstreamSet({ urls: ['nope'] }), /options\.urls\[0\]/)
  t.throws(() => new UpstreamSet({ urls: ['http://a', 'http://a'] }), /options\.urls\[1\]/)
  t.throws(() => new UpstreamSet({ urls: ['http://a'], failThreshold: 0 }), /options\.failThreshold/)
  t.throws(() => new UpstreamSet({ urls: ['http://a'], probePath: 'healthz' }), /options\.probePath/)
})
