// A shield over HTTPS: edges reach it on https:// URLs (trusting the shield's CA), and a shield
// sends no CORS fields unless configured (viewers meet edges, not shields).
import t from 'tap'
import { request } from 'node:https'
import { ScriptedOrigin, makeTestCa, startTier, tempDir } from '../../../shared/testing/index.js'

const SECRET = 'shield-https-tier-secret-0123456789'
const BODY = Buffer.alloc(200_000, 5)

t.test('an edge fills from a shield over HTTPS; the shield adds no CORS fields', async (t) => {
  const tmp = tempDir('vcdn-shield-https-')
  t.teardown(tmp.remove)
  const ca = makeTestCa(tmp.dir)
  const cert = ca.issue(['shield.test', '127.0.0.1'])
  const origin = new ScriptedOrigin()
  origin.static('/v/sh/720p/seg_00001.m4s', BODY, {
    'content-type': 'video/iso.segment',
    'cache-control': 'max-age=3600',
  })
  await origin.listen()
  t.teardown(() => origin.close())
  const shield = await startTier(
    'shield',
    {
      tierSecret: SECRET,
      upstreams: [origin.url],
      cache: { dir: `${tmp.dir}/shield` },
      accessLog: false,
      tls: { cert: cert.cert, key: cert.key },
    },
    { dir: tmp.dir },
  )
  t.teardown(() => shield.stop())
  const edge = await startTier(
    'edge',
    {
      tierSecret: SECRET,
      shields: [`https://127.0.0.1:${shield.port}`],
      originFallback: false,
      requireToken: false,
      cache: { dir: `${tmp.dir}/edge` },
      accessLog: false,
    },
    // The edge's upstream client (undici over node:tls) trusts the test CA the way an operator's
    // private PKI would be trusted.
    { dir: tmp.dir, env: { NODE_EXTRA_CA_CERTS: ca.cert } },
  )
  t.teardown(() => edge.stop())

  const r = await fetch(`${edge.url}/v/sh/720p/seg_00001.m4s`, { headers: { origin: 'https://player.example' } })
  t.equal(r.status, 200, 'served through the HTTPS shield')
  t.equal((await r.arrayBuffer()).byteLength, BODY.length)
  t.equal(r.headers.get('access-control-allow-origin'), '*', 'the edge answers viewers with CORS')
  t.equal(origin.count('/v/sh/720p/seg_00001.m4s'), 1, 'one origin request')

  const direct = await new Promise<{ status: number; cors: unknown }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: shield.port,
        ca: ca.certPem,
        servername: 'shield.test',
        path: '/v/sh/720p/seg_00001.m4s',
        headers: { 'x-vcdn-tier': SECRET, origin: 'https://player.example' },
        agent: false,
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, cors: res.headers['access-control-allow-origin'] }))
      },
    )
    req.on('error', reject)
    req.end()
  })
  t.equal(direct.status, 200, 'the shield serves HTTPS directly')
  t.equal(direct.cors, undefined, 'no CORS fields from a shield by default')

  const plain = await fetch(`http://127.0.0.1:${shield.port}/healthz`).then(
    () => 'answered',
    () => 'refused',
  )
  t.equal(plain, 'refused', 'HTTPS took the shield listener’s place: no plain HTTP there')
})
