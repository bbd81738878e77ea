// Freshness, revalidation and serving stale (RFC 9111 §4, RFC 5861), driven by an injected clock.
import t from 'tap'
import { VcdnError, errorBody } from '../../errors/index.js'
import type { HeaderMap } from '../../http/types.js'
import type { UpstreamResponse } from '../index.js'
import { FakeSink, bytes, deferred, harness, ok, until } from './fixtures/harness.js'

const KEY = '/v/abc/720p/index.m3u8'
const LM = 'Tue, 31 Dec 2024 00:00:00 GMT'

function notModified(headers: HeaderMap = {}): UpstreamResponse {
  return { status: 304, headers, body: (async function* () {})() }
}

void t.test('serves STALE within stale-while-revalidate and triggers exactly one background refresh', async (t) => {
  const h = await harness(t)
  const v1 = bytes(3000, 1)
  h.upstream.handler = () => ok(v1, { etag: '"v1"', 'cache-control': 'max-age=10, stale-while-revalidate=30' })
  await h.get(KEY)
  h.clock.now += 15_000
  const gate = deferred()
  h.upstream.handler = async () => {
    await gate.promise
    return notModified({ 'cache-control': 'max-age=10, stale-while-revalidate=30' })
  }
  const results = await Promise.all([h.get(KEY), h.get(KEY), h.get(KEY)])
  for (const { result, sink } of results) {
    t.equal(result.outcome, 'STALE')
    t.equal(sink.headers?.['x-cache'], 'STALE')
    t.equal(sink.headers?.['age'], '15')
    t.ok(sink.body.equals(v1))
  }
  t.equal(h.upstream.calls.length, 2, 'one refresh for three stale hits')
  t.equal(h.upstream.calls[1]?.headers['if-none-match'], '"v1"')
  gate.resolve()
  // Until the refresh lands, requests keep getting STALE without starting another refresh.
  let fresh = await h.get(KEY)
  const deadline = Date.now() + 10_000
  while (fresh.result.outcome === 'STALE' && Date.now() < deadline) fresh = await h.get(KEY)
  t.equal(fresh.result.outcome, 'HIT')
  t.equal(fresh.sink.headers?.['age'], '0')
  t.equal(h.upstream.calls.length, 2)
})

void t.test('revalidates a stale object with its validators and serves REVALIDATED on 304', async (t) => {
  const h = await harness(t)
  const v1 = bytes(3000, 2)
  h.upstream.handler = () => ok(v1, { etag: '"v1"', 'last-modified': LM, 'cache-control': 'max-age=10' })
  await h.get(KEY)
  h.clock.now += 11_000
  h.upstream.handler = () => notModified({ 'cache-control': 'max-age=100', etag: '"v1"' })
  const r = await h.get(KEY)
  t.equal(r.result.outcome, 'REVALIDATED')
  t.equal(r.sink.status, 200)
  t.ok(r.sink.body.equals(v1))
  t.equal(r.sink.headers?.['cache-control'], 'max-age=100', 'stored headers updated from the 304 (RFC 9111 §4.3.4)')
  t.same(h.upstream.calls[1]?.headers, { 'if-none-match': '"v1"', 'if-modified-since': LM })
  h.clock.now += 50_000
  t.equal((await h.get(KEY)).result.outcome, 'HIT', 'fresh for the new max-age')
  t.equal(h.engine.counters.revalidated, 1)
  // The refreshed freshness survives a restart (the index row was updated).
  await h.engine.close()
  await h.open()
  t.equal((await h.get(KEY)).result.outcome, 'HIT')
  t.equal(h.upstream.calls.length, 2)
})

void t.test('replaces a stale object when revalidation answers 200', async (t) => {
  const h = await harness(t)
  const v1 = bytes(3000, 3)
  const v2 = bytes(5000, 4)
  h.upstream.handler = () => ok(v1, { etag: '"v1"', 'cache-control': 'max-age=10' })
  await h.get(KEY)
  h.clock.now += 11_000
  h.upstream.handler = () => ok(v2, { etag: '"v2"', 'cache-control': 'max-age=10' })
  const r = await h.get(KEY)
  t.equal(r.result.outcome, 'MISS')
  t.ok(r.sink.body.equals(v2))
  const hit = await h.get(KEY)
  t.equal(hit.result.outcome, 'HIT')
  t.ok(hit.sink.body.equals(v2))
  t.match(h.engine.counters, { objects: 1, diskBytes: v2.length })
})

