// Request → upstream reply → expectation, for the basic paths of the engine.
import t from 'tap'
import { bytes, harness, ok } from './fixtures/harness.js'

const SEG = '/v/abc/720p/seg_00001.m4s'

void t.test('serves a MISS then a memory HIT with one upstream call and the forwarded headers', async (t) => {
  const h = await harness(t)
  const body = bytes(10_000)
  h.upstream.handler = () =>
    ok(body, { etag: '"e1"', 'cache-control': 'public, max-age=60', 'x-cache': 'HIT', age: '3' })
  const first = await h.get(SEG)
  t.equal(first.result.outcome, 'MISS')
  t.equal(first.sink.status, 200)
  t.equal(first.sink.contentLength, body.length)
  t.ok(first.sink.body.equals(body))
  t.match(first.sink.headers, {
    'x-cache': 'MISS',
    'x-cache-upstream': 'HIT',
    etag: '"e1"',
    age: '3',
    'accept-ranges': 'bytes',
    'cache-control': 'public, max-age=60',
  })
  h.clock.now += 5_000
  const second = await h.get(SEG)
  t.same(second.result, { outcome: 'HIT', status: 200, bytes: body.length, upstreamMs: null })
  t.ok(second.sink.body.equals(body))
  t.match(second.sink.headers, { 'x-cache': 'HIT', 'x-cache-upstream': 'HIT', age: '8' })
  t.equal(h.upstream.calls.length, 1)
  t.match(h.engine.counters, { hits: 1, misses: 1, fills: 1, upstreamRequests: 1, objects: 1, diskBytes: body.length })
  t.ok(h.engine.counters.memoryBytes >= body.length)
  t.ok(h.engine.has(SEG))
  t.notOk(h.engine.has('/v/abc/other.m4s'))
})

void t.test('serves a HIT from disk after the engine is reopened on the same dir', async (t) => {
  const h = await harness(t)
  const body = bytes(200_000, 7)
  h.upstream.handler = () => ok(body, { 'last-modified': 'Tue, 31 Dec 2024 00:00:00 GMT' })
  await h.get(SEG)
  await h.engine.close()
  const reopened = await h.open()
  t.equal(reopened.counters.objects, 1)
  t.equal(reopened.counters.diskBytes, body.length)
  const again = await h.get(SEG)
  t.equal(again.result.outcome, 'HIT')
  t.ok(again.sink.body.equals(body))
  t.equal(again.sink.headers?.['last-modified'], 'Tue, 31 Dec 2024 00:00:00 GMT')
  t.equal(h.upstream.calls.length, 1, 'no upstream call after reopening')
})

void t.test('streams large disk hits with backpressure and promotes small ones into memory', async (t) => {
  const h = await harness(t, { memoryObjectMaxBytes: 100_000 })
  const big = bytes(1_000_000, 3)
  const small = bytes(50_000, 4)
  h.upstream.handler = (key) => ok(key.endsWith('big.mp4') ? big : small)
  await h.get('/v/a/big.mp4')
  await h.get('/v/a/small.mp4')
  await h.engine.close()
  await h.open({ memoryObjectMaxBytes: 100_000 })
  const { FakeSink } = await import('./fixtures/harness.js')
  const sink = new FakeSink()
  sink.pause()
  const pending = h.engine.serve({ method: 'GET', key: '/v/a/big.mp4', headers: {} }, sink)
  await sink.firstChunk.promise
  const writesWhilePaused = sink.writes
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.equal(sink.writes, writesWhilePaused, 'no further writes until the client drains')
  sink.release()
  const result = await pending
  t.equal(result.outcome, 'HIT')
  t.ok(sink.body.equals(big))
  t.ok(sink.writes > 1, 'streamed in several chunks')
  t.equal(h.engine.counters.memoryBytes, 0)
  const s1 = await h.get('/v/a/small.mp4')
  t.ok(s1.sink.body.equals(small))
  // The memory tier counts an entry's body plus its key, headers and bookkeeping (a few kB at most).
  const memoryBytes = h.engine.counters.memoryBytes
  t.ok(memoryBytes > small.length && memoryBytes < small.length + 4096, 'small object promoted into memory')
  t.equal(h.upstream.calls.length, 2)
})

