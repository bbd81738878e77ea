// Vary (RFC 9111 §4.1): request → upstream reply → expected x-cache, body and upstream count.
// The fake upstream answers with the request field values it saw, so a variant served to the wrong
// request shows in the body.
import t from 'tap'
import type { HeaderMap } from '../../http/types.js'
import { ControlledBody, FakeSink, harness, ok, until } from './fixtures/harness.js'

const KEY = '/v/abc/master.m3u8'

interface Row {
  name: string
  vary: string
  /** Request headers in order, with the x-cache each answer must carry. */
  requests: Array<[HeaderMap, string]>
  upstreamCalls: number
}

const ROWS: Row[] = [
  {
    name: 'a request with other values of the Vary fields fills its own variant; each is then a hit',
    vary: 'Accept-Encoding',
    requests: [
      [{ 'accept-encoding': 'gzip' }, 'MISS'],
      [{ 'accept-encoding': 'gzip' }, 'HIT'],
      [{ 'accept-encoding': 'br' }, 'MISS'],
      [{ 'accept-encoding': 'br' }, 'HIT'],
      [{ 'accept-encoding': 'gzip' }, 'HIT'],
    ],
    upstreamCalls: 2,
  },
  {
    name: 'values are compared after list whitespace is normalised',
    vary: 'accept-encoding',
    requests: [
      [{ 'accept-encoding': 'gzip, br' }, 'MISS'],
      [{ 'accept-encoding': 'gzip,br' }, 'HIT'],
      [{ 'accept-encoding': ' gzip ,  br ' }, 'HIT'],
      [{ 'accept-encoding': 'identity' }, 'MISS'],
    ],
    upstreamCalls: 2,
  },
  {
    name: 'every field Vary names takes part, and an absent field differs from a present one',
    vary: 'Accept-Language, X-Device',
    requests: [
      [{ 'accept-language': 'fr', 'x-device': 'tv' }, 'MISS'],
      [{ 'accept-language': 'fr', 'x-device': 'phone' }, 'MISS'],
      [{ 'accept-language': 'fr' }, 'MISS'],
      [{ 'accept-language': 'fr', 'x-device': 'tv' }, 'HIT'],
      [{ 'accept-language': 'fr' }, 'HIT'],
      [{ 'accept-language': 'fr', 'x-device': 'tv', 'x-other': 'ignored' }, 'HIT'],
    ],
    upstreamCalls: 3,
  },
  {
    name: 'Vary: * is never stored',
    vary: 'Accept-Encoding, *',
    requests: [
      [{}, 'PASS'],
      [{}, 'PASS'],
    ],
    upstreamCalls: 2,
  },
]

/** The fake origin: its body names the values it received for the Vary fields. */
function varyingUpstream(vary: string) {
  return (_key: string, init: { headers: HeaderMap }) => {
    const seen = ['accept-encoding', 'accept-language', 'x-device'].map((n) => `${n}=${init.headers[n] ?? '-'}`)
    return ok(Buffer.from(seen.join(';')), { vary, 'cache-control': 'max-age=60' })
  }
}

function expectedBody(headers: HeaderMap): string {
  return ['accept-encoding', 'accept-language', 'x-device'].map((n) => `${n}=${headers[n] ?? '-'}`).join(';')
}

/** Whitespace-normalised, as the cache compares them (the first request of a variant filled it). */
function sameVariantBody(row: Row, upTo: number): string {
  const mine = row.requests[upTo]?.[0] ?? {}
  const norm = (v: string | undefined) =>
    v
      ?.split(',')
      .map((x) => x.trim())
      .join(',')
  for (const [headers] of row.requests.slice(0, upTo + 1)) {
    const names = row.vary
      .toLowerCase()
      .split(',')
      .map((n) => n.trim())
    if (names.every((n) => norm(headers[n]) === norm(mine[n]))) return expectedBody(headers)
  }
  return expectedBody(mine)
}

for (const row of ROWS) {
  void t.test(row.name, async (t) => {
    const h = await harness(t)
    h.upstream.handler = varyingUpstream(row.vary)
    for (const [i, [headers, outcome]] of row.requests.entries()) {
      const { sink } = await h.get(KEY, headers)
      t.equal(sink.headers?.['x-cache'], outcome, `request ${i + 1} x-cache`)
      t.equal(sink.headers?.['vary'], row.vary, `request ${i + 1} keeps Vary`)
      if (outcome !== 'PASS') t.equal(sink.body.toString(), sameVariantBody(row, i), `request ${i + 1} body`)
    }
    t.equal(h.upstream.calls.length, row.upstreamCalls, 'upstream requests')
  })
}

void t.test(
  'a fill forwards the request fields upstream with Authorization, but never Cookie, the tier secret or its own conditionals',
  async (t) => {
    const h = await harness(t)
    h.upstream.handler = varyingUpstream('Accept-Encoding')
    await h.get(KEY, {
      'accept-encoding': 'gzip',
      'user-agent': 'player/1',
      cookie: 'session=secret',
      authorization: 'Bearer secret',
      'x-vcdn-tier': 'tier secret',
      connection: 'x-hop',
      'x-hop': 'one hop',
      'if-none-match': '"client-tag"',
    })
    const sent = h.upstream.calls[0]?.headers ?? {}
    t.match(sent, { 'accept-encoding': 'gzip', 'user-agent': 'player/1', authorization: 'Bearer secret' })
    for (const name of ['cookie', 'x-vcdn-tier', 'connection', 'x-hop', 'if-none-match']) t.notOk(name in sent, name)
  },
)

