// Requests with ambiguous framing or that uWS 20.30 cannot parse, over raw sockets on 127.0.0.1.
// Ambiguous Content-Length is refused by the adapter; what uWS never hands to the adapter is a
// documented limit (shared/http/README.md), and these tests pin what is true of it: the connection
// gets no answer, is closed within a bound, and every other connection is served meanwhile.
import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { HttpServer } from '../index.js'

interface Exchange {
  /** Everything the server sent before it closed the connection (or the deadline passed). */
  received: string
  isClosed: boolean
  elapsedMs: number
}

/** Send `parts` (each in its own write, the next after the previous was flushed) and read until close. */
function exchange(port: number, parts: string[], deadlineMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const startedMs = Date.now()
    let received = ''
    const sock = connect(port, '127.0.0.1')
    const finish = (isClosed: boolean): void => {
      clearTimeout(timer)
      sock.destroy()
      resolve({ received, isClosed, elapsedMs: Date.now() - startedMs })
    }
    const timer = setTimeout(() => finish(false), deadlineMs)
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => (received += d))
    // A reset (the server closed with our bytes unread) is a close as well.
    sock.on('error', () => finish(true))
    sock.on('close', () => finish(true))
    sock.once('connect', () => {
      const next = (i: number): void => {
        if (i < parts.length && !sock.destroyed) sock.write(parts[i] as string, () => next(i + 1))
      }
      next(0)
    })
  })
}

async function recordingServer(t: Test): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = []
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: async (req, res) => {
      seen.push(`${req.method} ${req.path}`)
      await req.readBody(1024 * 1024)
      const body = Buffer.from(`served ${req.path}`)
      res.start(200, { 'content-type': 'text/plain' }, body.byteLength)
      res.end(body)
    },
  })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  return { port, seen }
}

// Closed by the adapter at once; uWS's own idle timer would take 8–12 s. Generous for a busy box.
const PROMPT_CLOSE_MS = 5000
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'

const framingCases: { name: string; parts: string[] }[] = [
  {
    name: 'a POST with two different Content-Length lines, smuggled request in the same packet',
    parts: [`POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello${SMUGGLED}`],
  },
  {
    name: 'a POST with two different Content-Length lines, smuggled request in a later packet',
    parts: ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello', SMUGGLED],
  },
  {
    name: 'a GET with two Content-Length lines',
    parts: [`GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  },
  {
    name: 'a POST whose first Content-Length line is empty',
    parts: [`POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  },
  {
    name: 'a POST with two equal Content-Length lines',
    parts: ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'],
  },
  {
    name: 'a POST whose Content-Length is not a number',
    parts: ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello'],
  },
  {
    name: 'a POST whose Content-Length is a list',
    parts: ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello'],
  },
]

for (const c of framingCases) {
  t.test(`${c.name}: the connection closes and no request on it runs`, async (t) => {
    const { port, seen } = await recordingServer(t)
    const got = await exchange(port, c.parts, PROMPT_CLOSE_MS)
    t.ok(got.isClosed, `closed within ${PROMPT_CLOSE_MS} ms (took ${got.elapsedMs} ms)`)
    t.notMatch(got.received, /served \/smuggled/, 'the smuggled request was not answered')
    t.same(seen, [], 'the handler saw neither request')
    // The server goes on serving.
    const next = await exchange(port, ['GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 10_000)
    t.match(next.received, /^HTTP\/1\.1 200 OK[\s\S]*served \/next$/)
  })
}

t.test('one Content-Length frames a POST and the pipelined request behind it is served', async (t) => {
  const { port, seen } = await recordingServer(t)
  const got = await exchange(
    port,
    [
      `POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello${SMUGGLED.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')}`,
    ],
    10_000,
  )
  t.match(got.received, /served \/a[\s\S]*served \/smuggled$/)
  t.same(seen, ['POST /a', 'GET /smuggled'])
})

// What uWS 20.30 never hands to the adapter (its parser accepts only "HTTP/1.1", origin-form
// targets, at most 48 field lines, CRLF line ends, no whitespace before a colon and no folding).
// It treats such bytes as an incomplete request: no answer, closed by its idle timer (10 s, checked
// every 4 s), or at once when the unparsed bytes pass its 4 KiB buffer.
const IDLE_CLOSE_MS = 30_000
const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-F${i}: v\r\n`).join('')
const unparsed: { name: string; request: string }[] = [
  { name: 'HTTP/1.0 with Host', request: 'GET /a HTTP/1.0\r\nHost: x\r\n\r\n' },
  { name: 'HTTP/1.0 without Host', request: 'GET /a HTTP/1.0\r\n\r\n' },
  { name: 'HTTP/1.0 keep-alive', request: 'GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n' },
  { name: 'HTTP/1.1 with no header field at all', request: 'GET /a HTTP/1.1\r\n\r\n' },
  { name: 'an obs-fold continuation line', request: 'GET /a HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n' },
  { name: 'bare LF line ends', request: 'GET /a HTTP/1.1\nHost: x\n\n' },
  { name: '49 header field lines', request: `GET /a HTTP/1.1\r\nHost: x\r\n${fields(48)}\r\n` },
  { name: 'an absolute-form target', request: 'GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n' },
  { name: 'whitespace before a colon', request: 'GET /a HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n' },
]

t.test('requests uWS cannot parse get no answer, are closed by its idle timer, and disturb no one', async (t) => {
  const { port, seen } = await recordingServer(t)
  const pending = unparsed.map((c) => exchange(port, [c.request], IDLE_CLOSE_MS).then((got) => ({ ...c, got })))
  // While every one of them is held open, other clients are served.
  const served = await exchange(port, ['GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 10_000)
  t.match(served.received, /served \/other$/, 'another client is served meanwhile')
  for (const { name, got } of await Promise.all(pending)) {
    t.equal(got.received, '', `${name}: no answer`)
    t.ok(got.isClosed, `${name}: closed within ${IDLE_CLOSE_MS} ms (took ${got.elapsedMs} ms)`)
  }
  t.same(seen, ['GET /other'], 'the handler saw none of them')
})

t.test('48 header field lines are still parsed (the largest count uWS accepts)', async (t) => {
  const { port } = await recordingServer(t)
  const got = await exchange(port, [`GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${fields(46)}\r\n`], 10_000)
  t.match(got.received, /served \/a$/)
})

t.test('an unparsed request past 4 KiB is closed at once', async (t) => {
  const { port } = await recordingServer(t)
  const got = await exchange(port, [`GET /a HTTP/1.0\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`], PROMPT_CLOSE_MS)
  t.equal(got.received, '')
  t.ok(got.isClosed, `closed within ${PROMPT_CLOSE_MS} ms (took ${got.elapsedMs} ms)`)
})
