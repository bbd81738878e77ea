// What a worker thread needs of the engine to answer hits itself (docs/architecture.md §9.1): the
// fresh memory entry of a key (sharedEntry), a listener told of every entry that leaves, is replaced
// or changes (watchMemory), the worker's hits counted as the engine's (countLocalHits), and
// serveEntry, which answers from a copy of an entry exactly as the engine does.
import t from 'tap'
import { memoryEntry, serveEntry, variantKey, type MemoryEntry, type ServeRequest } from '../index.js'
import { bytes, FakeSink, harness, ok, type Harness } from './fixtures/harness.js'

const KEY = '/v/se/720p/seg_00001.m4s'

/** An upstream answering `body` with an ETag, and 304 to a request that names it. */
function validating(h: Harness, body: () => Buffer, etag: () => string, maxAgeS = 60): void {
  h.upstream.handler = (_key, init) => {
    const headers = {
      'cache-control': `max-age=${maxAgeS}`,
      etag: etag(),
      'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT',
    }
    if (init.headers['if-none-match'] === etag()) return { status: 304, headers, body: (async function* () {})() }
    return ok(body(), headers)
  }
}

/** A worker's copy of an entry: the same object, body and generation, none of the engine's caches. */
function copyOf(entry: MemoryEntry): MemoryEntry {
  return memoryEntry(entry.obj, entry.body, false, entry.generation)
}

void t.test('sharedEntry gives a fresh memory entry in shared memory, and nothing else', async (t) => {
  const plain = await harness(t)
  validating(
    plain,
    () => bytes(10_000, 1),
    () => '"a"',
  )
  await plain.get(KEY)
  t.equal(plain.engine.sharedEntry(KEY), null, 'a body outside shared memory is not offered')

  const h = await harness(t, { isMemoryShared: true })
  validating(
    h,
    () => bytes(10_000, 1),
    () => '"a"',
  )
  t.equal(h.engine.sharedEntry(KEY), null, 'nothing stored yet')
  await h.get(KEY)
  const entry = h.engine.sharedEntry(KEY)
  t.ok(entry !== null && entry.body.buffer instanceof SharedArrayBuffer, 'offered, its body shared')
  t.equal(entry?.obj.key, KEY)
  h.clock.now += 61_000
  t.equal(h.engine.sharedEntry(KEY), null, 'a stale entry is not offered')

  const prefetched = '/v/se/720p/seg_00002.m4s'
  t.equal(await h.engine.prefetch(prefetched), 'filled')
  t.equal(h.engine.sharedEntry(prefetched), null, 'a prefetched entry is not offered before its first hit')
  t.equal((await h.get(prefetched)).result.outcome, 'HIT')
  t.equal(h.engine.counters.prefetchUsed, 1, 'the first hit is the engine’s: it counts the prefetch used')
  t.not(h.engine.sharedEntry(prefetched), null, 'then it is offered')
})

void t.test('watchMemory hears every change of a memory entry, and a hit changes nothing', async (t) => {
  const h = await harness(t, { isMemoryShared: true, memoryMaxBytes: 64 * 1024 })
  let etag = '"1"'
  let body = bytes(4000, 2)
  validating(
    h,
    () => body,
    () => etag,
  )
  const heard: string[] = []
  h.engine.watchMemory((key) => heard.push(key))
  await h.get(KEY)
  t.same(heard, [], 'storing a new key is no change of an offered one')
  const first = h.engine.sharedEntry(KEY)?.generation
  t.equal((await h.get(KEY)).result.outcome, 'HIT')
  t.same(heard, [], 'a hit changes nothing')

  await h.engine.purge({ key: KEY }, 'soft')
  t.same(heard, [KEY], 'a soft purge')
  t.equal((await h.get(KEY)).result.outcome, 'REVALIDATED')
  t.same(heard, [KEY, KEY], 'a 304 that freshened the stored headers')
  const revalidated = h.engine.sharedEntry(KEY)?.generation
  t.ok(first !== undefined && revalidated !== undefined && revalidated !== first, 'each change is a new generation')

  h.clock.now += 61_000
  etag = '"2"'
  body = bytes(4000, 3)
  t.equal((await h.get(KEY)).result.outcome, 'MISS')
  t.ok(heard.length >= 3 && heard.slice(2).every((k) => k === KEY), 'a newer fill replacing it')
  t.ok(h.engine.sharedEntry(KEY)?.body.equals(body), 'the new version is offered')

  heard.length = 0
  await h.engine.purge({ key: KEY })
  t.same(heard, [KEY], 'a hard purge')

  heard.length = 0
  await h.get(KEY)
  // The memory budget holds a few of these; filling others evicts the least recently used.
  for (let i = 1; i <= 12; i++) await h.get(`/v/se/720p/other_${i}.m4s`)
  t.ok(heard.includes(KEY), 'an eviction from the memory tier')
  t.equal(h.engine.sharedEntry(KEY), null)
})

