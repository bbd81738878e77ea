import t from 'tap'
import { join } from 'node:path'
import { EXAMPLE_SECRETS_ENV, ROOT } from '../../../shared/testing/index.js'
import { loadEdgeConfig } from '../../src/config.js'

// Long enough for any secret-strength rule: the tests below are about paths and tier auth.
const SECRET = 'config-test-secret-0123456789abcdef'

t.test('the example edge config loads once its placeholder secrets are replaced', async (t) => {
  const file = join(ROOT, 'config', 'edge.example.json')
  t.throws(() => loadEdgeConfig({ file, env: {} }), /signingKeys\.k1 is an example placeholder/)
  const edge = loadEdgeConfig({ file, env: EXAMPLE_SECRETS_ENV })
  t.equal(edge.shields.length, 2)
  t.equal(edge.prefetch.segments, 2)
  t.equal(edge.requireToken, true)
})

t.test('an edge that requires tokens but has no keys is refused', async (t) => {
  t.throws(
    () => loadEdgeConfig({ overrides: { tierSecret: SECRET, cache: { dir: '/tmp/x' }, origin: 'http://o' }, env: {} }),
    /signingKeys/,
  )
})

t.test('an edge with neither shields nor origin is refused', async (t) => {
  t.throws(
    () => loadEdgeConfig({ overrides: { tierSecret: SECRET, cache: { dir: '/tmp/x' }, requireToken: false }, env: {} }),
    /shields or origin/,
  )
})

t.test('edge paths default to /v/ and must be path prefixes', async (t) => {
  const base = { tierSecret: SECRET, cache: { dir: '/tmp/x' }, origin: 'http://o', signingKeys: { k1: SECRET } }
  t.same(loadEdgeConfig({ overrides: base, env: {} }).paths, ['/v/'])
  t.same(loadEdgeConfig({ overrides: { ...base, paths: ['/v/', '/static/'] }, env: {} }).paths, ['/v/', '/static/'])
  t.throws(
    () => loadEdgeConfig({ overrides: { ...base, paths: ['static/'] }, env: {} }),
    /paths\[0\] must start with \//,
  )
})
