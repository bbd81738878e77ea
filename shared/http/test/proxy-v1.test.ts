// PROXY protocol version 1 (docs/architecture.md §3): the strict parser of the v1 line, the v2
// header the front end writes, and the front end itself (node:net) before a real HttpServer.
import t, { type Test } from 'tap'
import {
  HttpServer,
  ProxyV1Listener,
  TrustedProxies,
  frontEndAddress,
  sendJson,
  type IncomingRequest,
} from '../index.js'
import { addressText, encodeProxyV2, parseProxyV1, ProxyPeers, PROXY_V1_MAX_BYTES } from '../proxy-protocol.js'
import { RawConnection, proxyV1Header, proxyV2Header } from '../../testing/index.js'

const VIEWER = '203.0.113.7'
const GET = 'GET /who HTTP/1.1\r\nHost: edge\r\n\r\n'
const TIMEOUT_MS = 30_000
const silent = { info: () => {}, warn: () => {}, error: () => {} }

t.test('parseProxyV1 reads TCP4, TCP6 and UNKNOWN lines and refuses anything else', async (t) => {
  const tcp4 = parseProxyV1('PROXY TCP4 203.0.113.7 192.0.2.1 51234 80')
  t.ok(tcp4 !== null && tcp4.kind === 'tcp')
  if (tcp4?.kind === 'tcp') {
    t.equal(addressText(tcp4.source), VIEWER)
    t.equal(addressText(tcp4.destination), '192.0.2.1')
    t.same([tcp4.sourcePort, tcp4.destinationPort], [51234, 80])
  }
  const tcp6 = parseProxyV1('PROXY TCP6 2001:db8::7 ::1 65535 0')
  t.ok(tcp6 !== null && tcp6.kind === 'tcp')
  if (tcp6?.kind === 'tcp') {
    t.equal(addressText(tcp6.source), '2001:db8::7')
    t.equal(addressText(tcp6.destination), '::1')
    t.same([tcp6.sourcePort, tcp6.destinationPort], [65535, 0])
  }
  const mapped = parseProxyV1('PROXY TCP6 ::ffff:203.0.113.7 1:2:3:4:5:6:1.2.3.4 1 2')
  t.ok(mapped !== null && mapped.kind === 'tcp')
  if (mapped?.kind === 'tcp') {
    t.equal(addressText(mapped.source), VIEWER, 'IPv4-mapped: as IPv4')
    t.equal(Buffer.from(mapped.destination).toString('hex'), '00010002000300040005000601020304')
  }
  t.same(parseProxyV1('PROXY UNKNOWN'), { kind: 'unknown' })
  t.same(parseProxyV1('PROXY UNKNOWN ffff:f::1 ::1 1 2'), { kind: 'unknown' }, 'the rest of UNKNOWN is ignored')
  const bad = [
    '',
    'PROXY',
    'PROXY TCP4 203.0.113.7 192.0.2.1 51234',
    'PROXY TCP4 203.0.113.7 192.0.2.1 51234 80 9',
    'PROXY TCP4  203.0.113.7 192.0.2.1 51234 80',
    'proxy TCP4 203.0.113.7 192.0.2.1 51234 80',
    'PROXY TCP5 203.0.113.7 192.0.2.1 51234 80',
    'PROXY TCP4 2001:db8::7 192.0.2.1 51234 80',
    'PROXY TCP6 203.0.113.7 ::1 51234 80',
    'PROXY TCP6 fe80::1%eth0 ::1 51234 80',
    'PROXY TCP4 203.0.113.07 192.0.2.1 51234 80',
    'PROXY TCP4 203.0.113.7 192.0.2.1 65536 80',
    'PROXY TCP4 203.0.113.7 192.0.2.1 080 80',
    'PROXY TCP4 203.0.113.7 192.0.2.1 -1 80',
    'PROXY TCP4 203.0.113.7 192.0.2.1 51234 80 ',
    'PROXY UNKNOWNX',
  ]
  for (const line of bad) t.equal(parseProxyV1(line), null, JSON.stringify(line))
})

t.test('encodeProxyV2 writes the header uWS and the test balancer agree on, IPv4 and IPv6', async (t) => {
  const v4 = parseProxyV1('PROXY TCP4 203.0.113.7 127.0.0.1 51234 80')
  const v6 = parseProxyV1('PROXY TCP6 2001:db8::7 ::1 51234 80')
  if (v4?.kind !== 'tcp' || v6?.kind !== 'tcp') throw new Error('parse failed')
  t.same(encodeProxyV2(v4), proxyV2Header({ source: VIEWER }))
  t.same(encodeProxyV2(v6), proxyV2Header({ source: '2001:db8::7' }))
  const mixed = encodeProxyV2({ ...v4, destination: v6.destination })
  t.equal(mixed[13], 0x21, 'families that differ: TCP over IPv6')
  t.equal(addressText(mixed.subarray(16, 32)), VIEWER, 'the IPv4 source mapped')
  t.equal(mixed.length, 16 + 36)
})

