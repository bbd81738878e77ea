// The cache contract (contract.ts) against the engine with its memory tier over its disk tier,
// and with its disk tier alone (a memory tier too small to hold any entry): the same rows, the
// same answers, whichever tier holds the object.
import t from 'tap'
import { CACHE_CONTRACT, runCacheTable } from './contract.js'
import { engineSubject } from './fixtures/contract-engine.js'

void t.test('the engine with its memory tier over its disk tier keeps the cache contract', async (t) => {
  const subject = await engineSubject(t, {}, true)
  runCacheTable(t, CACHE_CONTRACT, subject, '/contract/memory-and-disk')
  await t.test('objects were stored in both tiers', async (t) => {
    t.ok(subject.engine.counters.memoryBytes > 0, 'memory tier holds entries')
    t.ok(subject.engine.counters.diskBytes > 0, 'disk tier holds objects')
  })
})

void t.test('the engine with its disk tier alone keeps the cache contract', async (t) => {
  const subject = await engineSubject(t, { memoryMaxBytes: 1 }, false)
  runCacheTable(t, CACHE_CONTRACT, subject, '/contract/disk-alone')
  await t.test('nothing was held in memory, everything came from disk', async (t) => {
    t.equal(subject.engine.counters.memoryBytes, 0, 'memory tier empty')
    t.ok(subject.engine.counters.diskBytes > 0, 'disk tier holds objects')
  })
})
