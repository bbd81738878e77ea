// The client address behind trusted proxies (docs/architecture.md §3): a real edge believes
// X-Forwarded-For only from a `trustedProxies` peer, for IP-bound tokens and its access lines.
import t from 'tap'
import { waitFor } from '../../../shared/testing/index.js'
import { randomBytes, topology } from './topology.js'

interface AccessLine {
  access: true
  key: string
  status: number
  client: string
  ua: string | null
  code?: string
}

const VIEWER = '203.0.113.7'
const SEGMENT = '/v/xff/720p/seg_00001.m4s'

t.test('X-Forwarded-For from trusted proxies decides IP-bound tokens and the access line', async (t) => {
  const topo = await topology({ shields: 1, edge: { accessLog: true, trustedProxies: ['127.0.0.0/8'] } })
  t.teardown(() => topo.close())
  await topo.store.put(SEGMENT.slice(1), randomBytes(1000, 7))
  const bound = topo.sign(SEGMENT, { ip: VIEWER })

  const accessLines = (): AccessLine[] =>
    topo.edge
      .output()
      .split('\n')
      .filter((l) => l.includes('"access":true'))
      .map((l) => JSON.parse(l) as AccessLine)

  t.test('a token bound to the forwarded client plays through a trusted proxy', async (t) => {
    const r = await fetch(topo.edge.url + bound, {
      headers: { 'x-forwarded-for': VIEWER, 'user-agent': 'xff-player/1.0' },
    })
    t.equal(r.status, 200)
    await r.arrayBuffer()
    const line = await waitFor(() => accessLines().find((l) => l.ua === 'xff-player/1.0'), { what: 'the access line' })
    t.equal(line.status, 200)
    t.equal(line.client, VIEWER, 'the access line names the forwarded client')
    t.notOk('code' in line, 'no refusal code on a served request')
  })

  t.test('a spoofed left-most entry does not win: the right-most untrusted entry is the client', async (t) => {
    const r = await fetch(topo.edge.url + bound, {
      headers: { 'x-forwarded-for': `${VIEWER}, 198.51.100.1`, 'user-agent': 'xff-spoofer/1.0' },
    })
    t.equal(r.status, 403)
    t.equal(((await r.json()) as { error: { code: string } }).error.code, 'ERR_TOKEN_IP')
    const line = await waitFor(() => accessLines().find((l) => l.ua === 'xff-spoofer/1.0'), { what: 'the access line' })
    t.equal(line.client, '198.51.100.1')
    t.equal(line.code, 'ERR_TOKEN_IP', 'the access line carries the refusal code')
  })

  t.test('a long user agent is logged bounded', async (t) => {
    const ua = `long-agent/${'x'.repeat(2000)}`
    const r = await fetch(topo.edge.url + bound, { headers: { 'x-forwarded-for': VIEWER, 'user-agent': ua } })
    await r.arrayBuffer()
    const line = await waitFor(() => accessLines().find((l) => l.ua?.startsWith('long-agent/') === true), {
      what: 'the access line',
    })
    t.equal(line.ua, ua.slice(0, 256))
  })

  t.test('without trustedProxies X-Forwarded-For is ignored and the socket peer is the client', async (t) => {
    await topo.edge.stop()
    await topo.startEdge({ trustedProxies: [] })
    const r = await fetch(topo.edge.url + bound, {
      headers: { 'x-forwarded-for': VIEWER, 'user-agent': 'xff-untrusted/1.0' },
    })
    t.equal(r.status, 403)
    t.equal(((await r.json()) as { error: { code: string } }).error.code, 'ERR_TOKEN_IP')
    const line = await waitFor(() => accessLines().find((l) => l.ua === 'xff-untrusted/1.0'), {
      what: 'the access line',
    })
    t.equal(line.client, '127.0.0.1')
  })
})
