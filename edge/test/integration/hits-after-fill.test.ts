// After a fill's first complete response, every later request for the key is a HIT and the
// upstream saw one request per key, with real processes (edge → shield → origin on 127.0.0.1).
// What the large-hit bench's warm-up met: 2 MB objects answered MISS several times in a row after
// their first whole response. None of those went upstream; they joined the fill while it was being
// committed (fsync, rename, index row: slow on a busy disk) and were labelled MISS although the
// cache held the whole body. Such a request now waits for the commit and is answered from the
// stored copy: a HIT, and a HIT means stored (docs/architecture.md §5.3).
import t from 'tap'
import { createHash } from 'node:crypto'
import { metric } from '../../../shared/testing/index.js'
import { randomBytes, topology, type Topology } from './topology.js'

const MIB = 1024 * 1024
const SEGMENT_BYTES = 2 * MIB
const sha = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex')
const segment = (video: string, i: number): string => `v/${video}/720p/seg_${String(i).padStart(5, '0')}.m4s`

interface Answer {
  xCache: string
  sha: string
  bytes: number
}

async function get(topo: Topology, key: string): Promise<Answer> {
  const res = await fetch(topo.edge.url + topo.sign('/' + key))
  const body = Buffer.from(await res.arrayBuffer())
  return { xCache: `${res.status} ${res.headers.get('x-cache') ?? '-'}`, sha: sha(body), bytes: body.length }
}

async function upstreamRequests(topo: Topology): Promise<{ edge: number; shield: number }> {
  return {
    edge: await metric(topo.edge.adminUrl, 'vcdn_edge_upstream_requests_total'),
    shield: await metric(topo.shields[0]!.adminUrl, 'vcdn_shield_upstream_requests_total'),
  }
}

t.test('hits after a completed fill', async (t) => {
  // An edge memory tier smaller than the distinct objects below (they turn it over: the disk tier
  // answers what memory dropped), one large enough for one object.
  const topo = await topology({ shields: 1, edgeCache: { memoryMaxBytes: 16 * MIB, maxBytes: 512 * MIB } })
  t.teardown(() => topo.close())

  t.test('one 2 MB object requested sequentially is a HIT every time after its first response', async (t) => {
    const key = segment('one', 1)
    const body = randomBytes(SEGMENT_BYTES, 101)
    await topo.store.put(key, body)
    const before = await upstreamRequests(topo)
    const objectsBefore = await metric(topo.edge.adminUrl, 'vcdn_edge_cache_objects')
    const answers: Answer[] = [await get(topo, key), await get(topo, key)]
    // Read at once after the first HIT, without polling.
    const objects = await metric(topo.edge.adminUrl, 'vcdn_edge_cache_objects')
    t.equal(objects - objectsBefore, 1, 'the first HIT came once the object was stored')
    for (let i = 2; i < 8; i++) answers.push(await get(topo, key))
    t.same(
      answers.map((a) => a.xCache),
      ['200 MISS', ...Array.from({ length: 7 }, () => '200 HIT')],
      'MISS once, then HIT',
    )
    t.ok(
      answers.every((a) => a.bytes === SEGMENT_BYTES && a.sha === sha(body)),
      'every body whole and identical',
    )
    const after = await upstreamRequests(topo)
    t.equal(after.edge - before.edge, 1, 'the edge asked its shield once')
    t.equal(after.shield - before.shield, 1, 'the shield asked the origin once')
  })

  t.test('distinct 2 MB objects beyond the memory tier: each one upstream request, HITs after', async (t) => {
    const count = 16
    const keys = Array.from({ length: count }, (_, i) => segment('many', i + 1))
    const shas = new Map<string, string>()
    for (const [i, key] of keys.entries()) {
      const body = randomBytes(SEGMENT_BYTES, 200 + i)
      shas.set(key, sha(body))
      await topo.store.put(key, body)
    }
    const before = await upstreamRequests(topo)
    const hitsBefore = await metric(topo.edge.adminUrl, 'vcdn_edge_cache_hits_total')
    const wrong: string[] = []
    const check = (key: string, a: Answer, want: string): void => {
      if (a.xCache !== want || a.bytes !== SEGMENT_BYTES || a.sha !== shas.get(key))
        wrong.push(`${key}: ${a.xCache} (${a.bytes} B), expected ${want}`)
    }
    // Each key: its first request fills, the next two follow at once (while the fill commits).
    for (const key of keys) {
      check(key, await get(topo, key), '200 MISS')
      check(key, await get(topo, key), '200 HIT')
      check(key, await get(topo, key), '200 HIT')
    }
    // Again, after 32 MiB went through a 16 MiB memory tier: the early keys come from disk.
    for (const key of keys) check(key, await get(topo, key), '200 HIT')
    t.same(wrong, [], 'MISS once per key, then HITs with the whole body')
    const after = await upstreamRequests(topo)
    t.equal(after.edge - before.edge, count, 'the edge asked its shield once per key')
    t.equal(after.shield - before.shield, count, 'the shield asked the origin once per key')
    const hits = (await metric(topo.edge.adminUrl, 'vcdn_edge_cache_hits_total')) - hitsBefore
    t.equal(hits, 3 * count, 'the edge counted every later request a hit')
  })
})
