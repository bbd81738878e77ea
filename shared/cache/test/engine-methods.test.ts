// Unsafe methods (RFC 9110 §9.2.1, RFC 9111 §4.4): request → upstream reply → expected status,
// x-cache, what the upstream saw, and which stored targets a following GET finds invalidated.
import t from 'tap'
import type { HeaderMap } from '../../http/types.js'
import { FakeSink, harness, ok, type Harness } from './fixtures/harness.js'

const TARGET = '/v/a/item'
const OTHER = '/v/a/other'
const HOST = 'cache.example'

interface Row {
  name: string
  method: string
  reply: { status: number; headers?: HeaderMap }
  /** Stored keys a GET afterwards finds gone (MISS) or still there (HIT). */
  invalidated: string[]
  kept: string[]
}

const ROWS: Row[] = [
  {
    name: 'a POST answered 200 invalidates its target',
    method: 'POST',
    reply: { status: 200 },
    invalidated: [TARGET],
    kept: [OTHER],
  },
  {
    name: 'a PUT answered 201 invalidates its target and a relative Location',
    method: 'PUT',
    reply: { status: 201, headers: { location: OTHER } },
    invalidated: [TARGET, OTHER],
    kept: [],
  },
  {
    name: 'a DELETE answered 204 invalidates a same-origin absolute Content-Location',
    method: 'DELETE',
    reply: { status: 204, headers: { 'content-location': `http://${HOST}${OTHER}` } },
    invalidated: [TARGET, OTHER],
    kept: [],
  },
  {
    name: 'a Location on another origin is not invalidated',
    method: 'PATCH',
    reply: { status: 303, headers: { location: `http://elsewhere.example${OTHER}` } },
    invalidated: [TARGET],
    kept: [OTHER],
  },
  {
    name: 'an unknown method is unsafe: its success invalidates',
    method: 'M-SEARCH',
    reply: { status: 200 },
    invalidated: [TARGET],
    kept: [OTHER],
  },
  {
    name: 'a safe method passed through (OPTIONS) invalidates nothing',
    method: 'OPTIONS',
    reply: { status: 200, headers: { location: OTHER } },
    invalidated: [],
    kept: [TARGET, OTHER],
  },
  {
    name: 'an error answer (500) invalidates nothing',
    method: 'POST',
    reply: { status: 500, headers: { location: OTHER } },
    invalidated: [],
    kept: [TARGET, OTHER],
  },
  {
    name: 'an error answer (404) invalidates nothing',
    method: 'DELETE',
    reply: { status: 404 },
    invalidated: [],
    kept: [TARGET, OTHER],
  },
]

async function* requestBody(parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) {
    await Promise.resolve()
    yield Buffer.from(p)
  }
}

/** An upstream that stores GETs and echoes what an unsafe request carried. */
function origin(h: Harness, reply: Row['reply']) {
  const seen: Array<{ method: string; key: string; body: string; headers: HeaderMap }> = []
  h.upstream.handler = async (key, init) => {
    const { method, body } = init as { method?: string; body?: AsyncIterable<Uint8Array> }
    if (method === undefined || method === 'GET')
      return ok(Buffer.from(`get ${key}`), { 'cache-control': 'max-age=600' })
    let text = ''
    for await (const chunk of body ?? []) text += Buffer.from(chunk).toString()
    seen.push({ method, key, body: text, headers: init.headers })
    const echo = Buffer.from(`${method} ${key} ${text}`)
    return ok(
      reply.status === 204 ? Buffer.alloc(0) : echo,
      { 'cache-control': 'max-age=600', ...reply.headers },
      reply.status,
    )
  }
  return seen
}

async function pass(h: Harness, method: string, key: string, parts: string[]): Promise<FakeSink> {
  const sink = new FakeSink()
  await h.engine.pass(
    { method, key, headers: { host: HOST, 'x-app': 'yes', cookie: 'no' }, body: requestBody(parts) },
    sink,
  )
  return sink
}

