// Coalesced read-while-writer fills: one upstream fetch per key, live readers, late joiners,
// slow readers, client aborts and failures mid-body.
import t from 'tap'
import { VcdnError, errorBody } from '../../errors/index.js'
import type { HeaderMap } from '../../http/types.js'
import { ControlledBody, FakeSink, bytes, deferred, harness, ok, sha, until } from './fixtures/harness.js'

const KEY = '/v/abc/1080p/seg_00007.m4s'

function controlled(
  headers: HeaderMap,
  status = 200,
): { body: ControlledBody; respond: () => { status: number; headers: HeaderMap; body: ControlledBody } } {
  const body = new ControlledBody()
  return { body, respond: () => ({ status, headers, body }) }
}

void t.test(
  '200 concurrent requests for one cold 4 MB key make exactly one upstream call and get identical bodies',
  async (t) => {
    for (const fillBufferBytes of [8 * 1024 * 1024, 256 * 1024]) {
      const h = await harness(t, { fillBufferBytes })
      const source = bytes(4 * 1024 * 1024 + 123, 42)
      const gate = deferred()
      h.upstream.handler = async () => {
        await gate.promise
        return ok(source, { etag: '"big"' }, 200, 64 * 1024)
      }
      const sinks = Array.from({ length: 200 }, () => new FakeSink())
      const early = sinks.slice(0, 150).map((sink) => h.engine.serve({ method: 'GET', key: KEY, headers: {} }, sink))
      gate.resolve()
      // The rest join while the body is streaming: they replay, then follow live.
      await until(() => (sinks[0]?.received ?? 0) > 1024 * 1024, 'first MiB to stream')
      const late = sinks.slice(150).map((sink) => h.engine.serve({ method: 'GET', key: KEY, headers: {} }, sink))
      const results = await Promise.all([...early, ...late])
      t.equal(h.upstream.calls.length, 1, `one upstream call (buffer ${fillBufferBytes})`)
      const want = sha(source)
      t.ok(
        sinks.every((s) => s.isEnded && !s.isAborted && sha(s.body) === want),
        'all 200 bodies byte-identical to the source',
      )
      t.ok(results.every((r) => r.outcome === 'MISS' && r.status === 200 && r.bytes === source.length))
      t.equal(h.engine.counters.coalesced, 199)
      t.equal(h.engine.counters.misses, 200)
      const hit = await h.get(KEY)
      t.equal(hit.result.outcome, 'HIT')
      t.equal(sha(hit.sink.body), want)
    }
  },
)

void t.test(
  'waiters receive headers and the first chunk while upstream is paused mid-body, and a late joiner replays then follows',
  async (t) => {
    const h = await harness(t)
    const source = bytes(300_000, 5)
    const { body, respond } = controlled({ 'content-length': String(source.length), 'content-type': 'video/mp4' })
    h.upstream.handler = respond
    const a = new FakeSink()
    const b = new FakeSink()
    const pa = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, a)
    const pb = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, b)
    body.push(source.subarray(0, 100_000))
    await Promise.all([a.firstChunk.promise, b.firstChunk.promise])
    t.equal(a.status, 200)
    t.equal(a.contentLength, source.length, 'upstream content-length is used as soon as headers arrive')
    t.equal(a.headers?.['content-type'], 'video/mp4')
    t.ok(a.body.equals(source.subarray(0, 100_000)))
    t.notOk(a.isEnded, 'upstream is still paused')

    const late = new FakeSink()
    const pl = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, late)
    await late.firstChunk.promise
    t.ok(late.body.equals(source.subarray(0, 100_000)), 'the late joiner replays what was already received')
    body.push(source.subarray(100_000, 200_000))
    await until(() => late.received === 200_000, 'late joiner to follow live')
    body.push(source.subarray(200_000))
    body.end()
    await Promise.all([pa, pb, pl])
    for (const s of [a, b, late]) t.ok(s.body.equals(source))
    t.equal(h.upstream.calls.length, 1)
  },
)

