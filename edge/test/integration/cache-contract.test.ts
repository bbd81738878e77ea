// The cache contract (shared/cache/test/contract.ts) against an edge process built from dist, in
// front of the contract's scripted origin: the rows the engine keeps in-process hold through the
// edge's front door and upstream client too.
import t from 'tap'
import { runTierContract } from '../../../shared/cache/test/contract.js'

void t.test('an edge process keeps the cache contract', (t) =>
  runTierContract(t, 'edge', (originUrl) => ({
    tierSecret: 'edge-contract-tier-secret-0123456789',
    origin: originUrl,
    requireToken: false,
  })),
)
