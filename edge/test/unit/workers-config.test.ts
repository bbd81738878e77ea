// The `workers` key (docs/architecture.md §9.1): 1 by default (the main thread serves), 0 for one
// per core, an integer otherwise, with plain HTTP and HTTPS alike.
import t from 'tap'
import { availableParallelism } from 'node:os'
import { workerCount } from '../../../shared/cache-tier/index.js'
import { loadEdgeConfig } from '../../src/config.js'

const SECRET = 'config-test-secret-0123456789abcdef'
const base = { tierSecret: SECRET, cache: { dir: '/tmp/x' }, origin: 'http://o', signingKeys: { k1: SECRET } }

t.test('workers is 1 by default and set by the file or the environment', async (t) => {
  t.equal(loadEdgeConfig({ overrides: base, env: {} }).workers, 1)
  t.equal(loadEdgeConfig({ overrides: { ...base, workers: 4 }, env: {} }).workers, 4)
  t.equal(loadEdgeConfig({ overrides: base, env: { VCDN_WORKERS: '2' } }).workers, 2)
})

t.test('workers 0 is one per core this process may use', async (t) => {
  const config = loadEdgeConfig({ overrides: { ...base, workers: 0 }, env: {} })
  t.equal(config.workers, 0)
  t.equal(workerCount(config), availableParallelism())
  t.equal(workerCount(loadEdgeConfig({ overrides: base, env: {} })), 1, 'unset: 1')
  t.equal(workerCount(loadEdgeConfig({ overrides: { ...base, workers: 3 }, env: {} })), 3)
})

t.test('workers below 0 or not an integer is refused', async (t) => {
  t.throws(() => loadEdgeConfig({ overrides: { ...base, workers: -1 }, env: {} }), /workers/)
  t.throws(() => loadEdgeConfig({ overrides: { ...base, workers: 1.5 }, env: {} }), /workers/)
})

t.test('workers > 1 with HTTPS is accepted: every worker thread has its own HTTPS listener', async (t) => {
  const tls = { cert: '/etc/vcdn/cert.pem', key: '/etc/vcdn/key.pem' }
  t.equal(loadEdgeConfig({ overrides: { ...base, workers: 2, tls }, env: {} }).workers, 2)
  t.equal(loadEdgeConfig({ overrides: { ...base, workers: 1, tls }, env: {} }).workers, 1, 'one worker: as before')
})
