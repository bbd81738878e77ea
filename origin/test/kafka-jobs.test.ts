// The origin's ledger of Kafka jobs (origin/src/kafka-jobs.ts) without a broker: leases reported by
// transcoders, completion once, and the retry-or-final decision, all on the jobs table. The producer
// side runs against a real broker in transcoder/test/integration/kafka-pipeline.test.ts.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import type { Job } from '../../shared/bus/index.js'
import { fakeClock } from '../../shared/bus/test/contract.js'
import { tempDir } from '../../shared/testing/index.js'
import { openDb } from '../src/db.js'
import { sqliteJobStateStore } from '../src/job-state.js'
import { KafkaJobLedger } from '../src/kafka-jobs.js'

const KAFKA = {
  brokers: '127.0.0.1:1',
  topicPrefix: 'vcdn.jobs.',
  groupId: 'g',
  partitions: 1,
  timeoutMs: 1000,
  sessionTimeoutMs: 6000,
}

function setup(t: Test): { ledger: KafkaJobLedger; clock: ReturnType<typeof fakeClock>; job: Job } {
  const tmp = tempDir('vcdn-kafka-jobs-')
  t.teardown(tmp.remove)
  const db = openDb(join(tmp.dir, 'meta.db'))
  t.teardown(() => db.close())
  const clock = fakeClock()
  const ledger = new KafkaJobLedger({ db, kafka: KAFKA, now: clock.now, maxAttempts: 3, backoffBaseMs: 100 })
  // As the producer writes it on enqueue (shared/bus/kafka.ts): queued, attempt 0.
  const job: Job = {
    id: 'job1',
    kind: 'transcode',
    videoId: 'v1',
    payload: {},
    status: 'queued',
    attempt: 0,
    maxAttempts: 3,
    runAfterMs: clock.now(),
    leaseUntilMs: null,
    workerId: null,
    progress: 0,
    lastError: null,
    result: null,
    createdAtMs: clock.now(),
    updatedAtMs: clock.now(),
  }
  sqliteJobStateStore(db).put(job)
  return { ledger, clock, job }
}

t.test('the next member that reports a lease takes the job over; the previous holder cannot finish it', async (t) => {
  const { ledger } = setup(t)
  t.equal((await ledger.lease('job1', 'a/w1', 5000, 1))?.workerId, 'a/w1')
  t.ok(await ledger.heartbeat('job1', 'a/w1', 5000, 0.5))
  t.equal((await ledger.lease('job1', 'a/w2', 5000, 1))?.workerId, 'a/w2', 'the group moved it')
  t.notOk(await ledger.heartbeat('job1', 'a/w1', 5000, 0.6), 'the old holder has lost it')
  await t.rejects(ledger.complete('job1', 'a/w1', {}), { code: 'ERR_JOB_LEASE_LOST' })
  t.equal((await ledger.complete('job1', 'a/w2', { r: 1 })).status, 'done')
  t.equal((await ledger.complete('job1', 'a/w2', { r: 1 })).status, 'done', 'idempotent for its holder')
  t.equal(await ledger.lease('job1', 'a/w3', 5000, 2), null, 'a done job is not run again')
  await t.rejects(ledger.lease('nope', 'a/w1', 5000, 1), { code: 'ERR_JOB_NOT_FOUND' })
  t.equal(await ledger.claim(), null, 'nothing is claimed over HTTP: transcoders claim from Kafka')
})

t.test('a retryable failure is retried until maxAttempts, then final and dead-lettered', async (t) => {
  const { ledger, clock } = setup(t)
  const err = { code: 'ERR_TRANSCODE_TIMEOUT', message: 'late', isRetryable: true }
  await ledger.lease('job1', 'a/w1', 5000, 1)
  const first = await ledger.fail('job1', 'a/w1', err)
  t.equal(first.status, 'queued')
  t.equal(first.runAfterMs, clock.now() + 100, 'after its backoff')
  await t.rejects(ledger.fail('job1', 'a/w1', err), { code: 'ERR_JOB_LEASE_LOST' }, 'reported once')
  await ledger.lease('job1', 'a/w1', 5000, 2)
  t.equal((await ledger.fail('job1', 'a/w1', err)).status, 'queued')
  await ledger.lease('job1', 'a/w1', 5000, 3)
  t.equal((await ledger.fail('job1', 'a/w1', err)).status, 'failed', 'attempts exhausted')
  t.same(
    (await ledger.deadLetters()).map((j) => [j.id, j.attempt, j.lastError?.code]),
    [['job1', 3, 'ERR_TRANSCODE_TIMEOUT']],
  )
  t.equal(await ledger.lease('job1', 'a/w1', 5000, 4), null, 'a failed job is not run again')
})

t.test('a non-retryable failure is final on the first attempt', async (t) => {
  const { ledger } = setup(t)
  await ledger.lease('job1', 'a/w1', 5000, 1)
  const failed = await ledger.fail('job1', 'a/w1', { code: 'ERR_TRANSCODE_CORRUPT', message: 'x', isRetryable: false })
  t.equal(failed.status, 'failed')
  t.equal(failed.attempt, 1)
})
