import t from 'tap'
import { join } from 'node:path'
import { EXAMPLE_SECRETS_ENV, ROOT } from '../../shared/testing/index.js'
import { loadOriginConfig } from '../src/config.js'

t.test('the example origin config loads once its placeholder secrets are replaced', async (t) => {
  const file = join(ROOT, 'config', 'origin.example.json')
  t.throws(() => loadOriginConfig({ file, env: {} }), /tierSecret is an example placeholder/)
  const c = loadOriginConfig({ file, env: EXAMPLE_SECRETS_ENV })
  t.equal(c.listen.port, 8080)
  t.equal(c.activeKey, 'k1')
})

t.test('environment overrides the file', async (t) => {
  const c = loadOriginConfig({
    file: join(ROOT, 'config', 'origin.example.json'),
    env: { ...EXAMPLE_SECRETS_ENV, VCDN_LISTEN_PORT: '9999' },
  })
  t.equal(c.listen.port, 9999)
})
