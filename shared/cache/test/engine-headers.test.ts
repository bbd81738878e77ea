// What the origin said survives the cache (RFC 9110 §7.6.1, RFC 9111 §3): request → upstream reply
// → expected status, headers and upstream count, the way Varnish and Traffic Server test theirs.
import t from 'tap'
import type { HeaderMap } from '../../http/types.js'
import { deferred, harness, ok, until } from './fixtures/harness.js'

interface Row {
  name: string
  reply: { status: number; headers: HeaderMap; body?: string }
  /** x-cache of each of two identical GETs. */
  outcomes: [string, string]
  /** Headers both answers carry (the second is checked for everything). */
  has: HeaderMap
  /** Headers neither answer may carry. */
  lacks?: string[]
  upstreamCalls: number
}

const FRESH = 'max-age=60'

const ROWS: Row[] = [
  {
    name: 'a 301 is stored with its Location',
    reply: { status: 301, headers: { location: '/v/new/master.m3u8', 'cache-control': FRESH } },
    outcomes: ['MISS', 'HIT'],
    has: { location: '/v/new/master.m3u8' },
    upstreamCalls: 1,
  },
  {
    name: 'a 308 is stored with its Location and a custom header',
    reply: { status: 308, headers: { location: 'https://other.example/x', 'cache-control': FRESH, 'x-why': 'moved' } },
    outcomes: ['MISS', 'HIT'],
    has: { location: 'https://other.example/x', 'x-why': 'moved' },
    upstreamCalls: 1,
  },
  {
    name: 'a 302 with explicit freshness is stored (RFC 9111 §3)',
    reply: { status: 302, headers: { location: '/elsewhere', 'cache-control': FRESH } },
    outcomes: ['MISS', 'HIT'],
    has: { location: '/elsewhere' },
    upstreamCalls: 1,
  },
  {
    name: 'a 410 is stored with its headers',
    reply: { status: 410, headers: { 'cache-control': FRESH, 'x-reason': 'withdrawn' }, body: 'gone' },
    outcomes: ['MISS', 'HIT'],
    has: { 'x-reason': 'withdrawn' },
    upstreamCalls: 1,
  },
  {
    name: 'a 204 is stored',
    reply: { status: 204, headers: { 'cache-control': FRESH, 'x-empty': '1' }, body: '' },
    outcomes: ['MISS', 'HIT'],
    has: { 'x-empty': '1' },
    upstreamCalls: 1,
  },
  {
    name: 'a 404 keeps its custom headers',
    reply: { status: 404, headers: { 'x-reason': 'no such video' }, body: 'nope' },
    outcomes: ['MISS', 'HIT'],
    has: { 'x-reason': 'no such video' },
    upstreamCalls: 1,
  },
  {
    name: 'content and custom fields of a 200 are stored and forwarded',
    reply: {
      status: 200,
      headers: {
        'cache-control': FRESH,
        'content-encoding': 'gzip',
        'content-disposition': 'attachment; filename="a.mp4"',
        'content-language': 'fr',
        link: '</v/a/init.mp4>; rel=preload',
        'x-custom': 'kept',
      },
    },
    outcomes: ['MISS', 'HIT'],
    has: {
      'content-encoding': 'gzip',
      'content-disposition': 'attachment; filename="a.mp4"',
      'content-language': 'fr',
      link: '</v/a/init.mp4>; rel=preload',
      'x-custom': 'kept',
    },
    upstreamCalls: 1,
  },
  {
    name: 'hop-by-hop fields and the fields Connection names are dropped, the rest kept',
    reply: {
      status: 200,
      headers: {
        'cache-control': FRESH,
        connection: 'keep-alive, X-Private',
        'x-private': 'one hop only',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        trailer: 'x-checksum',
        upgrade: 'h2c',
        'proxy-authenticate': 'Basic',
        'x-kept': 'yes',
      },
    },
    outcomes: ['MISS', 'HIT'],
    has: { 'x-kept': 'yes' },
    lacks: [
      'connection',
      'x-private',
      'keep-alive',
      'proxy-connection',
      'te',
      'trailer',
      'upgrade',
      'proxy-authenticate',
    ],
    upstreamCalls: 1,
  },
  {
    name: "the upstream server's own uWebSockets mark is not stored, so it does not pile up across tiers",
    reply: { status: 200, headers: { 'cache-control': FRESH, uwebsockets: '20', 'x-kept': 'yes' } },
    outcomes: ['MISS', 'HIT'],
    has: { 'x-kept': 'yes' },
    lacks: ['uwebsockets'],
    upstreamCalls: 1,
  },
  {
    name: 'a response that sets a cookie is passed and never stored',
    reply: { status: 200, headers: { 'cache-control': FRESH, 'set-cookie': 'session=abc; Path=/' } },
    outcomes: ['PASS', 'PASS'],
    has: { 'set-cookie': 'session=abc; Path=/' },
    upstreamCalls: 2,
  },
]

for (const row of ROWS) {
  void t.test(row.name, async (t) => {
    const h = await harness(t)
    const body = Buffer.from(row.reply.body ?? 'payload')
    h.upstream.handler = () => ok(body, row.reply.headers, row.reply.status)
    const key = '/v/abc/thing.bin'
    const answers = [await h.get(key), await h.get(key)]
    answers.forEach((a, i) => {
      t.equal(a.sink.headers?.['x-cache'], row.outcomes[i], `answer ${i + 1} x-cache`)
      t.equal(a.sink.status, row.reply.status, `answer ${i + 1} status`)
      t.match(a.sink.headers, row.has, `answer ${i + 1} headers`)
      for (const name of row.lacks ?? []) t.notOk(name in (a.sink.headers ?? {}), `answer ${i + 1} lacks ${name}`)
      t.equal(a.sink.contentLength, body.length, `answer ${i + 1} content-length is the body's`)
      t.ok(a.sink.body.equals(body), `answer ${i + 1} body`)
    })
    t.equal(h.upstream.calls.length, row.upstreamCalls, 'upstream requests')
  })
}

