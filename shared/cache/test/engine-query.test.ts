// The query string is part of the cache key and of the upstream request (RFC 9111 §2: the key is
// the target URI) unless the `query` option says otherwise; `token` never is. Request → upstream
// request → expected key, body and upstream count.
import t from 'tap'
import type { CacheOptions } from '../../cache/index.js'
import { harness, ok } from './fixtures/harness.js'

interface Row {
  name: string
  query?: CacheOptions['query']
  /** Two requests' query strings, in order. */
  requests: [string, string]
  /** What the upstream was asked for, per upstream request. */
  upstreamKeys: string[]
}

const PATH = '/v/abc/master.m3u8'

const ROWS: Row[] = [
  {
    name: 'by default different query strings are different objects, each sent upstream',
    requests: ['a=1&b=2', 'a=2'],
    upstreamKeys: [`${PATH}?a=1&b=2`, `${PATH}?a=2`],
  },
  {
    name: 'by default the same query string is one object',
    requests: ['a=1', 'a=1'],
    upstreamKeys: [`${PATH}?a=1`],
  },
  {
    name: 'token is removed from the key and from the upstream request, encoded or not',
    requests: ['token=abc&a=1', 'a=1&tok%65n=def'],
    upstreamKeys: [`${PATH}?a=1`],
  },
  {
    name: 'CMCD (player state, CTA-5004) is removed from the key and from the upstream request',
    requests: ['CMCD=bl%3D21300%2Cbr%3D3200%2Csid%3D%22a%22&a=1', 'a=1&CMCD=bl%3D9000%2Csid%3D%22b%22'],
    upstreamKeys: [`${PATH}?a=1`],
  },
  {
    name: 'query "ignore" drops the query string from the key and the upstream request',
    query: 'ignore',
    requests: ['a=1', 'a=2'],
    upstreamKeys: [PATH],
  },
  {
    name: 'an allow-list keeps only the named parameters',
    query: ['v'],
    requests: ['v=1&utm_source=x', 'utm_source=y&v=1'],
    upstreamKeys: [`${PATH}?v=1`],
  },
]

for (const row of ROWS) {
  void t.test(row.name, async (t) => {
    const h = await harness(t, row.query === undefined ? {} : { query: row.query })
    h.upstream.handler = (key) => ok(Buffer.from(`body of ${key}`), { 'cache-control': 'max-age=60' })
    for (const query of row.requests) {
      const key = h.engine.keyFor(PATH, query)
      const { sink } = await h.get(key)
      t.equal(sink.status, 200)
      t.equal(sink.body.toString(), `body of ${key}`, `the object of ${query}`)
    }
    t.same(
      h.upstream.calls.map((c) => c.key),
      row.upstreamKeys,
      'upstream requests',
    )
  })
}

void t.test('a malformed or over-long query string is refused as a bad request path', async (t) => {
  const h = await harness(t)
  for (const query of ['a=%zz', 'a=1#frag', 'a=\u00e9', `a=${'x'.repeat(2000)}`]) {
    t.throws(() => h.engine.keyFor(PATH, query), { code: 'ERR_REQUEST_PATH' }, JSON.stringify(query.slice(0, 20)))
  }
  t.throws(() => h.engine.keyFor('/v/../x', 'a=1'), 'the path is still validated')
})

void t.test('a prefix purge removes every query variant of the prefix', async (t) => {
  const h = await harness(t)
  h.upstream.handler = (key) => ok(Buffer.from(`body of ${key}`), { 'cache-control': 'max-age=60' })
  await h.get(h.engine.keyFor(PATH, 'a=1'))
  await h.get(h.engine.keyFor(PATH, 'a=2'))
  t.same(await h.engine.purge({ prefix: '/v/abc/' }), { removed: 2 })
  await h.get(h.engine.keyFor(PATH, 'a=1'))
  t.equal(h.upstream.calls.length, 3)
})

void t.test('an unknown query option is refused with its path', async (t) => {
  const { CacheEngine } = await import('../../cache/index.js')
  await t.rejects(
    CacheEngine.open({
      dir: '/nonexistent',
      maxBytes: 1,
      memoryMaxBytes: 1,
      fetch: () => Promise.reject(new Error('unused')),
      query: 'sometimes' as 'keep',
    }),
    /cache\.query must be/,
  )
})