void t.test(
  'a slow reader does not slow the fill or the other readers, and catches up from the temp file',
  async (t) => {
    const h = await harness(t, { fillBufferBytes: 64 * 1024, memoryObjectMaxBytes: 0 })
    const source = bytes(2 * 1024 * 1024, 11)
    h.upstream.handler = () => ok(source, {}, 200, 32 * 1024)
    const slow = new FakeSink()
    slow.pause()
    const fast = new FakeSink()
    const ps = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, slow)
    const pf = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, fast)
    await pf
    t.ok(fast.body.equals(source), 'the fast reader finished while the slow one is blocked')
    await until(() => h.engine.has(KEY), 'the fill to commit')
    t.equal(slow.writes, 1, 'the slow reader is still on its first write')
    slow.release()
    await ps
    t.ok(slow.body.equals(source), 'the slow reader gets every byte (re-read from the renamed temp file)')
  },
)

void t.test('the fill completes and is cached when the first client aborts mid-fill', async (t) => {
  const h = await harness(t)
  const source = bytes(500_000, 8)
  const { body, respond } = controlled({ 'content-length': String(source.length) })
  h.upstream.handler = respond
  const first = new FakeSink()
  const p = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, first)
  body.push(source.subarray(0, 1000))
  await first.firstChunk.promise
  first.clientAbort()
  const r = await p
  t.equal(r.outcome, 'MISS')
  t.equal(h.upstream.calls[0]?.signal.aborted, false, 'the upstream fetch is not tied to the client')
  body.push(source.subarray(1000))
  body.end()
  await until(() => h.engine.has(KEY), 'object to be cached')
  const hit = await h.get(KEY)
  t.equal(hit.result.outcome, 'HIT')
  t.ok(hit.sink.body.equals(source))
  t.equal(h.upstream.calls.length, 1)
})

void t.test('serves a range on a miss from the full fill as bytes arrive', async (t) => {
  const h = await harness(t)
  const source = bytes(100_000, 12)
  const { body, respond } = controlled({ 'content-length': String(source.length) })
  h.upstream.handler = respond
  const sink = new FakeSink()
  const p = h.engine.serve({ method: 'GET', key: KEY, headers: { range: 'bytes=1000-2999' } }, sink)
  body.push(source.subarray(0, 2500))
  await sink.firstChunk.promise
  t.equal(sink.status, 206)
  t.equal(sink.contentLength, 2000)
  t.equal(sink.headers?.['content-range'], 'bytes 1000-2999/100000')
  t.ok(sink.body.equals(source.subarray(1000, 2500)), 'bytes before the range start are skipped')
  body.push(source.subarray(2500))
  body.end()
  await p
  t.ok(sink.body.equals(source.subarray(1000, 3000)), 'bytes after the range end are not sent')
  t.same(h.upstream.calls[0]?.headers, {}, 'no upstream range request')
})

void t.test('a range on a chunked (no content-length) miss is answered with the full 200', async (t) => {
  const h = await harness(t)
  const source = bytes(50_000, 13)
  h.upstream.handler = () => ({
    status: 200,
    headers: { 'content-type': 'video/mp4' },
    body: (async function* () {
      yield source.subarray(0, 20_000)
      yield source.subarray(20_000)
    })(),
  })
  const miss = await h.get(KEY, { range: 'bytes=0-9' })
  t.equal(miss.sink.status, 200)
  t.equal(miss.sink.contentLength, undefined, 'chunked to the client too')
  t.ok(miss.sink.body.equals(source))
  const hit = await h.get(KEY, { range: 'bytes=0-9' })
  t.equal(hit.sink.status, 206, 'once stored, the total is known')
  t.ok(hit.sink.body.equals(source.subarray(0, 10)))
})

