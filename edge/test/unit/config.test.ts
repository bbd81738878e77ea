import t from 'tap'
import { join } from 'node:path'
import { ROOT } from '../../../shared/testing/index.js'
import { loadEdgeConfig } from '../../src/config.js'

t.test('the example edge config loads', async (t) => {
  const edge = loadEdgeConfig({ file: join(ROOT, 'config', 'edge.example.json'), env: {} })
  t.equal(edge.shields.length, 2)
  t.equal(edge.prefetch.segments, 2)
  t.equal(edge.requireToken, true)
})

t.test('an edge that requires tokens but has no keys is refused', async (t) => {
  t.throws(
    () => loadEdgeConfig({ overrides: { tierSecret: 's', cache: { dir: '/tmp/x' }, origin: 'http://o' }, env: {} }),
    /signingKeys/,
  )
})

t.test('an edge with neither shields nor origin is refused', async (t) => {
  t.throws(
    () => loadEdgeConfig({ overrides: { tierSecret: 's', cache: { dir: '/tmp/x' }, requireToken: false }, env: {} }),
    /shields or origin/,
  )
})
