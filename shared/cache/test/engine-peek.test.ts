// peekBody: what the edge's prefetcher reads its media playlists with (docs/architecture.md §6).
import t from 'tap'
import { bytes, deferred, harness, ok } from './fixtures/harness.js'

const KEY = '/v/abc/720p/index.m3u8'

void t.test('peekBody reads a fresh stored body without counting a hit, from memory or disk', async (t) => {
  const h = await harness(t, { memoryObjectMaxBytes: 1024 })
  const small = bytes(500, 1)
  const large = bytes(5000, 2)
  h.upstream.handler = async (key) => ok(key.endsWith('large.m3u8') ? large : small)
  await h.get(KEY)
  await h.get('/v/abc/720p/large.m3u8')
  const hits = h.engine.counters.hits
  t.same(await h.engine.peekBody(KEY, 1 << 20), small, 'from memory')
  t.same(await h.engine.peekBody('/v/abc/720p/large.m3u8', 1 << 20), large, 'from disk')
  t.equal(h.engine.counters.hits, hits, 'no hit counted')
  t.equal(await h.engine.peekBody(KEY, 100), null, 'larger than asked for')
  t.equal(await h.engine.peekBody('/v/abc/720p/absent.m3u8', 1 << 20), null, 'absent')
  h.clock.now += 3_000 // past the playlist's default freshness in the harness
  t.equal(await h.engine.peekBody(KEY, 1 << 20), null, 'stale')
})

void t.test('peekBody waits for a fill in flight and reads what it committed', async (t) => {
  const h = await harness(t)
  const body = bytes(700, 3)
  const gate = deferred()
  h.upstream.handler = async () => {
    await gate.promise
    return ok(body)
  }
  const filling = h.engine.prefetch(KEY)
  const peeked = h.engine.peekBody(KEY, 1 << 20)
  gate.resolve()
  t.equal(await filling, 'filled')
  t.same(await peeked, body)
})

void t.test('peekBody does not read a stored error answer', async (t) => {
  const h = await harness(t)
  h.upstream.handler = async () => ok(Buffer.from('{"error":"nf"}'), {}, 404)
  await h.get(KEY)
  t.equal(await h.engine.peekBody(KEY, 1 << 20), null)
})