void t.test('answers HEAD with headers only, on a miss and on a hit', async (t) => {
  const h = await harness(t)
  const body = bytes(1234)
  h.upstream.handler = () => ok(body)
  const miss = await h.get(SEG, {}, 'HEAD')
  t.equal(miss.sink.status, 200)
  t.equal(miss.sink.contentLength, 1234)
  t.equal(miss.sink.received, 0)
  t.ok(miss.sink.isEnded)
  const hit = await h.get(SEG, {}, 'HEAD')
  t.equal(hit.result.outcome, 'HIT')
  t.equal(hit.sink.contentLength, 1234)
  t.equal(hit.sink.received, 0)
  t.equal(h.upstream.calls.length, 1, 'the HEAD miss did a full GET fill')
})

void t.test(
  'answers single ranges with 206 on hit and miss, 416 when unsatisfiable and 200 for malformed or multi ranges',
  async (t) => {
    const h = await harness(t)
    const body = bytes(100_000, 9)
    h.upstream.handler = () => ok(body, {}, 200, 10_000)
    const miss = await h.get(SEG, { range: 'bytes=15000-34999' })
    t.equal(miss.result.outcome, 'MISS')
    t.equal(miss.sink.status, 206)
    t.equal(miss.sink.headers?.['content-range'], 'bytes 15000-34999/100000')
    t.equal(miss.sink.contentLength, 20_000)
    t.ok(miss.sink.body.equals(body.subarray(15_000, 35_000)))

    const cases: Array<[string, number, string | undefined, Buffer]> = [
      ['bytes=0-0', 206, 'bytes 0-0/100000', body.subarray(0, 1)],
      ['bytes=99990-', 206, 'bytes 99990-99999/100000', body.subarray(99_990)],
      ['bytes=-10', 206, 'bytes 99990-99999/100000', body.subarray(99_990)],
      ['bytes=100000-', 416, 'bytes */100000', Buffer.alloc(0)],
      ['bytes=9-1', 200, undefined, body],
      ['bytes=0-1,5-6', 200, undefined, body],
      ['pages=1', 200, undefined, body],
    ]
    for (const [range, status, contentRange, want] of cases) {
      const hit = await h.get(SEG, { range })
      t.equal(hit.result.outcome, 'HIT', range)
      t.equal(hit.sink.status, status, range)
      t.equal(hit.sink.headers?.['content-range'], contentRange, range)
      t.ok(hit.sink.body.equals(want), range)
      t.equal(hit.sink.contentLength, want.length, range)
    }
    t.equal(h.upstream.calls.length, 1, 'never a separate upstream range request')
    t.same(h.upstream.calls[0]?.headers, {}, 'the fill asks for the full object')
  },
)

void t.test('answers 304 on If-None-Match and If-Modified-Since, for hits and fresh fills', async (t) => {
  const h = await harness(t)
  const lm = 'Tue, 31 Dec 2024 00:00:00 GMT'
  h.upstream.handler = () => ok(bytes(500), { etag: 'W/"v1"', 'last-modified': lm, 'cache-control': 'max-age=600' })
  const fresh = await h.get(SEG, { 'if-none-match': '"v1"' })
  t.equal(fresh.result.outcome, 'MISS')
  t.equal(fresh.sink.status, 304)
  t.equal(fresh.sink.received, 0)
  t.match(fresh.sink.headers, { etag: 'W/"v1"', 'cache-control': 'max-age=600', 'last-modified': lm })
  t.notOk(fresh.sink.headers?.['content-type'])
  const inm = await h.get(SEG, { 'if-none-match': '"other", W/"v1"' })
  t.equal(inm.sink.status, 304)
  t.equal(inm.result.outcome, 'HIT')
  const ims = await h.get(SEG, { 'if-modified-since': lm })
  t.equal(ims.sink.status, 304)
  const older = await h.get(SEG, { 'if-modified-since': 'Mon, 30 Dec 2024 00:00:00 GMT' })
  t.equal(older.sink.status, 200)
  t.equal(older.sink.received, 500)
  const mismatch = await h.get(SEG, { 'if-none-match': '"v2"', 'if-modified-since': lm })
  t.equal(mismatch.sink.status, 200, 'If-Modified-Since is ignored when If-None-Match is present')
})

void t.test('caches a 404 for negativeTtlMs only', async (t) => {
  const h = await harness(t, { negativeTtlMs: 5_000 })
  h.upstream.handler = () => ok(Buffer.from('nope'), { 'content-type': 'text/plain' }, 404)
  const a = await h.get('/v/missing/x.m4s')
  t.equal(a.sink.status, 404)
  t.equal(a.result.outcome, 'MISS')
  h.clock.now += 4_999
  const b = await h.get('/v/missing/x.m4s')
  t.equal(b.sink.status, 404)
  t.equal(b.result.outcome, 'HIT')
  t.equal(b.sink.body.toString(), 'nope')
  t.equal(h.upstream.calls.length, 1)
  h.clock.now += 1
  const c = await h.get('/v/missing/x.m4s')
  t.equal(c.result.outcome, 'MISS')
  t.equal(h.upstream.calls.length, 2)
  t.equal(h.engine.counters.objects, 0, 'negative answers stay out of the disk index')
})

