// Soft purge (docs/architecture.md §5.7): the stored answers stay, stale from the purge on, so the
// next request revalidates them with their validators (a 304 keeps the bytes: one small upstream
// request) where a hard purge makes it fetch the whole answer again.
import t from 'tap'
import { bytes, harness, ok, type Harness } from './fixtures/harness.js'

const CACHEABLE = { 'cache-control': 'max-age=3600' }

/** The upstream: 304 to a request whose If-None-Match is the body's ETag, the body otherwise. */
function validatingUpstream(h: Harness, bodyOf: (key: string) => Buffer): void {
  h.upstream.handler = (key, init) => {
    const etag = `"${key.length}-${bodyOf(key).length}"`
    if (init.headers['if-none-match'] === etag) {
      return { status: 304, headers: { ...CACHEABLE, etag }, body: (async function* () {})() }
    }
    return ok(bodyOf(key), { ...CACHEABLE, etag })
  }
}

for (const where of ['memory', 'disk only'] as const) {
  void t.test(`a soft-purged key (${where}) is revalidated once, then served as a HIT again`, async (t) => {
    // Disk only: objects above memoryObjectMaxBytes never enter the memory tier.
    const h = await harness(t, where === 'disk only' ? { memoryObjectMaxBytes: 1000 } : {})
    const body = bytes(50_000, 7)
    validatingUpstream(h, () => body)
    const key = '/v/sp/720p/seg_00001.m4s'
    t.equal((await h.get(key)).result.outcome, 'MISS')
    t.equal((await h.get(key)).result.outcome, 'HIT')
    t.same(await h.engine.purge({ key }, 'soft'), { removed: 1 })
    t.ok(h.engine.has(key), 'the object stays stored')
    const after = await h.get(key)
    t.equal(after.result.outcome, 'REVALIDATED')
    t.ok(after.sink.body.equals(body), 'the stored bytes are served')
    t.equal(h.upstream.calls.length, 2, 'one upstream request after the purge')
    t.equal(h.upstream.calls[1]?.headers['if-none-match'], `"${key.length}-${body.length}"`, 'it is conditional')
    t.equal((await h.get(key)).result.outcome, 'HIT', 'the 304 freshened it')
    t.equal(h.upstream.calls.length, 2)
  })
}

void t.test('a hard purge of the same key refetches the whole answer', async (t) => {
  const h = await harness(t)
  const body = bytes(50_000, 8)
  validatingUpstream(h, () => body)
  const key = '/v/hp/720p/seg_00001.m4s'
  await h.get(key)
  t.same(await h.engine.purge({ key }, 'hard'), { removed: 1 })
  const after = await h.get(key)
  t.equal(after.result.outcome, 'MISS')
  t.equal(h.upstream.calls[1]?.headers['if-none-match'], undefined, 'unconditional')
})

void t.test('a soft purge by prefix marks every key below it, variants included, and nothing else', async (t) => {
  const h = await harness(t, { memoryObjectMaxBytes: 3000 })
  // Small objects live in memory and on disk, large ones on disk only.
  validatingUpstream(h, (key) => bytes(key.includes('seg') ? 20_000 : 2000, key.length))
  const inside = ['/v/pa/master.m3u8', '/v/pa/720p/index.m3u8', '/v/pa/720p/seg_00001.m4s']
  const outside = ['/v/pab/master.m3u8', '/v/p/seg_00001.m4s']
  for (const key of [...inside, ...outside]) await h.get(key)
  // A varying answer below the prefix: stored under its variant key.
  const varying = '/v/pa/720p/init.mp4'
  h.upstream.handler = (key, init) =>
    init.headers['if-none-match'] === '"init"'
      ? {
          status: 304,
          headers: { ...CACHEABLE, etag: '"init"', vary: 'accept-encoding' },
          body: (async function* () {})(),
        }
      : ok(bytes(1000, 9), { ...CACHEABLE, etag: '"init"', vary: 'accept-encoding' })
  await h.get(varying, { 'accept-encoding': 'gzip' })
  t.equal((await h.get(varying, { 'accept-encoding': 'gzip' })).result.outcome, 'HIT')
  validatingUpstream(h, (key) => bytes(key.includes('seg') ? 20_000 : 2000, key.length))

  t.same(await h.engine.purge({ prefix: '/v/pa/' }, 'soft'), { removed: inside.length + 1 })
  for (const key of outside) t.equal((await h.get(key)).result.outcome, 'HIT', `${key} is outside the prefix`)
  const calls = h.upstream.calls.length
  for (const key of inside) t.equal((await h.get(key)).result.outcome, 'REVALIDATED', key)
  t.equal(h.upstream.calls.length, calls + inside.length, 'one conditional request each')
  h.upstream.handler = (_key, init) => {
    t.equal(init.headers['if-none-match'], '"init"', 'the variant is revalidated with its own ETag')
    return {
      status: 304,
      headers: { ...CACHEABLE, etag: '"init"', vary: 'accept-encoding' },
      body: (async function* () {})(),
    }
  }
  t.equal((await h.get(varying, { 'accept-encoding': 'gzip' })).result.outcome, 'REVALIDATED')
})

void t.test('a soft purge of a key leaves keys that merely start with it alone', async (t) => {
  const h = await harness(t)
  validatingUpstream(h, (key) => bytes(2000, key.length))
  await h.get('/v/k/index.m3u8')
  await h.get('/v/k/index.m3u8.bak')
  t.same(await h.engine.purge({ key: '/v/k/index.m3u8' }, 'soft'), { removed: 1 })
  t.equal((await h.get('/v/k/index.m3u8.bak')).result.outcome, 'HIT')
  t.equal((await h.get('/v/k/index.m3u8')).result.outcome, 'REVALIDATED')
})

void t.test('a soft purge is in the index: after a restart the object is still revalidated', async (t) => {
  const h = await harness(t)
  const body = bytes(50_000, 10)
  validatingUpstream(h, () => body)
  const key = '/v/rs/720p/seg_00001.m4s'
  await h.get(key)
  await h.engine.purge({ key }, 'soft')
  await h.engine.close()
  await h.open()
  const after = await h.get(key)
  t.equal(after.result.outcome, 'REVALIDATED')
  t.ok(after.sink.body.equals(body))
})

void t.test('an answer without validators is fetched whole after a soft purge', async (t) => {
  const h = await harness(t)
  let n = 0
  h.upstream.handler = () => ok(Buffer.from(`version ${++n}`), CACHEABLE)
  const key = '/v/nv/master.m3u8'
  await h.get(key)
  await h.engine.purge({ key }, 'soft')
  const after = await h.get(key)
  t.equal(after.sink.body.toString(), 'version 2', 'the new answer')
  t.equal(h.upstream.calls[1]?.headers['if-none-match'], undefined)
  t.equal((await h.get(key)).result.outcome, 'HIT')
})
