// PROXY protocol on a real edge (docs/architecture.md §3): with `proxyProtocol`, the version 2
// header a trusted load balancer writes before the request names the client for IP-bound tokens
// and the access line; without it, a header a client sends never does.
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import t, { type Test } from 'tap'
import {
  RawConnection,
  makeTestCa,
  proxyV1Header,
  proxyV2Header,
  tempDir,
  waitFor,
} from '../../../shared/testing/index.js'
import { randomBytes, topology, type Topology } from './topology.js'

interface AccessLine {
  access: true
  status: number
  client: string
  ua: string | null
  code?: string
}

const VIEWER = '203.0.113.7'
const VIEWER6 = '2001:db8::7'
const SEGMENT = '/v/pp/720p/seg_00001.m4s'
const TIMEOUT_MS = 30_000
/** uWS closes a connection it cannot parse by its idle timer (10 s on a 4 s tick): room for a slow machine. */
const IDLE_CLOSE_MS = 60_000

function accessLines(topo: Topology): AccessLine[] {
  return topo.edge
    .output()
    .split('\n')
    .filter((l) => l.includes('"access":true'))
    .map((l) => JSON.parse(l) as AccessLine)
}

function get(path: string, ua: string): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: edge\r\nUser-Agent: ${ua}\r\n\r\n`, 'latin1')
}

/** Status and error code of the one response to `bytes` on a new connection. */
async function exchange(port: number, bytes: Buffer): Promise<{ status: number; code: string | undefined }> {
  const conn = await RawConnection.open(port)
  try {
    await conn.write(bytes)
    const res = await conn.response({ timeoutMs: TIMEOUT_MS })
    const code =
      res.status === 200 ? undefined : (JSON.parse(res.body.toString()) as { error: { code: string } }).error.code
    return { status: res.status, code }
  } finally {
    conn.destroy()
  }
}

/** Write `bytes` and expect no answer and a close (uWS's refusal). */
async function expectClosed(
  t: Test,
  port: number,
  bytes: Buffer,
  what: string,
  timeoutMs = TIMEOUT_MS,
  closedAs = /connection closed before a response head \(0 bytes/,
) {
  const conn = await RawConnection.open(port)
  try {
    await conn.write(bytes)
    await t.rejects(conn.response({ timeoutMs }), closedAs, what)
  } finally {
    conn.destroy()
  }
}

t.test('a PROXY v2 header from a trusted load balancer decides IP-bound tokens and the access line', async (t) => {
  const topo = await topology({
    shields: 1,
    edge: { accessLog: true, trustedProxies: ['127.0.0.0/8'], proxyProtocol: true },
  })
  t.teardown(() => topo.close())
  await topo.store.put(SEGMENT.slice(1), randomBytes(1000, 11))
  const line = (ua: string): Promise<AccessLine> =>
    waitFor(() => accessLines(topo).find((l) => l.ua === ua), { what: `the access line of ${ua}` })

  t.test("the header's source address is the client: a token bound to it plays", async (t) => {
    const r = await exchange(
      topo.edge.port,
      Buffer.concat([proxyV2Header({ source: VIEWER }), get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-v2/1')]),
    )
    t.same(r, { status: 200, code: undefined })
    t.equal((await line('pp-v2/1')).client, VIEWER)
  })

  t.test('another source address is refused with ERR_TOKEN_IP and logged with its code', async (t) => {
    const header = proxyV2Header({ source: '198.51.100.1' })
    const r = await exchange(
      topo.edge.port,
      Buffer.concat([header, get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-v2/2')]),
    )
    t.same(r, { status: 403, code: 'ERR_TOKEN_IP' })
    const l = await line('pp-v2/2')
    t.equal(l.client, '198.51.100.1')
    t.equal(l.code, 'ERR_TOKEN_IP')
  })

  t.test('an IPv6 source address binds like any other', async (t) => {
    const header = proxyV2Header({ source: VIEWER6 })
    const r = await exchange(
      topo.edge.port,
      Buffer.concat([header, get(topo.sign(SEGMENT, { ip: VIEWER6 }), 'pp-v2/6')]),
    )
    t.same(r, { status: 200, code: undefined })
    t.equal((await line('pp-v2/6')).client, VIEWER6)
  })

  t.test('a LOCAL header (a health check) or none from the balancer: the balancer is the client', async (t) => {
    const bound = topo.sign(SEGMENT, { ip: '127.0.0.1' })
    const local = await exchange(
      topo.edge.port,
      Buffer.concat([proxyV2Header({ command: 'local' }), get(bound, 'pp-local')]),
    )
    t.same(local, { status: 200, code: undefined })
    t.same(await exchange(topo.edge.port, get(bound, 'pp-none')), { status: 200, code: undefined })
    t.equal((await line('pp-none')).client, '127.0.0.1')
  })

  t.test('malformed, truncated and version 1 headers get no answer and a close; the edge lives', async (t) => {
    const good = proxyV2Header({ source: VIEWER })
    const badSignature = Buffer.from(good)
    badSignature[7] = 0x00
    const request = get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-bad')
    await Promise.all([
      expectClosed(t, topo.edge.port, Buffer.concat([badSignature, request]), 'a bad signature', IDLE_CLOSE_MS),
      expectClosed(t, topo.edge.port, good.subarray(0, 19), 'a header cut short', IDLE_CLOSE_MS),
      expectClosed(t, topo.edge.port, Buffer.concat([proxyV1Header(VIEWER), request]), 'version 1', IDLE_CLOSE_MS),
    ])
    t.equal(topo.edge.proc.exitCode, null, 'the edge is still running')
    const r = await exchange(topo.edge.port, Buffer.concat([good, get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-after')]))
    t.same(r, { status: 200, code: undefined }, 'and serves the next connection')
  })

  t.test('a peer outside trustedProxies is closed, with a header or without', async (t) => {
    await topo.edge.stop()
    await topo.startEdge({ trustedProxies: ['10.0.0.0/8'] })
    const request = get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-untrusted')
    await expectClosed(t, topo.edge.port, Buffer.concat([proxyV2Header({ source: VIEWER }), request]), 'with a header')
    await expectClosed(t, topo.edge.port, request, 'without a header')
    t.notOk(
      accessLines(topo).some((l) => l.ua === 'pp-untrusted'),
      'nothing served',
    )
  })

  t.test("without proxyProtocol a client's PROXY header is ignored: the socket peer is the client", async (t) => {
    await topo.edge.stop()
    await topo.startEdge({ proxyProtocol: false })
    const header = proxyV2Header({ source: VIEWER })
    const spoofed = await exchange(
      topo.edge.port,
      Buffer.concat([header, get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-off-1')]),
    )
    t.same(spoofed, { status: 403, code: 'ERR_TOKEN_IP' })
    t.equal((await line('pp-off-1')).client, '127.0.0.1')
    const own = await exchange(
      topo.edge.port,
      Buffer.concat([header, get(topo.sign(SEGMENT, { ip: '127.0.0.1' }), 'pp-off-2')]),
    )
    t.same(own, { status: 200, code: undefined }, "the request behind the header is served as the peer's")
  })
})

t.test('a PROXY v1 listener (proxyProtocolV1) decides IP-bound tokens and the access line', async (t) => {
  const v1Edge = { accessLog: true, trustedProxies: ['127.0.0.0/8'], proxyProtocolV1: { host: '127.0.0.1', port: 0 } }
  const topo = await topology({ shields: 1, edge: v1Edge })
  t.teardown(() => topo.close())
  const big = randomBytes(2 * 1024 * 1024, 13)
  const BIG = '/v/pp/720p/seg_00002.m4s'
  await topo.store.put(SEGMENT.slice(1), randomBytes(1000, 11))
  await topo.store.put(BIG.slice(1), big)
  const line = (ua: string): Promise<AccessLine> =>
    waitFor(() => accessLines(topo).find((l) => l.ua === ua), { what: `the access line of ${ua}` })
  const v1 = (source: string, ua: string, bound = source, destination?: string): Buffer =>
    Buffer.concat([proxyV1Header(source, destination), get(topo.sign(SEGMENT, { ip: bound }), ua)])

  t.test("the line's source address is the client: a token bound to it plays, another is refused", async (t) => {
    t.ok(topo.edge.proxyV1Port > 0, 'the listening line names the v1 port')
    t.same(await exchange(topo.edge.proxyV1Port, v1(VIEWER, 'pp-v1/1')), { status: 200, code: undefined })
    t.equal((await line('pp-v1/1')).client, VIEWER)
    const other = await exchange(topo.edge.proxyV1Port, v1('198.51.100.1', 'pp-v1/2', VIEWER))
    t.same(other, { status: 403, code: 'ERR_TOKEN_IP' })
    const l = await line('pp-v1/2')
    t.equal(l.client, '198.51.100.1')
    t.equal(l.code, 'ERR_TOKEN_IP')
    const v6 = await exchange(topo.edge.proxyV1Port, v1(VIEWER6, 'pp-v1/6', VIEWER6, '::1'))
    t.same(v6, { status: 200, code: undefined }, 'a TCP6 source binds like any other')
    t.equal((await line('pp-v1/6')).client, VIEWER6)
  })

  t.test('PROXY UNKNOWN: the balancer is the client; the plain port still serves its own peers', async (t) => {
    const bound = get(topo.sign(SEGMENT, { ip: '127.0.0.1' }), 'pp-v1-unknown')
    const unknown = Buffer.concat([Buffer.from('PROXY UNKNOWN\r\n'), bound])
    t.same(await exchange(topo.edge.proxyV1Port, unknown), { status: 200, code: undefined })
    t.equal((await line('pp-v1-unknown')).client, '127.0.0.1')
    const direct = Buffer.concat([
      proxyV2Header({ source: VIEWER }),
      get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-v1-direct'),
    ])
    t.same(
      await exchange(topo.edge.port, direct),
      { status: 403, code: 'ERR_TOKEN_IP' },
      "a client's v2 header on the plain port is not believed",
    )
    t.equal((await line('pp-v1-direct')).client, '127.0.0.1')
  })

  t.test('a 2 MB segment arrives whole through the front end', async (t) => {
    const conn = await RawConnection.open(topo.edge.proxyV1Port)
    t.teardown(() => conn.destroy())
    await conn.write(Buffer.concat([proxyV1Header(VIEWER), get(topo.sign(BIG, { ip: VIEWER }), 'pp-v1-big')]))
    const res = await conn.response({ timeoutMs: TIMEOUT_MS })
    t.equal(res.status, 200)
    t.ok(res.body.equals(big), 'the same 2 MB')
  })

  t.test('a malformed line gets no answer and a close; the edge lives', async (t) => {
    const request = get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-v1-bad')
    await expectClosed(
      t,
      topo.edge.proxyV1Port,
      Buffer.concat([Buffer.from(`PROXY TCP4 ${VIEWER}\r\n`), request]),
      'malformed',
    )
    await expectClosed(t, topo.edge.proxyV1Port, request, 'no line at all')
    t.notOk(
      accessLines(topo).some((l) => l.ua === 'pp-v1-bad'),
      'nothing served',
    )
    t.equal(topo.edge.proc.exitCode, null, 'the edge is still running')
  })

  t.test('a peer outside trustedProxies is closed; with workers: 2 the front end feeds the workers', async (t) => {
    await topo.edge.stop()
    await topo.startEdge({ ...v1Edge, trustedProxies: ['10.0.0.0/8'] })
    // Closed as it is accepted, before a byte is read: the request may meet a reset instead of a FIN.
    const closedOrReset = /connection closed before a response head \(0 bytes|ECONNRESET/
    await expectClosed(
      t,
      topo.edge.proxyV1Port,
      v1(VIEWER, 'pp-v1-untrusted'),
      'untrusted peer',
      TIMEOUT_MS,
      closedOrReset,
    )
    t.notOk(
      accessLines(topo).some((l) => l.ua === 'pp-v1-untrusted'),
      'nothing served',
    )
    await topo.edge.stop()
    await topo.startEdge({ ...v1Edge, workers: 2 })
    for (let i = 0; i < 4; i++) {
      t.same(await exchange(topo.edge.proxyV1Port, v1(VIEWER, `pp-v1-w${i}`)), { status: 200, code: undefined })
      t.equal((await line(`pp-v1-w${i}`)).client, VIEWER)
    }
  })
})

/**
 * One request over TLS to 127.0.0.1:port: `before` is written in clear before the handshake,
 * `bytes` inside TLS. Resolves with the status and error code; rejects if the handshake fails.
 */
function tlsExchange(
  port: number,
  ca: string,
  before: Buffer | null,
  bytes: Buffer,
): Promise<{ status: number; code: string | undefined }> {
  return new Promise((resolve, reject) => {
    const raw = netConnect(port, '127.0.0.1', () => {
      if (before !== null) raw.write(before)
      const socket = tlsConnect({ socket: raw, ca, servername: 'edge.test' }, () => socket.write(bytes))
      let text = ''
      socket.setEncoding('latin1')
      socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('no reply')))
      socket.on('data', (chunk: string) => {
        text += chunk
        const end = text.indexOf('\r\n\r\n')
        const length = /content-length: (\d+)/i.exec(text)
        if (end === -1 || length === null || text.length < end + 4 + Number(length[1])) return
        socket.destroy()
        const status = Number(text.slice(9, 12))
        const body = text.slice(end + 4)
        resolve({
          status,
          code: status === 200 ? undefined : (JSON.parse(body) as { error: { code: string } }).error.code,
        })
      })
      socket.on('error', reject)
      socket.on('close', () => reject(new Error(`closed after ${text.length} bytes`)))
    })
    raw.on('error', reject)
  })
}

t.test(
  'HTTPS beside a PROXY listener: a header inside TLS is not believed, one before the handshake fails it',
  async (t) => {
    const tmp = tempDir('vcdn-pp-tls-')
    t.teardown(tmp.remove)
    const ca = makeTestCa(tmp.dir)
    const cert = ca.issue(['edge.test'])
    const topo = await topology({
      shields: 1,
      edge: {
        accessLog: true,
        trustedProxies: ['127.0.0.0/8'],
        proxyProtocol: true,
        tls: { cert: cert.cert, key: cert.key, listen: { host: '127.0.0.1', port: 0 } },
      },
    })
    t.teardown(() => topo.close())
    await topo.store.put(SEGMENT.slice(1), randomBytes(1000, 12))
    const tlsPort = topo.edge.tlsPort
    const header = proxyV2Header({ source: VIEWER })
    const inside = await tlsExchange(
      tlsPort,
      ca.certPem,
      null,
      Buffer.concat([header, get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-tls')]),
    )
    t.same(inside, { status: 403, code: 'ERR_TOKEN_IP' }, 'the socket peer is the client over HTTPS')
    const line = await waitFor(() => accessLines(topo).find((l) => l.ua === 'pp-tls'), { what: 'the access line' })
    t.equal(line.client, '127.0.0.1')
    await t.rejects(
      tlsExchange(tlsPort, ca.certPem, header, get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-tls-before')),
      'a header before the ClientHello fails the handshake',
    )
    const plain = Buffer.concat([header, get(topo.sign(SEGMENT, { ip: VIEWER }), 'pp-plain')])
    t.same(await exchange(topo.edge.port, plain), { status: 200, code: undefined }, 'the plain listener reads it')
    t.equal(topo.edge.proc.exitCode, null, 'the edge is still running')
  },
)
