import t from 'tap'
import type { Test } from 'tap'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { VcdnError } from '../../errors/index.js'
import { UpstreamClient, type UpstreamResponse } from '../index.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

async function serve(t: Test, handler: Handler): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const server = createServer(handler)
  const sockets = new Set<Socket>()
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, sockets }
}

async function text(res: UpstreamResponse): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of res.body) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks).toString()
}

async function closedPort(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

t.test('reuses one keep-alive connection for sequential requests', async (t) => {
  const { url, server } = await serve(t, (req, res) => res.end(`hello ${req.url}`))
  let connections = 0
  server.on('connection', () => connections++)
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  for (let i = 0; i < 20; i++) {
    const res = await client.request(`/v/a/${i}`, { method: 'GET' })
    t.equal(res.status, 200)
    t.equal(await text(res), `hello /v/a/${i}`)
  }
  // undici releases the connection a tick after the body ends, so the second request may open a
  // second one; what matters is that 20 requests do not open 20.
  t.ok(connections <= 2, `connections: ${connections}`)
})

t.test('sends the tier secret header and lower-cases response headers to first values', async (t) => {
  let seen: IncomingMessage['headers'] = {}
  const { url } = await serve(t, (req, res) => {
    seen = req.headers
    res.setHeader('Set-Cookie', ['a=1', 'b=2'])
    res.setHeader('X-Cache', 'HIT')
    res.end('ok')
  })
  const client = new UpstreamClient({ baseUrl: url, secretHeader: { name: 'X-Vcdn-Tier', value: 's3cret' } })
  t.teardown(() => client.close())
  const res = await client.request('/v/a/master.m3u8', { method: 'GET', headers: { 'if-none-match': '"x"' } })
  await text(res)
  t.equal(seen['x-vcdn-tier'], 's3cret')
  t.equal(seen['if-none-match'], '"x"')
  t.equal(res.headers['x-cache'], 'HIT')
  t.equal(res.headers['set-cookie'], 'a=1')
})

t.test('HEAD and POST work and HEAD content-length does not count as a short body', async (t) => {
  const { url } = await serve(t, (req, res) => {
    if (req.method === 'POST') {
      let body = ''
      req.on('data', (c: Buffer) => {
        body += c.toString()
      })
      req.on('end', () => res.end(`got ${body}`))
      return
    }
    res.setHeader('content-length', '1000')
    res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(1000))
  })
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  const head = await client.request('/x', { method: 'HEAD' })
  t.equal(head.headers['content-length'], '1000')
  t.equal(await text(head), '')
  const post = await client.request('/purge', { method: 'POST', body: 'prefix' })
  t.equal(await text(post), 'got prefix')
})

t.test('a refused connection is ERR_UPSTREAM_CONNECT with the cause', async (t) => {
  const client = new UpstreamClient({ baseUrl: await closedPort() })
  t.teardown(() => client.close())
  const err = await client.request('/x', { method: 'GET' }).catch((e: unknown) => e)
  t.match(err, { code: 'ERR_UPSTREAM_CONNECT', cause: { code: 'ECONNREFUSED' } })
})

t.test('a connection reset before headers is ERR_UPSTREAM_CONNECT', async (t) => {
  const { url } = await serve(t, (req) => req.socket.destroy())
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  await t.rejects(client.request('/x', { method: 'GET' }), { code: 'ERR_UPSTREAM_CONNECT' })
})

t.test('slow headers are ERR_UPSTREAM_TIMEOUT', async (t) => {
  const { url } = await serve(t, () => undefined) // never answers
  const client = new UpstreamClient({ baseUrl: url, headersTimeoutMs: 100 })
  t.teardown(() => client.close())
  const err = await client.request('/x', { method: 'GET' }).catch((e: unknown) => e)
  t.match(err, { code: 'ERR_UPSTREAM_TIMEOUT', cause: { code: 'UND_ERR_HEADERS_TIMEOUT' } })
})

t.test('a server closing before Content-Length bytes is ERR_UPSTREAM_BODY while iterating', async (t) => {
  const { url } = await serve(t, (req, res) => {
    res.writeHead(200, { 'content-length': '1000' })
    res.write(Buffer.alloc(400))
    setTimeout(() => req.socket.destroy(), 20)
  })
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  const res = await client.request('/x', { method: 'GET' })
  t.equal(res.status, 200, 'headers arrive fine')
  const err = await text(res).catch((e: unknown) => e)
  t.match(err, { code: 'ERR_UPSTREAM_BODY' })
  t.ok((err as { cause?: unknown }).cause, 'undici itself reports the truncation (kept as cause)')
})

