// The cache contract (shared/cache/test/contract.ts) against a shield process built from dist, in
// front of the contract's scripted origin: the rows the engine keeps in-process hold through the
// shield's front door and upstream client too.
import t from 'tap'
import { runTierContract } from '../../../shared/cache/test/contract.js'

void t.test('a shield process keeps the cache contract', (t) =>
  runTierContract(t, 'shield', (originUrl) => ({
    tierSecret: 'shield-contract-tier-secret-0123456789',
    upstreams: [originUrl],
    requireTierSecret: false,
  })),
)