for (const row of ROWS) {
  void t.test(row.name, async (t) => {
    const h = await harness(t, { passUnsafeMethods: true })
    const seen = origin(h, row.reply)
    await h.get(TARGET)
    await h.get(OTHER)
    const sink = await pass(h, row.method, TARGET, ['part one, ', 'part two'])
    t.equal(sink.status, row.reply.status)
    t.equal(sink.headers?.['x-cache'], 'PASS')
    t.ok(sink.isEnded, 'the answer is whole')
    if (row.reply.status !== 204) t.equal(sink.body.toString(), `${row.method} ${TARGET} part one, part two`)
    t.match(seen, [{ method: row.method, key: TARGET, body: 'part one, part two', headers: { 'x-app': 'yes' } }])
    t.notOk('cookie' in (seen[0]?.headers ?? {}), 'no cookie upstream')
    for (const key of row.invalidated)
      t.equal((await h.get(key)).sink.headers?.['x-cache'], 'MISS', `${key} invalidated`)
    for (const key of row.kept) t.equal((await h.get(key)).sink.headers?.['x-cache'], 'HIT', `${key} kept`)
    t.equal(h.upstream.calls.length, 3 + row.invalidated.length, 'upstream requests')
  })
}

void t.test('an answer to an unsafe method is never stored', async (t) => {
  const h = await harness(t, { passUnsafeMethods: true })
  origin(h, { status: 200 })
  await pass(h, 'POST', TARGET, ['a'])
  await pass(h, 'POST', TARGET, ['b'])
  t.equal(h.engine.counters.objects, 0)
  t.equal((await h.get(TARGET)).sink.headers?.['x-cache'], 'MISS')
  t.equal(h.upstream.calls.length, 3)
})

void t.test('variants and query targets are invalidated with their target', async (t) => {
  const h = await harness(t, { passUnsafeMethods: true })
  origin(h, { status: 200 })
  const withQuery = h.engine.keyFor(TARGET, 'page=2')
  await h.get(withQuery)
  t.equal((await h.get(withQuery)).sink.headers?.['x-cache'], 'HIT')
  await pass(h, 'POST', withQuery, [])
  t.equal((await h.get(withQuery)).sink.headers?.['x-cache'], 'MISS')

  h.upstream.handler = (key, init) =>
    ok(Buffer.from(`${key} ${init.headers['accept-language'] ?? '-'}`), {
      vary: 'Accept-Language',
      'cache-control': 'max-age=600',
    })
  await h.get(OTHER, { 'accept-language': 'fr' })
  await h.get(OTHER, { 'accept-language': 'de' })
  const before = h.upstream.calls.length
  origin(h, { status: 200 })
  await pass(h, 'PUT', OTHER, ['x'])
  h.upstream.handler = (key, init) =>
    ok(Buffer.from(`${key} ${init.headers['accept-language'] ?? '-'}`), {
      vary: 'Accept-Language',
      'cache-control': 'max-age=600',
    })
  t.equal((await h.get(OTHER, { 'accept-language': 'fr' })).sink.headers?.['x-cache'], 'MISS')
  t.equal((await h.get(OTHER, { 'accept-language': 'de' })).sink.headers?.['x-cache'], 'MISS')
  t.equal(h.upstream.calls.length, before + 3)
})

void t.test(
  'with passUnsafeMethods off (the default) an unsafe method is 405 and never reaches the upstream',
  async (t) => {
    const h = await harness(t)
    origin(h, { status: 200 })
    await h.get(TARGET)
    const sink = await pass(h, 'POST', TARGET, ['x'])
    t.equal(sink.status, 405)
    t.equal(sink.headers?.['allow'], 'GET, HEAD')
    t.equal((await h.get(TARGET)).sink.headers?.['x-cache'], 'HIT', 'nothing invalidated')
    t.equal(h.upstream.calls.length, 1)
  },
)

void t.test('an upstream that fails before answering gets a coded 502, and nothing is invalidated', async (t) => {
  const h = await harness(t, { passUnsafeMethods: true })
  origin(h, { status: 200 })
  await h.get(TARGET)
  h.upstream.handler = () => Promise.reject(new Error('ECONNREFUSED'))
  const sink = await pass(h, 'POST', TARGET, ['x'])
  t.equal(sink.status, 502)
  t.equal(sink.headers?.['x-cache'], 'PASS')
  origin(h, { status: 200 })
  t.equal((await h.get(TARGET)).sink.headers?.['x-cache'], 'HIT')
})

void t.test('an unknown passUnsafeMethods value is refused', async (t) => {
  const { CacheEngine } = await import('../../cache/index.js')
  await t.rejects(
    CacheEngine.open({
      dir: '/nonexistent',
      maxBytes: 1,
      memoryMaxBytes: 1,
      fetch: () => Promise.reject(new Error('unused')),
      passUnsafeMethods: 'yes' as unknown as boolean,
    }),
    /cache\.passUnsafeMethods must be a boolean/,
  )
})
