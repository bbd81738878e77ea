// The embedded SQLite queue against the JobBus contract, on a fake clock.
import t from 'tap'
import { join } from 'node:path'
import { jobBusContract } from '../../shared/bus/test/contract.js'
import { tempDir } from '../../shared/testing/index.js'
import { openDb, SCHEMA_VERSION } from '../src/db.js'
import { CLAIM_NEXT, SqliteJobQueue } from '../src/job-queue.js'

t.test('SqliteJobQueue passes the JobBus contract', async (t) => {
  jobBusContract(t, async (opts) => {
    const tmp = tempDir('vcdn-queue-')
    const db = openDb(join(tmp.dir, 'meta.db'))
    return {
      bus: new SqliteJobQueue({ db, ...opts }),
      cleanup: () => {
        db.close()
        tmp.remove()
      },
    }
  })
})

t.test('a lease exhausted by dying workers is reported so the video can be failed', async (t) => {
  const tmp = tempDir('vcdn-queue-')
  t.teardown(tmp.remove)
  const db = openDb(join(tmp.dir, 'meta.db'))
  t.teardown(() => db.close())
  let now = 1000
  const reported: string[] = []
  const q = new SqliteJobQueue({
    db,
    now: () => now,
    maxAttempts: 1,
    onLeaseExhausted: (j) => reported.push(j.videoId),
  })
  await q.enqueue('transcode', 'vid', {})
  t.ok(await q.claim('w1', 10))
  now += 11
  t.equal(await q.claim('w2', 10), null)
  t.same(reported, ['vid'])
})

t.test('the schema survives a reopen (migrations are keyed by user_version)', async (t) => {
  const tmp = tempDir('vcdn-queue-')
  t.teardown(tmp.remove)
  const file = join(tmp.dir, 'meta.db')
  const a = openDb(file)
  const q = new SqliteJobQueue({ db: a })
  const job = await q.enqueue('transcode', 'vid', { x: 1 })
  a.close()
  const b = openDb(file)
  t.teardown(() => b.close())
  t.equal(b.pragma('user_version', { simple: true }), SCHEMA_VERSION)
  t.equal(
    SCHEMA_VERSION,
    5,
    "the videos schema, the purge log, webhook deliveries, the source's frame rate, its probed length and audio",
  )
  t.same((await new SqliteJobQueue({ db: b }).get(job.id))?.payload, { x: 1 })
})

t.test('a claim reads the due queue from its index in order, never sorting the backlog', async (t) => {
  const tmp = tempDir('vcdn-queue-')
  t.teardown(tmp.remove)
  const db = openDb(join(tmp.dir, 'meta.db'))
  t.teardown(() => db.close())
  new SqliteJobQueue({ db }) // creates the table and its indexes
  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${CLAIM_NEXT}`).all({ now: 0 }) as Array<{ detail: string }>).map(
    (r) => r.detail,
  )
  const queued = plan.findIndex((d) => d.includes('INDEX jobs_runnable'))
  t.ok(queued >= 0, `queued jobs are searched through jobs_runnable: ${plan.join(' | ')}`)
  // The queued branch ends at the UNION ALL; a temp B-tree inside it would be a sort of every due job.
  const union = plan.indexOf('UNION ALL')
  t.ok(union > queued, 'the queued branch is a subquery of its own, first row only')
  t.notOk(
    plan.slice(queued, union).some((d) => d.includes('TEMP B-TREE')),
    'no sort of the due jobs',
  )
})

t.test('a claim takes the earliest due job, whether queued or an expired lease', async (t) => {
  const tmp = tempDir('vcdn-queue-')
  t.teardown(tmp.remove)
  const db = openDb(join(tmp.dir, 'meta.db'))
  t.teardown(() => db.close())
  let now = 1_000
  const q = new SqliteJobQueue({ db, now: () => now })
  const first = await q.enqueue('transcode', 'a', {})
  now = 2_000
  const second = await q.enqueue('transcode', 'b', {})
  t.equal((await q.claim('w1', 100))?.id, first.id)
  now = 5_000 // w1's lease on the first job expired; it still comes before the second (run_after 1 000)
  t.equal((await q.claim('w2', 100_000))?.id, first.id)
  t.equal((await q.claim('w3', 100_000))?.id, second.id)
  t.equal(await q.claim('w4', 100_000), null)
})
