// The client address behind trusted proxies: CIDR matching and the right-to-left X-Forwarded-For
// walk (RFC 7239 §5.2; nginx realip with real_ip_recursive on).
import { connect } from 'node:net'
import t from 'tap'
import { HttpServer, TrustedProxies, clientAddressOf, sendJson, trustedProxiesProblems } from '../index.js'

t.test('trustedProxiesProblems accepts IPv4 and IPv6 CIDRs and bare addresses, and names each bad entry', async (t) => {
  t.same(trustedProxiesProblems(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32', '::1', '0.0.0.0/0']), [])
  const problems = trustedProxiesProblems(['10.0.0.0/33', 'proxy.example', '10.0.0.0/', '2001:db8::/129', '1.2.3.4/x'])
  t.equal(problems.length, 5)
  t.match(problems[0], /^trustedProxies\[0\] must be an IPv4 or IPv6 address or CIDR/)
  t.match(problems[1], /trustedProxies\[1\].*"proxy\.example"/)
  t.throws(() => new TrustedProxies(['nope']), TypeError)
  t.equal(TrustedProxies.from([]), null)
  t.equal(TrustedProxies.from(undefined), null)
})

t.test('isTrusted matches inside the prefix only, IPv4-mapped peers as IPv4', async (t) => {
  const proxies = new TrustedProxies(['10.1.0.0/16', '2001:db8::/32', '192.0.2.9'])
  t.ok(proxies.isTrusted('10.1.255.3'))
  t.ok(proxies.isTrusted('::ffff:10.1.0.1'))
  t.ok(proxies.isTrusted('2001:DB8:0:0::7'))
  t.ok(proxies.isTrusted('192.0.2.9'))
  t.notOk(proxies.isTrusted('10.2.0.1'))
  t.notOk(proxies.isTrusted('192.0.2.10'))
  t.notOk(proxies.isTrusted('2001:db9::1'))
  t.notOk(proxies.isTrusted(''))
  t.notOk(proxies.isTrusted('garbage'))
})

t.test('the client is the right-most X-Forwarded-For entry that is not a trusted proxy', async (t) => {
  const proxies = new TrustedProxies(['127.0.0.0/8', '10.0.0.0/8'])
  const cases: [peer: string, xff: string | undefined, client: string, why: string][] = [
    ['127.0.0.1', '203.0.113.7', '203.0.113.7', 'one proxy'],
    ['127.0.0.1', '198.51.100.1, 203.0.113.7', '203.0.113.7', 'a spoofed left-most entry does not win'],
    ['127.0.0.1', '198.51.100.1, 203.0.113.7, 10.0.0.5', '203.0.113.7', 'trusted hops are skipped'],
    ['127.0.0.1', '10.0.0.6,10.0.0.5', '10.0.0.6', 'all trusted: the left-most'],
    ['127.0.0.1', '198.51.100.1, junk, 10.0.0.5', '10.0.0.5', 'junk stops the walk at the last trusted hop'],
    ['127.0.0.1', 'junk', '127.0.0.1', 'junk from the peer: the peer'],
    ['127.0.0.1', '203.0.113.7:5678', '203.0.113.7', 'IPv4 with a port'],
    ['127.0.0.1', '[2001:db8::1]:443', '2001:db8::1', 'bracketed IPv6 with a port'],
    ['127.0.0.1', '2001:db8::1', '2001:db8::1', 'bare IPv6'],
    ['127.0.0.1', '::ffff:203.0.113.7', '203.0.113.7', 'IPv4-mapped IPv6 as IPv4'],
    ['127.0.0.1', ' , 203.0.113.7 , ', '203.0.113.7', 'empty entries are skipped'],
    ['127.0.0.1', undefined, '127.0.0.1', 'no header: the peer'],
    ['198.51.100.9', '203.0.113.7', '198.51.100.9', 'an untrusted peer: the header is ignored'],
    ['::ffff:127.0.0.1', '203.0.113.7', '203.0.113.7', 'an IPv4-mapped trusted peer'],
  ]
  for (const [peer, xff, client, why] of cases) t.equal(proxies.clientAddress(peer, xff), client, why)
})

t.test('a huge X-Forwarded-For is walked only over its last 4 KiB', async (t) => {
  const proxies = new TrustedProxies(['10.0.0.0/8'])
  const many = Array.from({ length: 2000 }, () => '10.0.0.1').join(', ')
  t.equal(proxies.clientAddress('10.0.0.2', `203.0.113.7, ${many}`), '10.0.0.1')
  t.equal(proxies.clientAddress('10.0.0.2', `${many}, 203.0.113.7`), '203.0.113.7')
})

t.test('clientAddressOf joins every X-Forwarded-For field line of a real request', async (t) => {
  const proxies = new TrustedProxies(['127.0.0.0/8'])
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: (req, res) => {
      sendJson(res, 200, { client: clientAddressOf(req, proxies), untrusted: clientAddressOf(req, null) })
    },
  })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  // A client's own line first, the proxy's appended line after it (as HAProxy's option forwardfor does).
  const request =
    'GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n'
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request))
    let text = ''
    socket.setEncoding('latin1')
    socket.setTimeout(30_000, () => socket.destroy(new Error('no reply')))
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('close', () => resolve(text))
    socket.on('error', reject)
  })
  const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { client: string; untrusted: string }
  t.same(body, { client: '203.0.113.7', untrusted: '127.0.0.1' })
})

t.test('clientAddressOf walks X-Forwarded-For once per request, however often it is asked', async (t) => {
  const proxies = new TrustedProxies(['10.0.0.0/8'])
  let walks = 0
  const request = (forwardedFor: string) =>
    ({
      remoteAddress: '10.0.0.1',
      headerLines: (name: string) => {
        if (name === 'x-forwarded-for') walks++
        return forwardedFor
      },
    }) as unknown as Parameters<typeof clientAddressOf>[0]
  const a = request('198.51.100.7')
  t.equal(clientAddressOf(a, proxies), '198.51.100.7')
  t.equal(clientAddressOf(a, proxies), '198.51.100.7', 'asked again (the token after the access line)')
  t.equal(walks, 1)
  const b = request('203.0.113.9')
  t.equal(clientAddressOf(b, proxies), '203.0.113.9', 'the next request gets its own')
  t.equal(walks, 2)
  t.equal(clientAddressOf(b, new TrustedProxies(['192.0.2.0/24'])), '10.0.0.1', 'other proxies: walked again')
  t.equal(walks, 3)
})