void t.test('a stored 301 keeps its status and every header across a restart (disk index)', async (t) => {
  const h = await harness(t)
  const headers = {
    'cache-control': 'max-age=600',
    location: '/v/new/master.m3u8',
    'content-disposition': 'inline',
    'x-custom': 'survives',
  }
  h.upstream.handler = () => ok(Buffer.from('moved'), headers, 301)
  const key = '/v/abc/old.m3u8'
  t.equal((await h.get(key)).sink.headers?.['x-cache'], 'MISS')
  await h.engine.close()
  await h.open()
  const again = await h.get(key)
  t.equal(again.sink.headers?.['x-cache'], 'HIT')
  t.equal(again.sink.status, 301)
  t.match(again.sink.headers, headers)
  t.equal(again.sink.body.toString(), 'moved')
  t.equal(h.upstream.calls.length, 1)
})

void t.test(
  'a 304 updates the stored headers it carries, except the framing ones, Content-MD5 and ETag (RFC 9111 §3.2)',
  async (t) => {
    const h = await harness(t)
    const body = Buffer.from('version one body')
    let reply = 0
    h.upstream.handler = () => {
      reply++
      if (reply === 1)
        return ok(body, {
          etag: '"v1"',
          'cache-control': 'max-age=1',
          'x-version': '1',
          'content-encoding': 'gzip',
          'content-md5': 'rL0Y20zC+Fzt72VPzMSk2A==',
        })
      return {
        status: 304,
        headers: {
          etag: '"v2"',
          'cache-control': 'max-age=60',
          'x-version': '2',
          'content-encoding': 'br',
          'content-md5': 'N7UdGUp1E+RbVvZSTy1R8g==',
          'content-length': '999',
        },
        body: (async function* () {})(),
      }
    }
    const key = '/v/abc/seg.m4s'
    await h.get(key)
    h.clock.now += 2_000
    const revalidated = await h.get(key)
    t.equal(revalidated.sink.headers?.['x-cache'], 'REVALIDATED')
    t.equal(h.upstream.calls[1]?.headers['if-none-match'], '"v1"')
    const hit = await h.get(key)
    for (const a of [revalidated, hit]) {
      t.match(a.sink.headers, {
        'x-version': '2',
        'cache-control': 'max-age=60',
        'content-encoding': 'gzip',
        'content-md5': 'rL0Y20zC+Fzt72VPzMSk2A==',
        etag: '"v1"',
      })
      t.equal(a.sink.contentLength, body.length)
      t.ok(a.sink.body.equals(body))
    }
    t.equal(hit.sink.headers?.['x-cache'], 'HIT')
    t.equal(h.upstream.calls.length, 2)
  },
)

interface AuthRow {
  name: string
  cacheControl: string
  /** x-cache of a request with Authorization, then one without. */
  outcomes: [string, string]
  upstreamCalls: number
}

const AUTH_ROWS: AuthRow[] = [
  {
    name: 'the answer to a request with Authorization is not stored, even with explicit freshness',
    cacheControl: 'max-age=600',
    outcomes: ['PASS', 'MISS'],
    upstreamCalls: 2,
  },
  {
    name: 'the answer to a request with Authorization is stored when marked public',
    cacheControl: 'public, max-age=600',
    outcomes: ['MISS', 'HIT'],
    upstreamCalls: 1,
  },
  {
    name: 'the answer to a request with Authorization is stored with s-maxage',
    cacheControl: 's-maxage=600',
    outcomes: ['MISS', 'HIT'],
    upstreamCalls: 1,
  },
  {
    name: 'the answer to a request with Authorization is stored with must-revalidate',
    cacheControl: 'max-age=600, must-revalidate',
    outcomes: ['MISS', 'HIT'],
    upstreamCalls: 1,
  },
]

for (const row of AUTH_ROWS) {
  void t.test(`RFC 9111 §3.5: ${row.name}`, async (t) => {
    const h = await harness(t)
    h.upstream.handler = (_key, init) =>
      ok(Buffer.from(`for ${init.headers['authorization'] ?? 'anyone'}`), { 'cache-control': row.cacheControl })
    const key = '/v/abc/private.json'
    const withAuth = await h.get(key, { authorization: 'Bearer alice' })
    const without = await h.get(key)
    t.equal(withAuth.sink.headers?.['x-cache'], row.outcomes[0])
    t.equal(withAuth.sink.body.toString(), 'for Bearer alice', 'the origin saw the Authorization')
    t.equal(without.sink.headers?.['x-cache'], row.outcomes[1])
    t.equal(h.upstream.calls.length, row.upstreamCalls)
  })
}

void t.test(
  'RFC 9111 §3.5: a request arriving while an authorized fill is in flight does not get its answer',
  async (t) => {
    const h = await harness(t)
    const gate = deferred()
    h.upstream.handler = async (_key, init) => {
      const who = init.headers['authorization'] ?? 'anyone'
      if (who !== 'anyone') await gate.promise
      return ok(Buffer.from(`for ${who}`), { 'cache-control': 'max-age=600' })
    }
    const key = '/v/abc/private.json'
    const alice = h.get(key, { authorization: 'Bearer alice' })
    await until(() => h.upstream.calls.length === 1, 'the authorized fill started')
    const anyone = h.get(key)
    await until(() => h.upstream.calls.length === 2, 'a fill of its own')
    gate.resolve()
    t.equal((await anyone).sink.body.toString(), 'for anyone')
    t.equal((await alice).sink.body.toString(), 'for Bearer alice')
  },
)
