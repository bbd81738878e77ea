import t from 'tap'
import { join } from 'node:path'
import { ROOT } from '../../shared/testing/index.js'
import { loadOriginConfig } from '../src/config.js'

t.test('the example origin config loads', async (t) => {
  const c = loadOriginConfig({ file: join(ROOT, 'config', 'origin.example.json'), env: {} })
  t.equal(c.listen.port, 8080)
  t.equal(c.activeKey, 'k1')
})

t.test('environment overrides the file', async (t) => {
  const c = loadOriginConfig({ file: join(ROOT, 'config', 'origin.example.json'), env: { VCDN_LISTEN_PORT: '9999' } })
  t.equal(c.listen.port, 9999)
})
