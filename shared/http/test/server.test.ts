// The uWebSockets.js adapter: backpressure both ways, HEAD, aborts.
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { HttpServer, type Handler } from '../index.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function serve(t: Test, handler: Handler): Promise<string> {
  const server = new HttpServer({ host: '127.0.0.1', port: 0, handler })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  return `http://127.0.0.1:${port}`
}

const big = Buffer.alloc(32 * 1024 * 1024)
for (let i = 0; i < big.length; i += 4096) big[i] = i % 251

t.test('streams a known-length body to a slow reader without losing bytes', async (t) => {
  const url = await serve(t, async (_req, res) => {
    res.start(200, { 'content-type': 'application/octet-stream' }, big.length)
    for (let off = 0; off < big.length; off += 256 * 1024) await res.write(big.subarray(off, off + 256 * 1024))
    res.end()
  })
  const got = await new Promise<Buffer>((resolve, reject) => {
    request(url + '/x', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        // read slowly at first so the server hits backpressure
        if (chunks.length < 20) {
          res.pause()
          setTimeout(() => res.resume(), 2)
        }
      })
      res.on('end', () => resolve(Buffer.concat(chunks)))
      res.on('error', reject)
    })
      .on('error', reject)
      .end()
  })
  t.equal(got.length, big.length)
  t.equal(sha(got), sha(big))
})

t.test('streams a chunked body when the length is unknown', async (t) => {
  const url = await serve(t, async (_req, res) => {
    res.start(200, {})
    for (let off = 0; off < 4 * 1024 * 1024; off += 64 * 1024) await res.write(big.subarray(off, off + 64 * 1024))
    res.end()
  })
  const r = await fetch(url)
  t.equal(r.headers.get('transfer-encoding'), 'chunked')
  t.equal(sha(Buffer.from(await r.arrayBuffer())), sha(big.subarray(0, 4 * 1024 * 1024)))
})

t.test('HEAD reports Content-Length without a body', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.start(200, { 'x-a': '1' }, 12345)
    res.end()
  })
  const r = await fetch(url, { method: 'HEAD' })
  t.equal(r.headers.get('content-length'), '12345')
  t.equal(r.headers.get('x-a'), '1')
})

t.test('a request body streams in with backpressure and arrives intact', async (t) => {
  let received = ''
  const url = await serve(t, async (req, res) => {
    const h = createHash('sha256')
    let n = 0
    for await (const chunk of req.body) {
      h.update(chunk)
      n += chunk.byteLength
      if (n < 8 * 1024 * 1024) await new Promise((r) => setImmediate(r)) // a slow consumer
    }
    received = h.digest('hex')
    res.start(200, {}, 0)
    res.end()
  })
  const r = await fetch(url + '/up', { method: 'PUT', body: big })
  t.equal(r.status, 200)
  t.equal(received, sha(big))
})

t.test('readBody refuses bodies over the limit', async (t) => {
  const url = await serve(t, async (req, res) => {
    const body = await req.readBody(1000)
    res.start(body === null ? 413 : 200, {}, 0)
    res.end()
  })
  t.equal((await fetch(url, { method: 'POST', body: 'x'.repeat(10) })).status, 200)
  t.equal((await fetch(url, { method: 'POST', body: 'x'.repeat(5000) })).status, 413)
})

t.test('a client that goes away mid-response fires onAbort and releases the writer', async (t) => {
  let aborted = false
  let writerDone!: () => void
  const done = new Promise<void>((r) => (writerDone = r))
  const url = await serve(t, async (_req, res) => {
    res.onAbort(() => (aborted = true))
    res.start(200, {}, big.length)
    for (let off = 0; off < big.length && !res.isAborted; off += 256 * 1024)
      await res.write(big.subarray(off, off + 256 * 1024))
    writerDone()
  })
  await new Promise<void>((resolve) => {
    const req = request(url, (res) => {
      res.once('data', () => {
        req.destroy()
        resolve()
      })
    })
    req.on('error', () => undefined)
    req.end()
  })
  await done
  t.ok(aborted, 'onAbort fired and the write loop ended')
})

t.test('drain waits for in-flight responses', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: async (_req, res) => {
      await gate
      res.start(200, {}, 2)
      res.end(Buffer.from('ok'))
    },
  })
  const port = await server.listen()
  const pending = fetch(`http://127.0.0.1:${port}/`).then((r) => r.text())
  await new Promise((r) => setTimeout(r, 50))
  t.equal(server.inFlight, 1)
  const drained = server.drain(5000)
  release()
  t.equal(await pending, 'ok', 'the in-flight response completed')
  await drained
  t.equal(server.inFlight, 0)
})

