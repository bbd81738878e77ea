// The embedded SQLite queue against the JobBus contract, on a fake clock.
import t from 'tap'
import { join } from 'node:path'
import { jobBusContract } from '../../shared/bus/test/contract.js'
import { tempDir } from '../../shared/testing/index.js'
import { openDb } from '../src/db.js'
import { SqliteJobQueue } from '../src/job-queue.js'

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
  t.equal(b.pragma('user_version', { simple: true }), 1)
  t.same((await new SqliteJobQueue({ db: b }).get(job.id))?.payload, { x: 1 })
})
