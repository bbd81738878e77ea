import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { freePort } from '../../testing/index.js'
import { UpstreamClient, UpstreamSet, type UpstreamStats } from '../index.js'

const DELAY_MS = 30

/** An upstream that answers every request DELAY_MS after it arrives. */
async function slowUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => {
    setTimeout(() => res.end('ok'), DELAY_MS)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function byUrl(set: UpstreamSet): Map<string, UpstreamStats> {
  return new Map([...set.stats()].map((s) => [s.url, s]))
}

t.test('stats count requests and connect failures per upstream and time each one to its headers', async (t) => {
  const up = await slowUpstream()
  t.teardown(() => up.close())
  // A port nobody listens on: connections are refused.
  const dead = `http://127.0.0.1:${await freePort()}`
  const set = new UpstreamSet({ urls: [up.url, dead], failThreshold: 2 })
  t.teardown(() => set.close())
  const keys = Array.from({ length: 40 }, (_, i) => `/v/stats/720p/seg_${i}.m4s`)
  for (const key of keys) {
    const res = await set.request(key, { method: 'GET' })
    t.equal(res.upstream, up.url, 'every request ends at the live upstream')
    for await (const chunk of res.body) void chunk
  }
  const stats = byUrl(set)
  const live = stats.get(up.url)!
  const refused = stats.get(dead)!
  t.equal(live.role, 'member')
  t.equal(live.requests, keys.length, 'each key was sent to the live upstream once')
  t.equal(live.failures, 0)
  t.equal(live.isUp, true)
  const h = live.headersTime.snapshot()
  t.equal(h.count, keys.length, 'one time per request that got headers')
  t.ok(h.sum >= (keys.length * DELAY_MS) / 1000, 'each waited for the upstream')
  const below = h.buckets.find(([le]) => le === 0.025)
  t.same(below, [0.025, 0], `no request answered within 25 ms (it waited ${DELAY_MS} ms)`)
  // HRW sent keys to the dead upstream first until 2 failures marked it down (40 keys: at least 2
  // prefer it but for a chance of 41 in 2^40).
  t.equal(refused.failures, 2, 'two refused connections, then marked down')
  t.equal(refused.requests, 2, 'no request sent to it once down')
  t.equal(refused.isUp, false, 'down after failThreshold failures')
  t.equal(refused.headersTime.count, 0, 'failures are not timed')
})

t.test('the fallback is listed after the members with its own counts', async (t) => {
  const up = await slowUpstream()
  t.teardown(() => up.close())
  const dead = `http://127.0.0.1:${await freePort()}`
  const set = new UpstreamSet({ urls: [dead], fallback: new UpstreamClient({ baseUrl: up.url }) })
  t.teardown(() => set.close())
  const res = await set.request('/v/stats/720p/seg_1.m4s', { method: 'GET' })
  t.equal(res.upstream, up.url)
  for await (const chunk of res.body) void chunk
  const stats = [...set.stats()]
  t.same(
    stats.map((s) => [s.url, s.role, s.requests, s.failures]),
    [
      [dead, 'member', 1, 1],
      [up.url, 'fallback', 1, 0],
    ],
  )
  t.equal(stats[1]!.headersTime.count, 1)
})
