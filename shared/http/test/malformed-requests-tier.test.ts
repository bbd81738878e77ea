// The same framing and parsing limits seen from a real tier process (a shield with its access log
// on) over raw sockets on 127.0.0.1: what reaches the tier's handler shows up in its access log.
import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { startTier, tempDir, waitFor, type TierProcess } from '../../testing/index.js'

const SECRET = 'tier-secret-for-tests-0123456789abcdef'

/** Send raw bytes and collect the answer until the server closes or the deadline passes. */
function exchange(port: number, text: string, deadlineMs: number): Promise<{ received: string; isClosed: boolean }> {
  return new Promise((resolve) => {
    let received = ''
    const sock = connect(port, '127.0.0.1')
    const finish = (isClosed: boolean): void => {
      clearTimeout(timer)
      sock.destroy()
      resolve({ received, isClosed })
    }
    const timer = setTimeout(() => finish(false), deadlineMs)
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => (received += d))
    sock.on('error', () => finish(true))
    sock.on('close', () => finish(true))
    sock.write(text)
  })
}

async function shield(t: Test): Promise<TierProcess> {
  const tmp = tempDir('vcdn-malformed-')
  const node = await startTier(
    'shield',
    {
      tierSecret: SECRET,
      listen: { host: '127.0.0.1', port: 0 },
      // Never reachable: every request that gets through is answered 502 and logged.
      upstreams: ['http://127.0.0.1:9'],
      cache: { dir: `${tmp.dir}/cache` },
      accessLog: true,
    },
    { dir: tmp.dir },
  )
  t.teardown(async () => {
    await node.stop()
    tmp.remove()
  })
  return node
}

const get = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nx-vcdn-tier: ${SECRET}\r\n${extra}`

t.test('a request smuggled behind a repeated Content-Length never reaches the shield', async (t) => {
  const node = await shield(t)
  const smuggled = `${get('/v/smuggled/b.ts')}\r\n`
  const got = await exchange(
    node.port,
    // The carrier has no tier secret, so it is answered (401) inside the uWS handler: uWS then goes
    // on to parse the smuggled bytes on the same connection (a carrier still pending would make
    // uWS drop the pipelined request by itself).
    `GET /v/carrier/a.ts HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    5000,
  )
  t.ok(got.isClosed, 'the connection is closed at once')
  t.equal(got.received, '', 'nothing is answered on it')
  // A control request on a new connection is answered and logged, so the log is live.
  const control = await exchange(node.port, `${get('/v/control/c.ts', 'Connection: close\r\n')}\r\n`, 15_000)
  t.match(control.received, /^HTTP\/1\.1 \d{3} /, 'a well-framed request is answered')
  await waitFor(() => node.output().includes('/v/control/c.ts'), { what: 'the control access line', timeoutMs: 15_000 })
  t.notMatch(node.output(), /\/v\/smuggled\//, 'the smuggled request was never served')
  t.notMatch(node.output(), /\/v\/carrier\//, 'nor the request that carried it')
})

t.test('HTTP/1.0 on the public and admin listeners gets no answer, and the shield keeps serving', async (t) => {
  const node = await shield(t)
  const request = 'GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n'
  // uWS 20.30 closes such connections with its idle timer: 8-12 s; generous for a busy machine.
  const pending = [exchange(node.port, request, 30_000), exchange(node.adminPort, request, 30_000)]
  const health = await fetch(`${node.adminUrl}/healthz`)
  await health.arrayBuffer()
  t.equal(health.status, 200, 'HTTP/1.1 clients are served meanwhile')
  const [pub, admin] = await Promise.all(pending)
  t.same(pub, { received: '', isClosed: true }, 'public listener: no answer, connection closed')
  t.same(admin, { received: '', isClosed: true }, 'admin listener: no answer, connection closed')
  t.equal(node.proc.exitCode, null, 'the shield is still running')
})
