// The shield's `proxyProtocol` key (docs/architecture.md §3), the edge's twin: off by default, and
// on only with the peers allowed to send a header.
import t from 'tap'
import { loadShieldConfig } from '../src/config.js'

const SECRET = 'config-test-secret-0123456789abcdef'
const base = { tierSecret: SECRET, cache: { dir: '/tmp/x' }, upstreams: ['http://o'] }

t.test('the shield reads proxyProtocol off by default, and on only with trustedProxies', async (t) => {
  t.equal(loadShieldConfig({ overrides: base, env: {} }).proxyProtocol, false)
  const on = { ...base, proxyProtocol: true, trustedProxies: ['10.0.0.0/8'] }
  t.equal(loadShieldConfig({ overrides: on, env: {} }).proxyProtocol, true)
  t.throws(
    () => loadShieldConfig({ overrides: { ...base, proxyProtocol: true }, env: {} }),
    /proxyProtocol needs trustedProxies/,
  )
})