void t.test('serves STALE when the refresh fails before headers or with a 5xx, within stale-if-error', async (t) => {
  const h = await harness(t, { staleIfErrorMs: 60_000 })
  const v1 = bytes(3000, 5)
  h.upstream.handler = () => ok(v1, { etag: '"v1"', 'cache-control': 'max-age=10' })
  await h.get(KEY)
  h.clock.now += 20_000
  h.upstream.handler = () => {
    throw new VcdnError('ERR_UPSTREAM_TIMEOUT')
  }
  const a = await h.get(KEY)
  t.equal(a.result.outcome, 'STALE')
  t.ok(a.sink.body.equals(v1))
  h.upstream.handler = () => ok(Buffer.from('down'), {}, 503)
  const b = await h.get(KEY)
  t.equal(b.result.outcome, 'STALE')
  t.ok(b.sink.body.equals(v1))
  h.clock.now += 60_000
  h.upstream.handler = () => {
    throw new VcdnError('ERR_UPSTREAM_TIMEOUT')
  }
  const c = await h.get(KEY)
  t.equal(c.sink.status, 504, 'outside the window the error is answered')
  t.equal(c.sink.body.toString(), errorBody('ERR_UPSTREAM_TIMEOUT'))
})

void t.test('uses the upstream stale-if-error window and never serves stale under must-revalidate', async (t) => {
  const h = await harness(t, { staleIfErrorMs: 0 })
  h.upstream.handler = (key) =>
    ok(bytes(100), {
      'cache-control': key.includes('mr') ? 'max-age=1, must-revalidate' : 'max-age=1, stale-if-error=100',
    })
  await h.get('/v/a/sie.m4s')
  await h.get('/v/a/mr.m4s')
  h.clock.now += 50_000
  h.upstream.handler = () => Promise.reject(new VcdnError('ERR_UPSTREAM_CONNECT'))
  t.equal((await h.get('/v/a/sie.m4s')).result.outcome, 'STALE')
  t.equal((await h.get('/v/a/mr.m4s')).sink.status, 502)
})

void t.test('stores no-cache responses but revalidates them on every use', async (t) => {
  const h = await harness(t)
  const v1 = bytes(100, 6)
  h.upstream.handler = () => ok(v1, { etag: '"n1"', 'cache-control': 'no-cache' })
  await h.get(KEY)
  t.ok(h.engine.has(KEY))
  h.upstream.handler = () => notModified()
  for (let i = 0; i < 2; i++) {
    const r = await h.get(KEY)
    t.equal(r.result.outcome, 'REVALIDATED')
    t.ok(r.sink.body.equals(v1))
  }
  t.equal(h.upstream.calls.length, 3)
  t.ok(h.upstream.calls.slice(1).every((c) => c.headers['if-none-match'] === '"n1"'))
})

void t.test('a failing background refresh keeps serving STALE without unhandled rejections', async (t) => {
  const h = await harness(t)
  h.upstream.handler = () => ok(bytes(100), { 'cache-control': 'max-age=1, stale-while-revalidate=100' })
  await h.get(KEY)
  h.clock.now += 10_000
  h.upstream.handler = () => Promise.reject(new Error('boom'))
  t.equal((await h.get(KEY)).result.outcome, 'STALE')
  await until(() => h.engine.counters.fillErrors === 1, 'refresh failure')
  t.equal((await h.get(KEY)).result.outcome, 'STALE')
  await until(() => h.engine.counters.fillErrors === 2, 'second refresh failure')
})

void t.test('a revalidation joined by concurrent requests makes one upstream call', async (t) => {
  const h = await harness(t)
  h.upstream.handler = () => ok(bytes(100), { etag: '"x"', 'cache-control': 'max-age=1' })
  await h.get(KEY)
  h.clock.now += 5_000
  const gate = deferred()
  h.upstream.handler = async () => {
    await gate.promise
    return notModified()
  }
  const sinks = [new FakeSink(), new FakeSink(), new FakeSink()]
  const ps = sinks.map((s) => h.engine.serve({ method: 'GET', key: KEY, headers: { 'if-none-match': '"x"' } }, s))
  gate.resolve()
  const rs = await Promise.all(ps)
  t.ok(rs.every((r) => r.outcome === 'REVALIDATED' && r.status === 304))
  t.equal(h.upstream.calls.length, 2)
})