void t.test('countLocalHits counts a worker’s hits as the engine’s own', async (t) => {
  const h = await harness(t, { isMemoryShared: true })
  validating(
    h,
    () => bytes(1000, 4),
    () => '"c"',
  )
  await h.get(KEY)
  const entry = h.engine.sharedEntry(KEY)
  const before = h.engine.counters.hits
  h.engine.countLocalHits(KEY, entry?.generation ?? 0, 7)
  h.engine.countLocalHits(KEY, -1, 2)
  t.equal(h.engine.counters.hits, before + 9, 'hits of an older version count too: they were hits')
})

void t.test('serveEntry answers from a copy of an entry exactly as the engine answers', async (t) => {
  const h = await harness(t, { isMemoryShared: true })
  const body = bytes(50_000, 5)
  validating(
    h,
    () => body,
    () => '"e"',
  )
  await h.get(KEY)
  h.clock.now += 3_500 // an Age of 3 s in both answers
  const entry = h.engine.sharedEntry(KEY)
  if (entry === null) throw new Error('no shared entry')
  const copy = copyOf(entry)
  const cases: [string, 'GET' | 'HEAD', Record<string, string>][] = [
    ['a plain GET', 'GET', {}],
    ['a HEAD', 'HEAD', {}],
    ['a Range', 'GET', { range: 'bytes=100-1099' }],
    ['a suffix Range', 'GET', { range: 'bytes=-500' }],
    ['an unsatisfiable Range', 'GET', { range: 'bytes=60000-' }],
    ['a multi-range (answered whole)', 'GET', { range: 'bytes=0-1,5-6' }],
    ['an If-None-Match that matches', 'GET', { 'if-none-match': '"e"' }],
    ['an If-None-Match that does not', 'GET', { 'if-none-match': '"x"' }],
    ['an If-Modified-Since after Last-Modified', 'GET', { 'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' }],
    ['an If-Match that fails', 'GET', { 'if-match': '"x"' }],
    ['a Range whose If-Range does not match', 'GET', { range: 'bytes=0-9', 'if-range': '"x"' }],
  ]
  for (const [what, method, headers] of cases) {
    const engine = new FakeSink()
    const fromEngine = await h.engine.serve({ method, key: KEY, headers }, engine)
    const local = new FakeSink()
    const fromCopy = serveEntry(copy, { method, key: KEY, headers }, local, 'HIT', null, h.clock.now)
    t.same(fromCopy, fromEngine, `${what}: the same result (${fromEngine.status})`)
    t.same(local.headers, engine.headers, `${what}: the same headers`)
    t.equal(local.contentLength, engine.contentLength, `${what}: the same Content-Length`)
    t.ok(local.body.equals(engine.body), `${what}: the same bytes`)
  }
})

void t.test(
  'sharedEntryFor hands out the variant a request selects, with the Vary fields that select it',
  async (t) => {
    const h = await harness(t, { isMemoryShared: true })
    h.upstream.handler = (_key, init) => {
      const lang = init.headers['accept-language'] ?? 'none'
      return ok(Buffer.from(`body in ${lang}`), { 'cache-control': 'max-age=60', vary: 'Accept-Language' })
    }
    const en: ServeRequest = { method: 'GET', key: KEY, headers: { 'accept-language': 'en' } }
    const fr: ServeRequest = { method: 'GET', key: KEY, headers: { 'accept-language': 'fr' } }
    t.equal(h.engine.sharedEntryFor(en), null, 'nothing stored yet')
    await h.get(KEY, { 'accept-language': 'en' })
    t.equal(h.engine.sharedEntry(KEY), null, 'nothing under the plain key')
    const offered = h.engine.sharedEntryFor(en)
    t.same(offered?.vary, ['accept-language'], 'the fields that select the variant')
    t.equal(
      offered?.entry.obj.key,
      variantKey(KEY, ['accept-language'], { 'accept-language': 'en' }),
      'its variant key',
    )
    t.equal(offered?.entry.body.toString(), 'body in en')
    t.equal(h.engine.sharedEntryFor(fr), null, 'another language: not stored yet')
    await h.get(KEY, { 'accept-language': 'fr' })
    t.equal(h.engine.sharedEntryFor(fr)?.entry.body.toString(), 'body in fr', 'then its own variant')
    // The request's fields win over its source's, as in serve().
    const viaSource: ServeRequest = { ...fr, headers: {}, source: { headers: { 'accept-language': 'en' } } }
    t.equal(h.engine.sharedEntryFor(viaSource)?.entry.body.toString(), 'body in en', 'a source header selects too')

    const plain = '/v/se/720p/seg_00003.m4s'
    h.upstream.handler = () => ok(bytes(1000, 3), { 'cache-control': 'max-age=60' })
    await h.get(plain)
    t.same(
      h.engine.sharedEntryFor({ method: 'GET', key: plain, headers: {} })?.vary,
      null,
      'a plain entry has no fields',
    )
  },
)