void t.test('never caches 5xx and passes its status and body through', async (t) => {
  const h = await harness(t)
  h.upstream.handler = () => ok(Buffer.from('boom'), { 'content-type': 'text/plain' }, 503)
  const a = await h.get(SEG)
  t.equal(a.sink.status, 503)
  t.equal(a.result.outcome, 'MISS')
  t.equal(a.sink.body.toString(), 'boom')
  const b = await h.get(SEG)
  t.equal(b.sink.status, 503)
  t.equal(h.upstream.calls.length, 2)
  t.notOk(h.engine.has(SEG))
})

void t.test('passes no-store and private responses through without storing them', async (t) => {
  const h = await harness(t)
  for (const cc of ['no-store', 'private, max-age=60']) {
    const key = `/v/p/${cc.length}.m4s`
    h.upstream.handler = () => ok(Buffer.from('secret'), { 'cache-control': cc })
    const a = await h.get(key)
    t.equal(a.result.outcome, 'PASS', cc)
    t.equal(a.sink.headers?.['x-cache'], 'PASS')
    t.equal(a.sink.body.toString(), 'secret')
    const b = await h.get(key)
    t.equal(b.result.outcome, 'PASS', cc)
    t.notOk(h.engine.has(key))
  }
  t.equal(h.upstream.calls.length, 4)
  t.equal(h.engine.counters.passes, 4)
})

void t.test(
  'passes statuses neither heuristically cacheable nor explicitly fresh through without caching them',
  async (t) => {
    const h = await harness(t)
    h.upstream.handler = () => ok(Buffer.from('moved'), { location: '/x' }, 302)
    const a = await h.get(SEG)
    t.equal(a.sink.status, 302)
    t.equal(a.sink.headers?.['location'], '/x')
    await h.get(SEG)
    t.equal(h.upstream.calls.length, 2)
  },
)

void t.test('answers a coded 502 or 504 with a JSON body when upstream fails and nothing is cached', async (t) => {
  const h = await harness(t)
  const { VcdnError, errorBody } = await import('../../errors/index.js')
  h.upstream.handler = () => {
    throw new VcdnError('ERR_UPSTREAM_TIMEOUT', 'after 5000 ms to 10.0.0.7')
  }
  const a = await h.get(SEG)
  t.equal(a.sink.status, 504)
  t.equal(a.sink.body.toString(), errorBody('ERR_UPSTREAM_TIMEOUT'))
  t.notMatch(a.sink.body.toString(), /10\.0\.0\.7/, 'no internals in the body')
  t.equal(a.sink.headers?.['content-type'], 'application/json')
  h.upstream.handler = () => Promise.reject(new Error('ECONNREFUSED'))
  const b = await h.get(SEG)
  t.equal(b.sink.status, 502)
  t.equal(b.sink.body.toString(), errorBody('ERR_UPSTREAM_CONNECT'))
  t.equal(h.engine.counters.fillErrors, 2)
})

void t.test('uses per-type default freshness when upstream gives none', async (t) => {
  const h = await harness(t, { defaultTtlMs: { playlist: 2_000, segment: 1_000_000, other: 60_000 } })
  h.upstream.handler = () => ok(Buffer.from('#EXTM3U\n'))
  await h.get('/v/a/index.m3u8')
  h.clock.now += 1_999
  t.equal((await h.get('/v/a/index.m3u8')).result.outcome, 'HIT')
  h.clock.now += 2
  const expired = await h.get('/v/a/index.m3u8')
  t.not(expired.result.outcome, 'HIT')
  t.equal(h.upstream.calls.length, 2)
})

void t.test('rejects invalid options naming every bad path', async (t) => {
  const { CacheEngine } = await import('../index.js')
  await t.rejects(
    CacheEngine.open({
      dir: '',
      maxBytes: -1,
      memoryMaxBytes: 1,
      fetch: 5 as never,
      defaultTtlMs: { playlist: 'x' } as never,
      bogus: 1,
    } as never),
    { code: 'ERR_CONFIG_INVALID', message: /cache\.dir.*cache\.maxBytes.*cache\.defaultTtlMs\.playlist.*cache\.fetch/ },
  )
})
