// What the engine keeps per distinct key is bounded: the memory budget counts what an entry
// really costs (body + key + headers + bookkeeping), not only its body, so a flood of tiny 404s
// cannot hold hundreds of thousands of entries under a budget meant for bytes of video.
import t from 'tap'
import { harness, ok, until } from './fixtures/harness.js'

const NOT_FOUND = Buffer.from('{"error":{"code":"ERR_NOT_FOUND","message":"not found"}}')
const HEADERS = {
  'content-type': 'application/json',
  'cache-control': 'public, max-age=10',
  date: 'Wed, 02 Dec 2026 00:00:00 GMT',
}

void t.test('a 404 entry is counted at its body plus its key, headers and bookkeeping', async (t) => {
  const h = await harness(t)
  h.upstream.handler = () => ok(NOT_FOUND, HEADERS, 404)
  const key = '/v/missing/seg_1.m4s'
  t.equal((await h.get(key)).result.status, 404)
  t.equal((await h.get(key)).result.outcome, 'HIT', 'the 404 is in the memory tier')
  let headerChars = 0
  for (const [name, value] of Object.entries({ ...HEADERS, 'content-length': String(NOT_FOUND.length) }))
    headerChars += name.length + value.length
  const memoryBytes = h.engine.counters.memoryBytes
  t.ok(
    memoryBytes >= NOT_FOUND.length + key.length + headerChars + 512,
    `${memoryBytes} bytes counted for a ${NOT_FOUND.length}-byte body`,
  )
})

void t.test('a 100 kB memory tier holds only as many 404s as their real cost allows', async (t) => {
  const memoryMaxBytes = 100_000
  const h = await harness(t, { memoryMaxBytes })
  h.upstream.handler = () => ok(NOT_FOUND, HEADERS, 404)
  // 1 000 bodies of 56 bytes are 56 kB: counted by body alone they would all fit.
  const count = 1000
  for (let i = 0; i < count; i++) await h.get(`/v/flood/${i}.m4s`)
  t.ok(h.engine.counters.memoryBytes <= memoryMaxBytes)
  const callsBefore = h.upstream.calls.length
  let hits = 0
  // Newest first: a miss re-inserted here evicts only older keys, asked for later anyway.
  for (let i = count - 1; i >= 0; i--) if ((await h.get(`/v/flood/${i}.m4s`)).result.outcome === 'HIT') hits++
  t.ok(hits > 0, `the newest entries stay (${hits} hits)`)
  t.ok(hits <= memoryMaxBytes / (NOT_FOUND.length + 512), `at most the budget's worth of entries stay (${hits} hits)`)
  t.equal(h.upstream.calls.length - callsBefore, count - hits, 'the evicted ones go upstream again')
})

void t.test('404s never reach the disk tier: no index rows, no object files', async (t) => {
  const h = await harness(t)
  h.upstream.handler = () => ok(NOT_FOUND, HEADERS, 404)
  for (let i = 0; i < 200; i++) await h.get(`/v/none/${i}.m4s`)
  t.match(h.engine.counters, { objects: 0, diskBytes: 0 })
})

void t.test(
  'distinct tiny objects on disk are bounded by maxBytes counting each file block and index row',
  async (t) => {
    const maxBytes = 400_000
    const h = await harness(t, { maxBytes, memoryObjectMaxBytes: 1 })
    h.upstream.handler = () => ok(Buffer.from('x'), { 'cache-control': 'max-age=3600' })
    // 200 one-byte objects are 200 bytes; as 200 files and index rows they are ~800 kB.
    for (let i = 0; i < 200; i++) await h.get(`/v/tiny/${i}.m4s`)
    await until(() => h.engine.counters.objects * 4096 <= maxBytes, 'eviction of tiny objects')
    const c = h.engine.counters
    t.ok(c.evictions > 0, `${c.evictions} evicted`)
    t.ok(c.objects * 4096 <= maxBytes, `${c.objects} objects stay`)
    t.equal((await h.get('/v/tiny/199.m4s')).result.outcome, 'HIT', 'the newest stays')
  },
)

void t.test('objects stored within one clock millisecond are evicted oldest first', async (t) => {
  // The harness clock stands still, so every object below is stored at the same millisecond.
  const maxBytes = 400_000
  const h = await harness(t, { maxBytes, memoryObjectMaxBytes: 1 })
  h.upstream.handler = () => ok(Buffer.from('x'), { 'cache-control': 'max-age=3600' })
  const n = 200
  for (let i = 0; i < n; i++) await h.get(`/v/order/${i}.m4s`)
  await until(() => h.engine.counters.objects * 4096 <= maxBytes, 'eviction of tiny objects')
  const kept = Array.from({ length: n }, (_, i) => i).filter((i) => h.engine.has(`/v/order/${i}.m4s`))
  t.ok(kept.length > 0 && kept.length < n, `${kept.length} of ${n} kept`)
  const firstKept = kept[0] ?? n
  t.same(
    kept,
    Array.from({ length: n - firstKept }, (_, i) => firstKept + i),
    'the kept ones are the newest',
  )
})
