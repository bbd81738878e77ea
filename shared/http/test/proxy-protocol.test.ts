// PROXY protocol on the plain-HTTP listener (docs/architecture.md §3): uWS parses a version 2
// header; the server believes its source address only from trusted peers and only where enabled.
import t, { type Test } from 'tap'
import { HttpServer, TrustedProxies, sendJson, type IncomingRequest } from '../index.js'
import { addressText, ProxyPeers } from '../proxy-protocol.js'
import { RawConnection, proxyV1Header, proxyV2Header } from '../../testing/index.js'

const VIEWER = '203.0.113.7'
const GET = 'GET /who HTTP/1.1\r\nHost: edge\r\n\r\n'
const TIMEOUT_MS = 30_000
/** uWS closes a connection it cannot parse by its idle timer (10 s on a 4 s tick): room for a slow machine. */
const IDLE_CLOSE_MS = 60_000

t.test(
  'addressText formats 4 and 16 bytes as tokens bind them: dotted IPv4, mapped as IPv4, RFC 5952 IPv6',
  async (t) => {
    t.equal(addressText(Uint8Array.from([203, 0, 113, 7])), '203.0.113.7')
    const v6 = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'))
    t.equal(addressText(v6('00000000000000000000ffffcb007107')), '203.0.113.7')
    t.equal(addressText(v6('20010db8000000000000000000000001')), '2001:db8::1')
    t.equal(addressText(v6('00000000000000000000000000000001')), '::1')
    t.equal(addressText(v6('00000000000000000000000000000000')), '::')
    t.equal(addressText(v6('20010db8000000010000000000000001')), '2001:db8:0:1::1', 'the longest zero run')
    t.equal(addressText(v6('20010db8000000010001000100010001')), '2001:db8:0:1:1:1:1:1', 'one zero group stays')
    t.equal(addressText(v6('20010000000000010000000000000000')), '2001:0:0:1::', 'the later run when longer')
    t.equal(addressText(new Uint8Array(0)), '')
    t.equal(addressText(new Uint8Array(5)), '')
  },
)

t.test(
  'ProxyPeers believes a header only from a trusted peer and closes any other peer, also once remembered',
  async (t) => {
    const peers = new ProxyPeers(new TrustedProxies(['10.0.0.0/8']))
    for (let round = 0; round < 2; round++) {
      t.equal(peers.clientOf('10.1.2.3', VIEWER), VIEWER)
      t.equal(peers.clientOf('10.1.2.3', ''), '10.1.2.3', 'no address (LOCAL, UNSPEC): the proxy itself')
      t.equal(peers.clientOf('192.0.2.1', VIEWER), null)
      t.equal(peers.clientOf('192.0.2.1', ''), null)
    }
    let closed = 0
    for (let i = 0; i < 600; i++) if (peers.clientOf(`192.0.${i >> 8}.${i & 255}`, VIEWER) === null) closed++
    t.equal(closed, 600, 'more untrusted peers than the memo holds: every one closed')
    t.equal(peers.clientOf('10.9.9.9', VIEWER), VIEWER, 'right after the memo was cleared')
  },
)

/** A server answering each request with the address it sees, on 127.0.0.1. */
async function whoServer(t: Test, trusted: readonly string[] | null): Promise<number> {
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: (req: IncomingRequest, res) => {
      sendJson(res, 200, { client: req.remoteAddress })
    },
    ...(trusted === null ? {} : { proxyProtocol: new TrustedProxies(trusted) }),
  })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  return port
}

/** Write `bytes` on a new connection and read one response's client, or 'closed'. */
async function exchange(t: Test, port: number, bytes: Buffer): Promise<string> {
  const conn = await RawConnection.open(port)
  t.teardown(() => conn.destroy())
  await conn.write(bytes)
  try {
    const res = await conn.response({ timeoutMs: TIMEOUT_MS })
    return (JSON.parse(res.body.toString()) as { client: string }).client
  } catch (err) {
    // Closed with nothing sent back: what uWS does to a connection it refuses.
    if (err instanceof Error && err.message.startsWith('connection closed before a response head (0 bytes')) {
      return 'closed'
    }
    throw err
  }
}

const request = (header: Buffer): Buffer => Buffer.concat([header, Buffer.from(GET)])

t.test("with proxyProtocol a trusted peer's version 2 header names the client, IPv4 and IPv6", async (t) => {
  const port = await whoServer(t, ['127.0.0.0/8'])
  t.equal(await exchange(t, port, request(proxyV2Header({ source: VIEWER }))), VIEWER)
  t.equal(await exchange(t, port, request(proxyV2Header({ source: '2001:db8::7' }))), '2001:db8::7')
  t.equal(await exchange(t, port, request(proxyV2Header({ source: VIEWER, tlvBytes: 24 }))), VIEWER, 'TLVs skipped')
  t.equal(await exchange(t, port, Buffer.from(GET)), '127.0.0.1', 'no header: the proxy itself')
  t.equal(await exchange(t, port, request(proxyV2Header({ command: 'local' }))), '127.0.0.1', 'LOCAL: the proxy')
})

t.test('with proxyProtocol a peer outside trustedProxies is closed, header or not', async (t) => {
  const port = await whoServer(t, ['10.0.0.0/8'])
  t.equal(await exchange(t, port, request(proxyV2Header({ source: VIEWER }))), 'closed')
  t.equal(await exchange(t, port, Buffer.from(GET)), 'closed')
})

t.test(
  'malformed, truncated and oversized headers get no answer and a close; the server goes on serving',
  async (t) => {
    const port = await whoServer(t, ['127.0.0.0/8'])
    const good = proxyV2Header({ source: VIEWER })
    const badSignature = Buffer.from(good)
    badSignature[6] = 0x55
    const badVersion = Buffer.from(good)
    badVersion[12] = 0x31
    const cases: [string, Buffer][] = [
      ['a bad signature', request(badSignature)],
      ['version 3', request(badVersion)],
      ['a header cut short', good.subarray(0, 20)],
      // uWS copies addresses and TLVs into a 36-byte union (an IPv6 address block): more waits forever.
      ['addresses and TLVs over 36 bytes', request(proxyV2Header({ source: VIEWER, tlvBytes: 28 }))],
      ['a version 1 header (not understood by uWS)', request(proxyV1Header(VIEWER))],
    ]
    // uWS waits for a head it can parse until its idle timer closes the connection: all at once.
    await Promise.all(
      cases.map(async ([what, bytes]) => {
        const conn = await RawConnection.open(port)
        t.teardown(() => conn.destroy())
        await conn.write(bytes)
        await t.rejects(
          conn.response({ timeoutMs: IDLE_CLOSE_MS }),
          /connection closed before a response head \(0 bytes/,
          what,
        )
      }),
    )
    t.equal(await exchange(t, port, request(good)), VIEWER, 'still serving')
  },
)

t.test(
  'without proxyProtocol a version 2 header a client sends is ignored: the socket peer is the client',
  async (t) => {
    const port = await whoServer(t, null)
    t.equal(await exchange(t, port, request(proxyV2Header({ source: VIEWER }))), '127.0.0.1')
    t.equal(await exchange(t, port, Buffer.from(GET)), '127.0.0.1')
  },
)

t.test('an IPv4 peer of a dual-stack listener is reported as IPv4', async (t) => {
  const server = new HttpServer({
    host: '::',
    port: 0,
    handler: (req: IncomingRequest, res) => {
      sendJson(res, 200, { client: req.remoteAddress })
    },
  })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  t.equal(await exchange(t, port, Buffer.from(GET)), '127.0.0.1')
})