void t.test('a mid-body failure aborts every reader and caches nothing', async (t) => {
  const h = await harness(t)
  const source = bytes(200_000, 14)
  const { body, respond } = controlled({ 'content-length': String(source.length) })
  h.upstream.handler = respond
  const sinks = [new FakeSink(), new FakeSink(), new FakeSink()]
  const ps = sinks.map((s) => h.engine.serve({ method: 'GET', key: KEY, headers: {} }, s))
  body.push(source.subarray(0, 50_000))
  await Promise.all(sinks.map((s) => s.firstChunk.promise))
  body.fail(new VcdnError('ERR_UPSTREAM_BODY', 'socket closed'))
  await Promise.all(ps)
  t.ok(
    sinks.every((s) => s.wasCutByServer && !s.isEnded),
    'all readers aborted',
  )
  t.notOk(h.engine.has(KEY))
  t.equal(h.engine.counters.fillErrors, 1)
  await until(() => h.engine.counters.diskBytes === 0, 'accounting settled')
  h.upstream.handler = () => ok(source)
  const again = await h.get(KEY)
  t.equal(again.result.outcome, 'MISS')
  t.ok(again.sink.body.equals(source))
  t.equal(h.upstream.calls.length, 2, 'the next request goes upstream again')
})

void t.test('a body shorter or longer than content-length aborts every reader and caches nothing', async (t) => {
  for (const [name, declared, sent] of [
    ['short', 100_000, 60_000],
    ['long', 60_000, 100_000],
  ] as const) {
    const h = await harness(t)
    const source = bytes(sent, 15)
    const { body, respond } = controlled({ 'content-length': String(declared) })
    h.upstream.handler = respond
    const sinks = [new FakeSink(), new FakeSink()]
    const ps = sinks.map((s) => h.engine.serve({ method: 'GET', key: KEY, headers: {} }, s))
    body.push(source.subarray(0, 60_000))
    await Promise.all(sinks.map((s) => s.firstChunk.promise))
    if (sent > 60_000) body.push(source.subarray(60_000))
    body.end()
    await Promise.all(ps)
    t.ok(
      sinks.every((s) => s.wasCutByServer && !s.isEnded),
      `${name}: all readers aborted`,
    )
    t.ok(
      sinks.every((s) => s.received <= declared),
      `${name}: never more bytes than declared`,
    )
    t.notOk(h.engine.has(KEY), `${name}: nothing cached`)
    h.upstream.handler = () => ok(bytes(10))
    await h.get(KEY)
    t.equal(h.upstream.calls.length, 2, `${name}: next request calls upstream again`)
  }
})

void t.test('an upstream failure before headers answers every waiter with the coded error', async (t) => {
  const h = await harness(t)
  const gate = deferred()
  h.upstream.handler = async () => {
    await gate.promise
    throw new VcdnError('ERR_UPSTREAM_CONNECT', 'ECONNREFUSED 10.1.2.3')
  }
  const sinks = [new FakeSink(), new FakeSink(), new FakeSink()]
  const ps = sinks.map((s) => h.engine.serve({ method: 'GET', key: KEY, headers: {} }, s))
  gate.resolve()
  const results = await Promise.all(ps)
  t.ok(results.every((r) => r.status === 502 && r.outcome === 'MISS'))
  t.ok(sinks.every((s) => s.status === 502 && s.body.toString() === errorBody('ERR_UPSTREAM_CONNECT')))
  t.equal(h.upstream.calls.length, 1, 'coalesced')
})

void t.test(
  'prefetch fills absent keys, joins fills in flight, reports present keys and counts prefetch use',
  async (t) => {
    const h = await harness(t)
    const source = bytes(1000, 16)
    const gate = deferred()
    h.upstream.handler = async (key) => {
      if (key.endsWith('bad.m4s')) throw new VcdnError('ERR_UPSTREAM_TIMEOUT')
      await gate.promise
      return ok(source)
    }
    const filling = h.engine.prefetch('/v/a/s1.m4s')
    const joined = h.engine.prefetch('/v/a/s1.m4s')
    gate.resolve()
    t.equal(await filling, 'filled')
    t.equal(await joined, 'joined')
    t.equal(await h.engine.prefetch('/v/a/s1.m4s'), 'present')
    t.equal(await h.engine.prefetch('/v/a/bad.m4s'), 'failed')
    t.equal(h.upstream.calls.length, 2)
    t.match(h.engine.counters, { prefetchIssued: 2, prefetchUsed: 0 })
    const hit = await h.get('/v/a/s1.m4s')
    t.equal(hit.result.outcome, 'HIT')
    await h.get('/v/a/s1.m4s')
    t.equal(h.engine.counters.prefetchUsed, 1, 'counted on the first hit only')
  },
)

