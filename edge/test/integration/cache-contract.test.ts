// The cache contract (shared/cache/test/contract.ts) against an edge process built from dist, in
// front of the contract's scripted origin: the rows the engine keeps in-process hold through the
// edge's front door and upstream client too.
import t from 'tap'
import {
  CACHE_CONTRACT,
  ContractUpstream,
  httpSubject,
  runCacheTable,
  startContractOrigin,
} from '../../../shared/cache/test/contract.js'
import { startTier, tempDir } from '../../../shared/testing/index.js'

void t.test('an edge process keeps the cache contract', async (t) => {
  const tmp = tempDir('vcdn-edge-contract-')
  t.teardown(tmp.remove)
  const upstream = new ContractUpstream()
  const origin = await startContractOrigin(upstream)
  t.teardown(() => origin.close())
  const edge = await startTier(
    'edge',
    {
      tierSecret: 'edge-contract-tier-secret-0123456789',
      origin: origin.url,
      requireToken: false,
      paths: ['/contract/'],
      cache: { dir: `${tmp.dir}/cache` },
    },
    { dir: tmp.dir },
  )
  t.teardown(() => edge.stop())
  runCacheTable(t, CACHE_CONTRACT, httpSubject(edge.url, upstream), '/contract/edge')
})