void t.test('variants survive a restart (disk index)', async (t) => {
  const h = await harness(t)
  h.upstream.handler = varyingUpstream('Accept-Encoding')
  await h.get(KEY, { 'accept-encoding': 'gzip' })
  await h.get(KEY, { 'accept-encoding': 'br' })
  await h.engine.close()
  await h.open()
  for (const ae of ['br', 'gzip']) {
    const { sink } = await h.get(KEY, { 'accept-encoding': ae })
    t.equal(sink.headers?.['x-cache'], 'HIT', ae)
    t.equal(sink.body.toString(), expectedBody({ 'accept-encoding': ae }))
  }
  const other = await h.get(KEY, { 'accept-encoding': 'identity' })
  t.equal(other.sink.headers?.['x-cache'], 'MISS')
  t.equal(h.upstream.calls.length, 3)
})

void t.test('a request that joined a fill for another variant fills its own', async (t) => {
  const h = await harness(t)
  const bodies: ControlledBody[] = []
  h.upstream.handler = (_key, init) => {
    const body = new ControlledBody()
    bodies.push(body)
    const text = expectedBody(init.headers)
    queueMicrotask(() => {
      body.push(Buffer.from(text))
      body.end()
    })
    return { status: 200, headers: { vary: 'Accept-Encoding', 'cache-control': 'max-age=60' }, body }
  }
  const gzip = new FakeSink()
  const br = new FakeSink()
  const first = h.engine.serve({ method: 'GET', key: KEY, headers: { 'accept-encoding': 'gzip' } }, gzip)
  const second = h.engine.serve({ method: 'GET', key: KEY, headers: { 'accept-encoding': 'br' } }, br)
  await Promise.all([first, second])
  await until(() => gzip.isEnded && br.isEnded, 'both answers')
  t.equal(gzip.body.toString(), expectedBody({ 'accept-encoding': 'gzip' }))
  t.equal(br.body.toString(), expectedBody({ 'accept-encoding': 'br' }))
  t.equal(h.upstream.calls.length, 2)
  const again = await h.get(KEY, { 'accept-encoding': 'br' })
  t.equal(again.sink.headers?.['x-cache'], 'HIT')
})

void t.test('purging a key removes all its variants; an answer without Vary replaces them', async (t) => {
  const h = await harness(t)
  h.upstream.handler = varyingUpstream('Accept-Encoding')
  await h.get(KEY, { 'accept-encoding': 'gzip' })
  await h.get(KEY, { 'accept-encoding': 'br' })
  t.same(await h.engine.purge({ key: KEY }), { removed: 2 })
  t.equal(h.engine.counters.objects, 0)
  t.equal((await h.get(KEY, { 'accept-encoding': 'gzip' })).sink.headers?.['x-cache'], 'MISS')
  h.upstream.handler = () => ok(Buffer.from('plain'), { 'cache-control': 'max-age=0' })
  h.clock.now += 61_000
  t.equal((await h.get(KEY, { 'accept-encoding': 'gzip' })).sink.headers?.['x-cache'], 'MISS')
  t.equal(h.engine.counters.objects, 1, 'the variant was replaced by the plain answer')
  h.upstream.handler = () => ok(Buffer.from('plain'), { 'cache-control': 'max-age=60' })
  h.clock.now += 1_000
  await h.get(KEY, { 'accept-encoding': 'br' })
  const hit = await h.get(KEY, { 'accept-encoding': 'identity' })
  t.equal(hit.sink.headers?.['x-cache'], 'HIT', 'one plain copy answers every request')
  t.equal(hit.sink.body.toString(), 'plain')
})

void t.test('a request for the same variant joins a fill whose head brought the Vary', async (t) => {
  const h = await harness(t)
  const bodies: ControlledBody[] = []
  h.upstream.handler = (_key, init) => {
    const body = new ControlledBody()
    bodies.push(body)
    const text = Buffer.from(expectedBody(init.headers))
    return {
      status: 200,
      headers: { vary: 'Accept-Encoding', 'cache-control': 'max-age=60', 'content-length': String(text.length) },
      body,
    }
  }
  const first = new FakeSink()
  const firstDone = h.engine.serve({ method: 'GET', key: KEY, headers: { 'accept-encoding': 'gzip' } }, first)
  // The first fill's head is out (the target is now known to vary) while its body still streams.
  await first.started.promise
  const second = new FakeSink()
  const secondDone = h.engine.serve({ method: 'GET', key: KEY, headers: { 'accept-encoding': 'gzip' } }, second)
  await new Promise<void>((resolve) => setImmediate(resolve))
  const text = Buffer.from(expectedBody({ 'accept-encoding': 'gzip' }))
  for (const body of bodies) {
    body.push(text)
    body.end()
  }
  await Promise.all([firstDone, secondDone])
  t.equal(second.body.toString(), text.toString())
  t.equal(h.upstream.calls.length, 1, 'one upstream request for one variant')
  t.equal(h.engine.counters.coalesced, 1)
})
