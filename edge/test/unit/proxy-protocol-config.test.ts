// The `proxyProtocol` key (docs/architecture.md §3): off by default; on, it needs the peers allowed
// to send a header and a plain-HTTP listener to read it on.
import t from 'tap'
import { loadEdgeConfig } from '../../src/config.js'

const SECRET = 'config-test-secret-0123456789abcdef'
const base = { tierSecret: SECRET, cache: { dir: '/tmp/x' }, origin: 'http://o', signingKeys: { k1: SECRET } }

t.test('proxyProtocol is off by default and on with trustedProxies', async (t) => {
  t.equal(loadEdgeConfig({ overrides: base, env: {} }).proxyProtocol, false)
  const on = loadEdgeConfig({ overrides: { ...base, proxyProtocol: true, trustedProxies: ['10.0.0.0/8'] }, env: {} })
  t.equal(on.proxyProtocol, true)
  t.equal(
    loadEdgeConfig({ overrides: base, env: { VCDN_PROXY_PROTOCOL: 'true', VCDN_TRUSTED_PROXIES: '10.0.0.0/8' } })
      .proxyProtocol,
    true,
  )
})

t.test('proxyProtocol without trustedProxies is refused: nobody would be allowed to send a header', async (t) => {
  t.throws(
    () => loadEdgeConfig({ overrides: { ...base, proxyProtocol: true }, env: {} }),
    /proxyProtocol needs trustedProxies/,
  )
})

t.test(
  'proxyProtocol with HTTPS in place of plain HTTP is refused: uWS reads a header only after decryption',
  async (t) => {
    const tls = { cert: '/etc/vcdn/cert.pem', key: '/etc/vcdn/key.pem' }
    const overrides = { ...base, proxyProtocol: true, trustedProxies: ['10.0.0.0/8'], tls }
    t.throws(() => loadEdgeConfig({ overrides, env: {} }), /proxyProtocol applies to the plain-HTTP listener/)
    const beside = { ...overrides, tls: { ...tls, listen: { port: 8443 } } }
    t.equal(loadEdgeConfig({ overrides: beside, env: {} }).proxyProtocol, true, 'HTTPS beside plain HTTP')
  },
)

t.test('proxyProtocolV1 is off without a port; with one it needs trustedProxies and an IPv4 listen.host', async (t) => {
  t.same(loadEdgeConfig({ overrides: base, env: {} }).proxyProtocolV1, { host: '' })
  const v1 = { proxyProtocolV1: { port: 8081 } }
  t.throws(() => loadEdgeConfig({ overrides: { ...base, ...v1 }, env: {} }), /proxyProtocolV1 needs trustedProxies/)
  const on = loadEdgeConfig({ overrides: { ...base, ...v1, trustedProxies: ['10.0.0.0/8'] }, env: {} })
  t.same(on.proxyProtocolV1, { host: '', port: 8081 })
  t.equal(on.proxyProtocol, false, 'v2 on the plain listener stays off')
  const fromEnv = loadEdgeConfig({
    overrides: base,
    env: { VCDN_PROXY_PROTOCOL_V1_PORT: '8081', VCDN_TRUSTED_PROXIES: '10.0.0.0/8' },
  })
  t.equal(fromEnv.proxyProtocolV1.port, 8081)
  t.throws(
    () =>
      loadEdgeConfig({
        overrides: { ...base, ...v1, trustedProxies: ['10.0.0.0/8'], listen: { host: '::1', port: 8080 } },
        env: {},
      }),
    /proxyProtocolV1 needs listen.host to be IPv4/,
  )
  const tls = { cert: '/etc/vcdn/cert.pem', key: '/etc/vcdn/key.pem' }
  t.throws(
    () => loadEdgeConfig({ overrides: { ...base, ...v1, trustedProxies: ['10.0.0.0/8'], tls }, env: {} }),
    /proxyProtocolV1 applies to the plain-HTTP listener/,
  )
})
