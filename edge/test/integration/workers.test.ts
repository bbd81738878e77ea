// `workers: 2` (docs/architecture.md §12): two worker threads serve the edge's port and share the
// coordinator's one cache, with real origin, shield and edge processes on 127.0.0.1.
import t from 'tap'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { parseMetrics } from '../../../shared/metrics/index.js'
import { metric, waitFor } from '../../../shared/testing/index.js'
import { randomBytes, topology, warm, SECRET } from './topology.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Every request the shield answered, whatever its status and cache outcome. */
async function shieldRequests(adminUrl: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  let n = 0
  for (const [name, value] of parseMetrics(text)) if (name.startsWith('vcdn_shield_requests_total{')) n += value
  return n
}

/** The resident set of a process in bytes (/proc/<pid>/status VmRSS). */
function rssOf(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(line?.[1] ?? 0) * 1024
}

/** A GET on a connection of its own: the kernel's SO_REUSEPORT hash picks a worker per connection. */
async function getFresh(url: string): Promise<{ status: number; hash: string; cache: string | null }> {
  const agent = new Agent({ pipelining: 0 })
  try {
    const r = await request(url, { dispatcher: agent })
    const body = Buffer.from(await r.body.arrayBuffer())
    const cache = r.headers['x-cache']
    return { status: r.statusCode, hash: sha(body), cache: typeof cache === 'string' ? cache : null }
  } finally {
    await agent.close()
  }
}

