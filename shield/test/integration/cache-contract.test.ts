// The cache contract (shared/cache/test/contract.ts) against a shield process built from dist, in
// front of the contract's scripted origin: the rows the engine keeps in-process hold through the
// shield's front door and upstream client too.
import t from 'tap'
import {
  CACHE_CONTRACT,
  ContractUpstream,
  httpSubject,
  runCacheTable,
  startContractOrigin,
} from '../../../shared/cache/test/contract.js'
import { startTier, tempDir } from '../../../shared/testing/index.js'

void t.test('a shield process keeps the cache contract', async (t) => {
  const tmp = tempDir('vcdn-shield-contract-')
  t.teardown(tmp.remove)
  const upstream = new ContractUpstream()
  const origin = await startContractOrigin(upstream)
  t.teardown(() => origin.close())
  const shield = await startTier(
    'shield',
    {
      tierSecret: 'shield-contract-tier-secret-0123456789',
      upstreams: [origin.url],
      requireTierSecret: false,
      paths: ['/contract/'],
      cache: { dir: `${tmp.dir}/cache` },
    },
    { dir: tmp.dir },
  )
  t.teardown(() => shield.stop())
  runCacheTable(t, CACHE_CONTRACT, httpSubject(shield.url, upstream), '/contract/shield')
})