void t.test(
  'a prefetched object evicted or purged before any client hit it counts as wasted, a used one does not',
  async (t) => {
    // Disk-only objects (memoryObjectMaxBytes 1), so the index's prefetched mark is what counts.
    const h = await harness(t, { maxBytes: 500_000, memoryMaxBytes: 100_000, memoryObjectMaxBytes: 1 })
    h.upstream.handler = () => ok(bytes(100_000))
    t.equal(await h.engine.prefetch('/v/w/0.m4s'), 'filled')
    t.equal(await h.engine.prefetch('/v/w/1.m4s'), 'filled')
    t.equal(await h.engine.prefetch('/v/w/2.m4s'), 'filled')
    t.equal((await h.get('/v/w/2.m4s')).result.outcome, 'HIT')
    t.equal(h.engine.counters.prefetchUsed, 1)

    // A hard purge of a used prefetch wastes nothing; of an unused one, it does (by key and by prefix).
    await h.engine.purge({ key: '/v/w/2.m4s' })
    t.equal(h.engine.counters.prefetchWasted, 0, 'a used prefetch is not wasted')
    await h.engine.purge({ key: '/v/w/1.m4s' })
    t.equal(h.engine.counters.prefetchWasted, 1, 'purged by key before any hit')
    t.equal(await h.engine.prefetch('/v/x/0.m4s'), 'filled')
    await h.engine.purge({ prefix: '/v/x/' })
    t.equal(h.engine.counters.prefetchWasted, 2, 'purged by prefix before any hit')

    // A soft purge keeps the object: not wasted (yet).
    await h.engine.purge({ key: '/v/w/0.m4s' }, 'soft')
    t.equal(h.engine.counters.prefetchWasted, 2, 'a soft purge wastes nothing')

    // Eviction: /v/w/0 (prefetched, never hit) is the least recently used object.
    h.clock.now += 1000
    for (let i = 0; i < 5; i++) {
      await h.get(`/v/y/${i}.m4s`)
      h.clock.now += 1000
    }
    await until(() => !h.engine.has('/v/w/0.m4s'), 'eviction of the unused prefetch')
    t.equal(h.engine.counters.prefetchWasted, 3, 'evicted before any hit')
    t.equal(h.engine.counters.prefetchUsed, 1)
  },
)

void t.test(
  'a reader whose sink fails is cut alone, and the engine logs why (a client cut by the server leaves a trace)',
  async (t) => {
    const warnings: { o: object; msg: string | undefined }[] = []
    const log = { info: () => {}, error: () => {}, warn: (o: object, msg?: string) => void warnings.push({ o, msg }) }
    const h = await harness(t, { log })
    const source = bytes(1024 * 1024, 9)
    h.upstream.handler = () => ok(source, {}, 200, 64 * 1024)
    /** A sink whose socket call throws on its third body write, as a uWS response gone invalid would. */
    class FailingSink extends FakeSink {
      override write(chunk: Uint8Array): Promise<void> {
        if (this.writes === 2) throw new Error('socket write failed')
        return super.write(chunk)
      }
    }
    const failing = new FailingSink()
    const healthy = new FakeSink()
    await Promise.all([
      h.engine.serve({ method: 'GET', key: KEY, headers: {} }, failing),
      h.engine.serve({ method: 'GET', key: KEY, headers: {} }, healthy),
    ])
    t.ok(failing.isAborted && !failing.isEnded, 'the failing reader is aborted')
    t.ok(healthy.isEnded && sha(healthy.body) === sha(source), 'the other reader gets every byte')
    t.equal(warnings.length, 1, 'one warning')
    t.equal(warnings[0]?.msg, 'cache fill reader failed; its response is cut')
    t.match(warnings[0]?.o, { key: KEY, pos: 3 * 64 * 1024 }, 'where it stopped: after its third chunk')
    t.equal(String((warnings[0]?.o as { err?: unknown }).err), 'Error: socket write failed')
  },
)