t.test('an edge with workers: 2', async (t) => {
  const topo = await topology({
    shields: 1,
    edge: { workers: 2 },
    edgeCache: { memoryMaxBytes: 128 * 1024 * 1024, memoryObjectMaxBytes: 32 * 1024 * 1024 },
  })
  t.teardown(() => topo.close())
  const edge = topo.edge
  const shield = topo.shields[0]!

  t.test('reports two workers', async (t) => {
    t.equal(await metric(edge.adminUrl, 'vcdn_edge_workers'), 2)
  })

  // First, in a young process: garbage from other tests would make RSS fall and hide a copy.
  t.test('a hot object is held once: serving it from both workers does not add a copy', async (t) => {
    const size = 24 * 1024 * 1024
    const body = randomBytes(size, 22)
    await topo.store.put('v/wk2/1080p/seg_00001.m4s', body)
    const url = edge.url + topo.sign('/v/wk2/1080p/seg_00001.m4s')
    // Into the memory tier without a viewer (the coordinator's fill), so any copy a worker makes
    // of it happens below, while RSS is measured.
    const prewarmed = await fetch(`${edge.adminUrl}/prewarm`, {
      method: 'POST',
      headers: { 'x-vcdn-tier': SECRET, 'content-type': 'application/json' },
      body: JSON.stringify({ keys: ['/v/wk2/1080p/seg_00001.m4s'] }),
    })
    t.match(await prewarmed.json(), { filled: 1 })
    // The first hit promotes the object into memory once (the prefetch may have left it on disk).
    t.equal((await getFresh(url)).hash, sha(body))
    const pid = edge.proc.pid!
    const before = rssOf(pid)
    // The highest RSS after each hit: a copy shows when it is made, even if the collection of older
    // garbage (the fill's chunks) lowers RSS later.
    let peak = before
    const hits: string[] = []
    for (let i = 0; i < 40; i++) {
      const r = await getFresh(url)
      t.equal(r.hash, sha(body))
      if (r.cache !== null) hits.push(r.cache)
      peak = Math.max(peak, rssOf(pid))
    }
    const grown = peak - before
    t.equal(hits.filter((c) => c === 'HIT').length, 40, 'every request a memory hit')
    t.ok(
      grown < size / 2,
      `RSS peaked ${grown} bytes above its start serving a ${size}-byte object 40 times from two workers`,
    )
  })

  t.test('200 concurrent cold requests cause exactly one shield request and byte-identical bodies', async (t) => {
    const body = randomBytes(3 * 1024 * 1024, 21)
    await topo.store.put('v/wk1/720p/seg_00001.m4s', body)
    const url = edge.url + topo.sign('/v/wk1/720p/seg_00001.m4s')
    const before = await shieldRequests(shield.adminUrl)
    // Connections of their own, so both workers take a share (the kernel hashes each connection).
    const results = await Promise.all(Array.from({ length: 200 }, () => getFresh(url)))
    t.equal(results.filter((r) => r.status === 200).length, 200, 'all 200 OK')
    t.equal(new Set(results.map((r) => r.hash)).size, 1, 'all bodies byte-identical')
    t.equal(results[0]!.hash, sha(body), 'and equal to the stored object')
    t.equal((await shieldRequests(shield.adminUrl)) - before, 1, 'one shield request')
    t.ok((await metric(edge.adminUrl, 'vcdn_edge_cache_coalesced_total')) >= 1, 'the coordinator coalesced them')
    // Workers report finished requests in batches: the coordinator's /metrics counts all 200.
    await waitFor(
      async () =>
        (await metric(edge.adminUrl, 'vcdn_edge_requests_total{status="200",class="2xx",cache="MISS"}')) >= 1 &&
        (await metric(edge.adminUrl, 'vcdn_edge_sent_bytes_total')) >= 200 * body.length,
      { what: 'the workers’ requests in the coordinator’s metrics' },
    )
  })

  /** The prefetcher's counts on /metrics (it runs in the coordinator). */
  const prefetcherCounts = async (): Promise<
    Record<'playlists' | 'filled' | 'failed' | 'dropped' | 'hints', number>
  > => ({
    hints: await metric(edge.adminUrl, 'vcdn_edge_prefetch_hints_total'),
    playlists: await metric(edge.adminUrl, 'vcdn_edge_prefetch_playlists_total'),
    filled: await metric(edge.adminUrl, 'vcdn_edge_prefetch_results_total{result="filled"}'),
    failed: await metric(edge.adminUrl, 'vcdn_edge_prefetch_results_total{result="failed"}'),
    dropped: await metric(edge.adminUrl, 'vcdn_edge_prefetch_dropped_total'),
  })
  let countedByWorkers: Awaited<ReturnType<typeof prefetcherCounts>> | null = null

  t.test('one prefetcher, in the coordinator, follows a player whichever worker serves it', async (t) => {
    const dir = 'v/wk4/720p/'
    const seg = (i: number): string => `seg_${String(i).padStart(5, '0')}.m4s`
    const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:1']
    lines.push('#EXT-X-PLAYLIST-TYPE:VOD', '#EXT-X-MAP:URI="init.mp4"')
    for (let i = 1; i <= 20; i++) lines.push('#EXTINF:2.000,', seg(i))
    lines.push('#EXT-X-ENDLIST', '')
    await topo.store.put(`${dir}index.m3u8`, Buffer.from(lines.join('\n')))
    for (let i = 1; i <= 20; i++) await topo.store.put(dir + seg(i), randomBytes(10_000 + i, 40 + i))
    /** A GET on a connection of its own: the kernel picks the worker, not the player. */
    const getOwn = async (path: string, headers: Record<string, string> = {}): Promise<number> => {
      const agent = new Agent({ pipelining: 0 })
      try {
        const r = await request(edge.url + topo.sign(`/${path}`), { headers, dispatcher: agent })
        const body = Buffer.from(await r.body.arrayBuffer())
        t.equal(r.statusCode, 200, path)
        return body.length
      } finally {
        await agent.close()
      }
    }
    const before = await prefetcherCounts()
    const objects = await metric(edge.adminUrl, 'vcdn_edge_cache_objects')
    await getOwn(`${dir}index.m3u8`)
    await waitFor(async () => (await metric(edge.adminUrl, 'vcdn_edge_cache_objects')) > objects, {
      what: 'the playlist stored',
    })
    // Segments 1, 4, 7, 10 and 13, each on a new connection: each one's next two (prefetch.segments
    // 2) are filled, whichever worker served it and whichever read the playlist.
    let fills = 0
    for (const n of [1, 4, 7, 10, 13]) {
      t.equal(await getOwn(dir + seg(n)), 10_000 + n)
      fills += 2
      await waitFor(async () => (await prefetcherCounts()).filled - before.filled >= fills, {
        timeoutMs: 30_000,
        what: `segments ${n + 1} and ${n + 2} prefetched`,
      })
    }
    // A CMCD next-object hint given to a worker reaches the prefetcher too.
    await getOwn(dir + seg(16), { 'cmcd-request': `nor="${seg(20)}"` })
    fills += 3
    const after = await waitFor(
      async () => {
        const c = await prefetcherCounts()
        return c.filled - before.filled >= fills ? c : null
      },
      { timeoutMs: 30_000, what: 'segments 17, 18 and 20 prefetched' },
    )
    t.equal(after.playlists - before.playlists, 1, 'prefetch_playlists_total: the media playlist, read once')
    t.equal(
      after.filled - before.filled,
      13,
      'prefetch_results_total{result="filled"}: two after each segment, and the hint',
    )
    t.equal(after.hints - before.hints, 1, 'prefetch_hints_total: the CMCD hint')
    t.equal(after.failed - before.failed, 0, 'none failed')
    t.equal(after.dropped - before.dropped, 0, 'none dropped')
    countedByWorkers = after
  })

  t.test('a killed worker is replaced and requests keep succeeding', async (t) => {
    const body = randomBytes(100_000, 23)
    await topo.store.put('v/wk3/480p/seg_00001.m4s', body)
    const url = edge.url + topo.sign('/v/wk3/480p/seg_00001.m4s')
    await warm(url)
    const denied = await fetch(`${edge.adminUrl}/workers/restart?index=1`, { method: 'POST' })
    t.equal(denied.status, 401, 'the admin route needs the tier secret')
    await denied.arrayBuffer()
    const none = await fetch(`${edge.adminUrl}/workers/restart?index=3`, {
      method: 'POST',
      headers: { 'x-vcdn-tier': SECRET },
    })
    t.equal(none.status, 404, 'there is no worker 3')
    await none.arrayBuffer()
    const replacedBefore = await metric(edge.adminUrl, 'vcdn_edge_workers_replaced_total')
    const killed = await fetch(`${edge.adminUrl}/workers/restart?index=1`, {
      method: 'POST',
      headers: { 'x-vcdn-tier': SECRET },
    })
    t.equal(killed.status, 202)
    await killed.arrayBuffer()
    await waitFor(
      async () =>
        (await metric(edge.adminUrl, 'vcdn_edge_workers_replaced_total')) === replacedBefore + 1 &&
        (await metric(edge.adminUrl, 'vcdn_edge_workers')) === 2,
      { what: 'worker 1 replaced' },
    )
    const results = await Promise.all(Array.from({ length: 40 }, () => getFresh(url)))
    t.equal(results.filter((r) => r.status === 200 && r.hash === sha(body)).length, 40, 'every request served')
    t.match(edge.output(), /worker exited: replacing it/)
    // Counters only grow: a worker's end does not take back what it reported.
    if (countedByWorkers !== null) {
      const now = await prefetcherCounts()
      t.ok(now.playlists >= countedByWorkers.playlists, 'prefetch_playlists_total did not fall')
      t.ok(now.filled >= countedByWorkers.filled, 'prefetch_results_total{result="filled"} did not fall')
    }
  })

  t.test('SIGTERM drains the workers (listeners first) and exits 0', async (t) => {
    // uWS aborts the process (exit by SIGABRT) if a thread ends with sockets open (§9.1).
    t.equal(await edge.stop(), 0)
    t.notMatch(edge.output(), /uv_loop_close|Assertion failed/)
  })
})

