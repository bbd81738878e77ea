import t from 'tap'
import { join } from 'node:path'
import { EXAMPLE_SECRETS_ENV, ROOT } from '../../shared/testing/index.js'
import { loadShieldConfig, type ShieldConfig } from '../src/config.js'

// Long enough for any secret-strength rule: the tests below are about paths and tier auth.
const SECRET = 'config-test-secret-0123456789abcdef'

t.test('the example shield config loads once its placeholder secret is replaced', async (t) => {
  const file = join(ROOT, 'config', 'shield.example.json')
  t.throws(() => loadShieldConfig({ file, env: {} }), /tierSecret is an example placeholder/)
  const c = loadShieldConfig({ file, env: EXAMPLE_SECRETS_ENV })
  t.same(c.upstreams, ['http://origin.internal:8080'])
  t.equal(c.cache.memoryObjectMaxBytes, 8 * 1024 * 1024, 'defaults fill what the file leaves out')
})

t.test('a shield without upstreams is refused', async (t) => {
  t.throws(
    () => loadShieldConfig({ overrides: { tierSecret: SECRET, cache: { dir: '/tmp/x' } }, env: {} }),
    /upstreams/,
  )
})

t.test('a shield serves /v/ and requires the tier secret unless told otherwise', async (t) => {
  const c = loadShieldConfig({
    overrides: { tierSecret: SECRET, cache: { dir: '/tmp/x' }, upstreams: ['http://o'] },
    env: {},
  })
  t.same(c.paths, ['/v/'])
  t.equal(c.requireTierSecret, true)
  t.equal(c.passUnsafeMethods, true, 'a shield fronts the origin: writes pass')
})

t.test('a shield in front of any origin: paths ["/"] and tier auth off load', async (t) => {
  const c = loadShieldConfig({
    overrides: { tierSecret: SECRET, cache: { dir: '/tmp/x' }, upstreams: ['http://o'], paths: ['/'] },
    env: { VCDN_REQUIRE_TIER_SECRET: 'false' },
  })
  t.same(c.paths, ['/'])
  t.equal(c.requireTierSecret, false)
})

t.test('shield paths that are not path prefixes are refused, each named', async (t) => {
  const load = (paths: unknown): unknown =>
    loadShieldConfig({
      overrides: { tierSecret: SECRET, cache: { dir: '/tmp/x' }, upstreams: ['http://o'], paths },
      env: {},
    })
  t.throws(() => load([]), /paths must have at least 1 entries/)
  t.throws(() => load(['v/']), /paths\[0\] must start with \//)
  t.throws(() => load(['/v/', '/a?b']), /paths\[1\] must be printable ASCII without \?/)
  t.throws(() => load(['/a b/']), /paths\[0\] must be printable ASCII/)
  t.throws(() => load('/v/'), /paths must be an array of strings/)
})

t.test('cache.query: keep by default, ignore, or a list of parameters that must not be empty', async (t) => {
  const load = (cache: Record<string, unknown>): ShieldConfig =>
    loadShieldConfig({
      overrides: { tierSecret: SECRET, cache: { dir: '/tmp/x', ...cache }, upstreams: ['http://o'] },
      env: {},
    })
  t.equal(load({}).cache.query, 'keep')
  t.equal(load({ query: 'ignore' }).cache.query, 'ignore')
  t.same(load({ query: 'list', queryParams: ['quality'] }).cache.queryParams, ['quality'])
  t.throws(() => load({ query: 'sometimes' }), /cache\.query/)
  t.throws(() => load({ query: 'list' }), /cache\.queryParams must name at least one parameter/)
  t.throws(() => load({ query: 'list', queryParams: ['a=b'] }), /cache\.queryParams\[0\] must be a parameter name/)
})