t.test("ProxyPeers: the front end's header is believed; without proxies every other peer is itself", async (t) => {
  const alone = new ProxyPeers(null, '127.9.8.7')
  t.equal(alone.clientOf('127.9.8.7', VIEWER), VIEWER)
  t.equal(alone.clientOf('127.0.0.1', VIEWER), '127.0.0.1', "another peer's header is ignored")
  t.equal(alone.clientOf('192.0.2.1', ''), '192.0.2.1')
  const both = new ProxyPeers(new TrustedProxies(['10.0.0.0/8']), '127.9.8.7')
  t.equal(both.clientOf('127.9.8.7', VIEWER), VIEWER)
  t.equal(both.clientOf('10.0.0.1', VIEWER), VIEWER)
  t.equal(both.clientOf('127.0.0.1', VIEWER), null, 'with proxyProtocol an untrusted peer is closed')
  t.match(frontEndAddress(), /^127\.([1-9]\d{0,2})\.\d{1,3}\.\d{1,3}$/)
})

/** An HttpServer answering its client address, the v1 front end before it; resolves with both ports. */
async function frontedServer(
  t: Test,
  opts: { trusted: string[]; isV2Too?: boolean; headerTimeoutMs?: number },
): Promise<{ port: number; v1Port: number }> {
  const localAddress = frontEndAddress()
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: async (req: IncomingRequest, res) => {
      const client = req.remoteAddress
      const body = req.method === 'POST' ? await req.readBody(8 * 1024 * 1024) : null
      sendJson(res, 200, { client, bytes: body?.length ?? 0, sum: body === null ? 0 : checksum(body) })
    },
    proxyFrontEnd: localAddress,
    ...(opts.isV2Too === true ? { proxyProtocol: new TrustedProxies(opts.trusted) } : {}),
  })
  const port = await server.listen()
  const v1 = new ProxyV1Listener({
    host: '127.0.0.1',
    port: 0,
    proxies: new TrustedProxies(opts.trusted),
    target: { host: '127.0.0.1', port },
    localAddress,
    log: silent,
    ...(opts.headerTimeoutMs !== undefined ? { headerTimeoutMs: opts.headerTimeoutMs } : {}),
  })
  const v1Port = await v1.listen()
  t.teardown(async () => {
    v1.close()
    await server.drain(0)
  })
  return { port, v1Port }
}

function checksum(bytes: Uint8Array): number {
  let sum = 0
  for (let i = 0; i < bytes.length; i += 997) sum = (sum * 31 + (bytes[i] ?? 0)) % 1_000_003
  return sum
}