/** Raw keep-alive client: what arrived on the wire, and a way to wait for more. */
function rawClient(
  url: string,
): Promise<{ socket: Socket; received: () => Buffer; waitFor: (n: number) => Promise<void> }> {
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let wake: (() => void) | null = null
    const socket = connect({ host: '127.0.0.1', port: Number(port) }, () =>
      resolve({
        socket,
        received: () => Buffer.concat(chunks, size),
        waitFor: async (n) => {
          const deadline = Date.now() + 10_000
          while (size < n) {
            if (Date.now() > deadline) throw new Error(`only ${size} of ${n} bytes arrived`)
            await new Promise<void>((r) => {
              wake = r
              setTimeout(r, 100)
            })
          }
        },
      }),
    )
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      size += c.length
      wake?.()
    })
    socket.on('error', reject)
  })
}

t.test(
  'a response started after an await sends its whole head before any body byte, then the body intact',
  async (t) => {
    const body = big.subarray(0, 8 * 1024 * 1024)
    let releaseBody!: () => void
    const bodyGate = new Promise<void>((r) => (releaseBody = r))
    const url = await serve(t, async (req, res) => {
      await new Promise((r) => setImmediate(r))
      res.start(200, { 'content-type': 'application/octet-stream', 'x-path': req.path }, body.length)
      if (req.path === '/gated') await bodyGate
      for (let off = 0; off < body.length; off += 64 * 1024) await res.write(body.subarray(off, off + 64 * 1024))
      res.end()
    })
    const c = await rawClient(url)
    t.teardown(() => c.socket.destroy())
    c.socket.write('GET /gated HTTP/1.1\r\nhost: x\r\n\r\n')
    await c.waitFor(1)
    // Headers only, complete, while the handler still holds the body back.
    await new Promise((r) => setTimeout(r, 50))
    const head = c.received().toString('latin1')
    t.ok(head.endsWith('\r\n\r\n'), 'the header block is complete and nothing follows it')
    t.match(head, /^HTTP\/1\.1 200 OK\r\n/)
    t.match(head, new RegExp(`\r\ncontent-length: ${body.length}\r\n`, 'i'))
    t.match(head, /\r\nx-path: \/gated\r\n/)
    releaseBody()
    await c.waitFor(head.length + body.length)
    t.equal(sha(c.received().subarray(head.length)), sha(body), 'the body follows the head byte for byte')
    // The connection is still in a clean state: a second request on it is answered in full.
    c.socket.write('GET /again HTTP/1.1\r\nhost: x\r\n\r\n')
    const before = c.received().length
    await c.waitFor(before + 1)
    await new Promise((r) => setTimeout(r, 20))
    const second = c.received().subarray(before).toString('latin1')
    const head2 = second.slice(0, second.indexOf('\r\n\r\n') + 4)
    t.match(head2, /\r\nx-path: \/again\r\n/)
    await c.waitFor(before + head2.length + body.length)
    t.equal(sha(c.received().subarray(before + head2.length)), sha(body))
    t.equal(c.received().length, before + head2.length + body.length, 'no stray bytes after the second body')
  },
)

t.test('start() then end(body) after an await still leaves in one write', async (t) => {
  const body = Buffer.from('hello, one packet')
  const url = await serve(t, async (_req, res) => {
    await new Promise((r) => setImmediate(r))
    res.start(200, { 'content-type': 'text/plain' }, body.length)
    res.end(body)
  })
  const c = await rawClient(url)
  t.teardown(() => c.socket.destroy())
  const first = new Promise<Buffer>((r) => c.socket.once('data', r))
  c.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n')
  const text = (await first).toString('latin1')
  t.ok(text.endsWith('\r\n\r\nhello, one packet'), 'head and body arrived together')
})

t.test('headers read one by one in the handler, or all of them after an await', async (t) => {
  const seen: Record<string, unknown>[] = []
  const url = await serve(t, async (req, res) => {
    const sync = { range: req.header('range'), empty: req.header('x-empty'), absent: req.header('x-absent') }
    if (req.path === '/sync') {
      seen.push(sync)
      res.start(200, {}, 0)
      res.end()
      return
    }
    await new Promise((r) => setImmediate(r))
    // uWS has reused its request object by now: these come from the copy taken as the handler returned.
    seen.push({ ...sync, later: req.header('x-later'), all: { ...req.headers } })
    res.start(200, {}, 0)
    res.end()
  })
  const c = await rawClient(url)
  t.teardown(() => c.socket.destroy())
  c.socket.write('GET /sync HTTP/1.1\r\nhost: x\r\nRange: bytes=0-1\r\nX-Empty:\r\n\r\n')
  await c.waitFor(1)
  c.socket.write('GET /async HTTP/1.1\r\nhost: x\r\nrange: bytes=2-3\r\nx-later: yes\r\nUser-Agent: t/1\r\n\r\n')
  const deadline = Date.now() + 5000
  while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  t.same(
    seen[0],
    { range: 'bytes=0-1', empty: undefined, absent: undefined },
    'header() reads the live request; empty reads as absent',
  )
  t.same(
    seen[1],
    {
      range: 'bytes=2-3',
      empty: undefined,
      absent: undefined,
      later: 'yes',
      all: { host: 'x', range: 'bytes=2-3', 'x-later': 'yes', 'user-agent': 't/1' },
    },
    'after an await header() and headers answer from the copy, names lower-cased',
  )
})