t.test('a shield with workers: 2', async (t) => {
  const topo = await topology({ shields: 1, shieldExtra: { workers: 2, passUnsafeMethods: true } })
  t.teardown(() => topo.close())
  const shield = topo.shields[0]!
  const originRequests = (): Promise<number> =>
    metric(topo.origin!.adminUrl, 'vcdn_origin_requests_total{status="200"}')

  t.test('50 concurrent cold requests cause exactly one origin request and byte-identical bodies', async (t) => {
    const body = randomBytes(1024 * 1024, 31)
    await topo.store.put('v/wk4/720p/seg_00001.m4s', body)
    const before = await originRequests()
    const results = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const agent = new Agent({ pipelining: 0 })
        try {
          const r = await request(`${shield.url}/v/wk4/720p/seg_00001.m4s`, {
            dispatcher: agent,
            headers: { 'x-vcdn-tier': SECRET },
          })
          return { status: r.statusCode, hash: sha(Buffer.from(await r.body.arrayBuffer())) }
        } finally {
          await agent.close()
        }
      }),
    )
    t.equal(results.filter((r) => r.status === 200).length, 50, 'all 200 OK')
    t.equal(new Set(results.map((r) => r.hash)).size, 1, 'all bodies byte-identical')
    t.equal(results[0]!.hash, sha(body))
    t.equal((await originRequests()) - before, 1, 'one origin request')
  })

  t.test('an unsafe method is passed through a worker with its body, as without workers', async (t) => {
    const send = async (base: string): Promise<{ status: number; body: string }> => {
      const r = await fetch(`${base}/v/wk4/720p/seg_00001.m4s`, {
        method: 'POST',
        headers: { 'x-vcdn-tier': SECRET, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(randomBytes(200_000, 32)),
      })
      return { status: r.status, body: await r.text() }
    }
    const direct = await send(topo.originUrl)
    const through = await send(shield.url)
    t.equal(through.status, direct.status, `the origin's answer (${direct.status})`)
    t.equal(through.body, direct.body)
  })

  t.test('a refusal in a worker is counted by the coordinator', async (t) => {
    const r = await fetch(`${shield.url}/v/wk4/720p/seg_00001.m4s`)
    t.equal(r.status, 401)
    await r.arrayBuffer()
    await waitFor(async () => (await metric(shield.adminUrl, 'vcdn_shield_refused_total{code="ERR_TIER_AUTH"}')) >= 1, {
      what: 'refused_total in the coordinator',
    })
  })
})