/** Write `bytes` on a new connection and read one response's JSON, or 'closed'. */
async function exchange(t: Test, port: number, bytes: Buffer | string): Promise<Record<string, unknown> | 'closed'> {
  const conn = await RawConnection.open(port)
  t.teardown(() => conn.destroy())
  await conn.write(bytes)
  try {
    const res = await conn.response({ timeoutMs: TIMEOUT_MS })
    return JSON.parse(res.body.toString()) as Record<string, unknown>
  } catch (err) {
    // No answer: a FIN, or a reset when bytes arrived after the front end closed.
    if (err instanceof Error && /^connection closed before a response head \(0 bytes|ECONNRESET/.test(err.message)) {
      return 'closed'
    }
    throw err
  }
}

const clientOf = async (t: Test, port: number, bytes: Buffer | string): Promise<unknown> => {
  const r = await exchange(t, port, bytes)
  return r === 'closed' ? r : r['client']
}

t.test('through the v1 front end the line names the client, IPv4 and IPv6; UNKNOWN: the proxy', async (t) => {
  const { port, v1Port } = await frontedServer(t, { trusted: ['127.0.0.0/8'] })
  t.equal(await clientOf(t, v1Port, Buffer.concat([proxyV1Header(VIEWER), Buffer.from(GET)])), VIEWER)
  t.equal(
    await clientOf(t, v1Port, Buffer.concat([proxyV1Header('2001:db8::7', '::1'), Buffer.from(GET)])),
    '2001:db8::7',
  )
  t.equal(await clientOf(t, v1Port, `PROXY UNKNOWN\r\n${GET}`), '127.0.0.1', 'UNKNOWN: the peer')
  t.equal(await clientOf(t, port, GET), '127.0.0.1', 'the plain listener serves others as before')
  t.equal(
    await clientOf(t, port, Buffer.concat([proxyV2Header({ source: VIEWER }), Buffer.from(GET)])),
    '127.0.0.1',
    "and ignores a header from any peer but the front end's address",
  )
  // The line and the request in separate writes, and two requests on one connection.
  const conn = await RawConnection.open(v1Port)
  t.teardown(() => conn.destroy())
  await conn.write('PROXY TCP4 198.51.100.2 ')
  await conn.write(`127.0.0.1 1 80\r\n${GET.slice(0, 10)}`)
  await conn.write(GET.slice(10))
  t.equal(
    (JSON.parse((await conn.response({ timeoutMs: TIMEOUT_MS })).body.toString()) as { client: string }).client,
    '198.51.100.2',
  )
  await conn.write(GET)
  t.equal(
    (JSON.parse((await conn.response({ timeoutMs: TIMEOUT_MS })).body.toString()) as { client: string }).client,
    '198.51.100.2',
    'kept alive',
  )
})

t.test('with proxyProtocol too, the plain listener believes its trusted peers and the front end', async (t) => {
  const { port, v1Port } = await frontedServer(t, { trusted: ['127.0.0.1/32'], isV2Too: true })
  t.equal(await clientOf(t, v1Port, Buffer.concat([proxyV1Header(VIEWER), Buffer.from(GET)])), VIEWER)
  t.equal(
    await clientOf(t, port, Buffer.concat([proxyV2Header({ source: '198.51.100.3' }), Buffer.from(GET)])),
    '198.51.100.3',
  )
})

t.test('bad lines, a slow line, an untrusted peer and a smuggled v2 header are closed without an answer', async (t) => {
  const { v1Port } = await frontedServer(t, { trusted: ['127.0.0.0/8'], headerTimeoutMs: 300 })
  const cases: [string, Buffer | string][] = [
    ['a request without a line', GET],
    ['a version 2 header', Buffer.concat([proxyV2Header({ source: VIEWER }), Buffer.from(GET)])],
    ['a malformed line', `PROXY TCP4 ${VIEWER} 127.0.0.1 51234\r\n${GET}`],
    ['a line over 107 bytes', `PROXY UNKNOWN ${'x'.repeat(PROXY_V1_MAX_BYTES)}\r\n${GET}`],
    ['a line cut short (the timeout)', 'PROXY TCP4 203.0.113.7'],
    [
      'a v2 header smuggled after the line',
      Buffer.concat([proxyV1Header(VIEWER), proxyV2Header({ source: '192.0.2.9' }), Buffer.from(GET)]),
    ],
  ]
  for (const [what, bytes] of cases) t.equal(await exchange(t, v1Port, bytes), 'closed', what)
  const conn = await RawConnection.open(v1Port)
  t.teardown(() => conn.destroy())
  await conn.write(Buffer.concat([proxyV1Header(VIEWER), Buffer.from(GET)]))
  await conn.response({ timeoutMs: TIMEOUT_MS })
  const signature = proxyV2Header({ source: '192.0.2.9' })
  await conn.write(signature.subarray(0, 5))
  await conn.write(Buffer.concat([signature.subarray(5), Buffer.from(GET)]))
  await t.rejects(
    conn.response({ timeoutMs: TIMEOUT_MS }),
    /connection closed before a response head/,
    'split across writes, on a second request',
  )
  t.equal(await clientOf(t, v1Port, Buffer.concat([proxyV1Header(VIEWER), Buffer.from(GET)])), VIEWER, 'still serving')

  const untrusted = await frontedServer(t, { trusted: ['10.0.0.0/8'] })
  t.equal(
    await exchange(t, untrusted.v1Port, Buffer.concat([proxyV1Header(VIEWER), Buffer.from(GET)])),
    'closed',
    'untrusted peer',
  )
})

t.test('a 2 MB request body passes whole through the front end', async (t) => {
  const { v1Port } = await frontedServer(t, { trusted: ['127.0.0.0/8'] })
  const body = Buffer.alloc(2 * 1024 * 1024)
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 11)) & 0xff
  const head = `POST /up HTTP/1.1\r\nHost: edge\r\nContent-Length: ${body.length}\r\n\r\n`
  const r = await exchange(t, v1Port, Buffer.concat([proxyV1Header(VIEWER), Buffer.from(head), body]))
  t.same(r, { client: VIEWER, bytes: body.length, sum: checksum(body) })
})
