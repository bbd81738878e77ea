import t from 'tap'
import { join } from 'node:path'
import { ROOT } from '../../shared/testing/index.js'
import { loadShieldConfig } from '../src/config.js'

t.test('the example shield config loads', async (t) => {
  const c = loadShieldConfig({ file: join(ROOT, 'config', 'shield.example.json'), env: {} })
  t.same(c.upstreams, ['http://origin.internal:8080'])
  t.equal(c.cache.memoryObjectMaxBytes, 8 * 1024 * 1024, 'defaults fill what the file leaves out')
})

t.test('a shield without upstreams is refused', async (t) => {
  t.throws(() => loadShieldConfig({ overrides: { tierSecret: 's', cache: { dir: '/tmp/x' } }, env: {} }), /upstreams/)
})