t.test('a chunked body cut mid-way is ERR_UPSTREAM_BODY', async (t) => {
  const { url } = await serve(t, (req, res) => {
    res.writeHead(200)
    res.write('part')
    setTimeout(() => req.socket.destroy(), 20)
  })
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  const res = await client.request('/x', { method: 'GET' })
  await t.rejects(text(res), { code: 'ERR_UPSTREAM_BODY' })
})

t.test('a stalled body is ERR_UPSTREAM_BODY after bodyTimeoutMs', async (t) => {
  const { url } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '10' })
    res.write('12345')
  })
  const client = new UpstreamClient({ baseUrl: url, bodyTimeoutMs: 100 })
  t.teardown(() => client.close())
  const res = await client.request('/x', { method: 'GET' })
  await t.rejects(text(res), { code: 'ERR_UPSTREAM_BODY', cause: { code: 'UND_ERR_BODY_TIMEOUT' } })
})

t.test('breaking out of the body or discarding it frees the connection', async (t) => {
  const { url } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(4 << 20) })
    res.end(Buffer.alloc(4 << 20))
  })
  const client = new UpstreamClient({ baseUrl: url, connections: 1, headersTimeoutMs: 2000 })
  t.teardown(() => client.close())
  const first = await client.request('/big', { method: 'GET' })
  for await (const chunk of first.body) {
    void chunk
    break
  }
  const second = await client.request('/big', { method: 'GET' })
  await second.discard()
  const third = await client.request('/big', { method: 'GET' })
  t.equal((await text(third)).length, 4 << 20, 'the single pooled connection is available again')
})

t.test('an aborted request rejects with the abort, not an upstream code', async (t) => {
  const { url } = await serve(t, () => undefined)
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  const ac = new AbortController()
  const pending = client.request('/x', { method: 'GET', signal: ac.signal })
  setTimeout(() => ac.abort(), 20)
  const err = await pending.catch((e: unknown) => e)
  t.notOk(err instanceof VcdnError, 'not counted against the upstream')
  t.equal((err as Error).name, 'AbortError')
})

t.test('the constructor names the invalid field', async (t) => {
  t.throws(() => new UpstreamClient({ baseUrl: 'nope' }), /options\.baseUrl/)
  t.throws(() => new UpstreamClient({ baseUrl: 'ftp://x' }), /options\.baseUrl/)
  t.throws(() => new UpstreamClient({ baseUrl: 'http://x', connections: 0 }), /options\.connections/)
  t.throws(
    () => new UpstreamClient({ baseUrl: 'http://x', secretHeader: { name: 'a b', value: 'x' } }),
    /options\.secretHeader/,
  )
})

t.test('combines repeated response header lines into one list value (RFC 9110 §5.3), Set-Cookie aside', async (t) => {
  const { url } = await serve(t, (_req, res) => {
    // Raw lines, as an origin sends them: two Cache-Control lines, two Age lines, two cookies.
    res.writeHead(
      200,
      [
        ['Cache-Control', 'max-age=60'],
        ['Cache-Control', 'must-revalidate'],
        ['Age', '7200'],
        ['Age', '0'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
      ].flat(),
    )
    res.end('ok')
  })
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  const res = await client.request('/v/a/x', { method: 'GET' })
  await text(res)
  t.equal(res.headers['cache-control'], 'max-age=60, must-revalidate')
  t.equal(res.headers['age'], '7200, 0', 'a list-valued Age stays visible as such')
  t.equal(res.headers['set-cookie'], 'a=1')
})

t.test('streams a request body of any method to the upstream as it arrives', async (t) => {
  const { url } = await serve(t, (req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => {
      n += c.length
    })
    req.on('end', () => res.end(`${req.method} ${req.url} ${n} ${req.headers['transfer-encoding'] ?? '-'}`))
  })
  const client = new UpstreamClient({ baseUrl: url })
  t.teardown(() => client.close())
  async function* body(): AsyncIterable<Uint8Array> {
    for (let i = 0; i < 4; i++) yield Buffer.alloc(64 * 1024, i)
  }
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const res = await client.request('/items/1?x=1', { method, body: body() })
    t.equal(await text(res), `${method} /items/1?x=1 262144 chunked`)
  }
})
