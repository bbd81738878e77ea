// The JobBus contract: the embedded SQLite queue and (later) Kafka both run this suite. The
// factory builds a fresh, empty bus on the injected clock with maxAttempts 3 and a 1 s backoff base.
import type { Test } from 'tap'
import type { JobBus, JobBusOptions } from '../index.js'

export interface FakeClock {
  now(): number
  advance(ms: number): void
}

export function fakeClock(startMs = 1_700_000_000_000): FakeClock {
  let t = startMs
  return { now: () => t, advance: (ms) => void (t += ms) }
}

export type MakeBus = (opts: Required<JobBusOptions>) => Promise<{ bus: JobBus; cleanup?: () => Promise<void> | void }>

const LEASE_MS = 30_000
const HOUR_MS = 3_600_000

export function jobBusContract(t: Test, makeBus: MakeBus): void {
  const withBus = (name: string, fn: (t: Test, bus: JobBus, clock: FakeClock) => Promise<void>): void => {
    t.test(name, async (t) => {
      const clock = fakeClock()
      const { bus, cleanup } = await makeBus({
        now: clock.now,
        maxAttempts: 3,
        backoffBaseMs: 1000,
        backoffMaxMs: 60_000,
      })
      if (cleanup) t.teardown(cleanup)
      await fn(t, bus, clock)
    })
  }

  withBus('a claim leases the oldest runnable job to one worker', async (t, bus, clock) => {
    const a = await bus.enqueue('transcode', 'vidA', { n: 1 })
    await bus.enqueue('transcode', 'vidB', { n: 2 })
    t.equal(a.status, 'queued')
    t.equal(a.attempt, 0)
    const got = await bus.claim('w1', LEASE_MS)
    t.equal(got?.id, a.id)
    t.equal(got?.status, 'leased')
    t.equal(got?.attempt, 1)
    t.equal(got?.workerId, 'w1')
    t.equal(got?.leaseUntilMs, clock.now() + LEASE_MS)
    t.same(got?.payload, { n: 1 })
    t.equal((await bus.claim('w2', LEASE_MS))?.videoId, 'vidB')
    t.equal(await bus.claim('w3', LEASE_MS), null, 'nothing left')
  })

  withBus('concurrent claims never hand one job to two workers', async (t, bus) => {
    for (let i = 0; i < 3; i++) await bus.enqueue('transcode', `v${i}`, {})
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => bus.claim(`w${i}`, LEASE_MS)))
    const ids = got.filter((j) => j !== null).map((j) => j.id)
    t.equal(ids.length, 3)
    t.equal(new Set(ids).size, 3)
  })

  withBus('a heartbeat extends the lease and records progress', async (t, bus, clock) => {
    const job = await bus.enqueue('transcode', 'v', {})
    await bus.claim('w1', LEASE_MS)
    clock.advance(20_000)
    t.equal(await bus.heartbeat(job.id, 'w1', LEASE_MS, 0.5), true)
    clock.advance(20_000) // 40 s after the claim: expired without the heartbeat
    t.equal(await bus.claim('w2', LEASE_MS), null, 'still leased')
    const got = await bus.get(job.id)
    t.equal(got?.progress, 0.5)
    t.equal(got?.leaseUntilMs, clock.now() - 20_000 + LEASE_MS)
    t.equal(await bus.heartbeat(job.id, 'w2', LEASE_MS, 0.9), false, 'not the holder')
    t.equal(await bus.heartbeat('nope', 'w1', LEASE_MS, 0.9), false, 'unknown job')
  })

  withBus('an expired lease re-queues the job: a dead worker’s job runs again', async (t, bus, clock) => {
    const job = await bus.enqueue('transcode', 'v', {})
    await bus.claim('w1', LEASE_MS)
    clock.advance(LEASE_MS + 1)
    const again = await bus.claim('w2', LEASE_MS)
    t.equal(again?.id, job.id)
    t.equal(again?.attempt, 2)
    t.equal(again?.workerId, 'w2')
    t.equal(await bus.heartbeat(job.id, 'w1', LEASE_MS, 0.1), false, 'the old worker lost its lease')
    await t.rejects(bus.complete(job.id, 'w1', {}), { code: 'ERR_JOB_LEASE_LOST' }, 'lost-lease complete is refused')
    await t.rejects(bus.fail(job.id, 'w1', { code: 'X', message: 'x', isRetryable: true }), {
      code: 'ERR_JOB_LEASE_LOST',
    })
    const done = await bus.complete(job.id, 'w2', { ok: 1 })
    t.equal(done.status, 'done')
    t.same(done.result, { ok: 1 })
  })

  withBus('a retryable failure comes back after an exponential backoff', async (t, bus, clock) => {
    const job = await bus.enqueue('transcode', 'v', {})
    await bus.claim('w1', LEASE_MS)
    const failed = await bus.fail(job.id, 'w1', { code: 'ERR_X', message: 'disk full', isRetryable: true })
    t.equal(failed.status, 'queued')
    t.equal(failed.runAfterMs, clock.now() + 1000)
    t.same(failed.lastError, { code: 'ERR_X', message: 'disk full', isRetryable: true })
    t.equal(await bus.claim('w1', LEASE_MS), null, 'not before the backoff')
    clock.advance(1000)
    const second = await bus.claim('w1', LEASE_MS)
    t.equal(second?.attempt, 2)
    const failedAgain = await bus.fail(job.id, 'w1', { code: 'ERR_X', message: 'again', isRetryable: true })
    t.equal(failedAgain.runAfterMs, clock.now() + 2000, 'doubles')
  })

  withBus('attempts exhausted: the job is dead-lettered with its last error', async (t, bus, clock) => {
    const job = await bus.enqueue('transcode', 'v', {})
    let last = null
    for (let i = 1; i <= 3; i++) {
      const got = await bus.claim('w1', LEASE_MS)
      t.equal(got?.attempt, i)
      last = await bus.fail(job.id, 'w1', { code: 'ERR_X', message: `try ${i}`, isRetryable: true })
      clock.advance(HOUR_MS)
    }
    t.equal(last?.status, 'failed')
    t.same(last?.lastError, { code: 'ERR_X', message: 'try 3', isRetryable: true })
    t.equal(await bus.claim('w1', LEASE_MS), null)
    const dead = await bus.deadLetters()
    t.equal(dead.length, 1)
    t.equal(dead[0]?.id, job.id)
    t.equal(dead[0]?.lastError?.message, 'try 3')
  })

  withBus('a non-retryable failure is dead-lettered at once', async (t, bus) => {
    const job = await bus.enqueue('transcode', 'v', {})
    await bus.claim('w1', LEASE_MS)
    const failed = await bus.fail(job.id, 'w1', { code: 'ERR_NOT_VIDEO', message: 'not a video', isRetryable: false })
    t.equal(failed.status, 'failed')
    t.equal((await bus.deadLetters()).length, 1)
  })

  withBus('a worker that keeps dying exhausts the attempts too', async (t, bus, clock) => {
    const job = await bus.enqueue('transcode', 'v', {})
    for (let i = 0; i < 3; i++) {
      t.ok(await bus.claim(`w${i}`, LEASE_MS))
      clock.advance(LEASE_MS + 1)
    }
    t.equal(await bus.claim('w9', LEASE_MS), null)
    const got = await bus.get(job.id)
    t.equal(got?.status, 'failed')
    t.equal(got?.lastError?.isRetryable, false)
  })

  withBus('complete is idempotent', async (t, bus) => {
    const job = await bus.enqueue('transcode', 'v', {})
    await bus.claim('w1', LEASE_MS)
    const first = await bus.complete(job.id, 'w1', { a: 1 })
    const second = await bus.complete(job.id, 'w1', { a: 2 })
    t.equal(second.status, 'done')
    t.same(second.result, { a: 1 }, 'the second complete changed nothing')
    t.equal(second.updatedAtMs, first.updatedAtMs)
    t.equal(await bus.claim('w1', LEASE_MS), null)
  })

  withBus('an enqueue with a known id queues nothing more (an outbox handing a job over again)', async (t, bus) => {
    const first = await bus.enqueue('transcode', 'v', { n: 1 }, { id: 'outbox-job-1' })
    t.equal(first.id, 'outbox-job-1')
    const again = await bus.enqueue('transcode', 'v', { n: 1 }, { id: 'outbox-job-1' })
    t.equal(again.id, 'outbox-job-1')
    t.equal(again.status, 'queued')
    const claimed = await bus.claim('w1', LEASE_MS)
    t.equal(claimed?.id, 'outbox-job-1')
    t.equal(await bus.claim('w2', LEASE_MS), null, 'one job, claimed once')
    const late = await bus.enqueue('transcode', 'v', { n: 1 }, { id: 'outbox-job-1' })
    t.equal(late.status, 'leased', 'a hand-over after the claim returns the job as it is')
    t.equal(await bus.claim('w3', LEASE_MS), null)
  })

  withBus('unknown jobs are coded', async (t, bus) => {
    await t.rejects(bus.complete('nope', 'w1', {}), { code: 'ERR_JOB_NOT_FOUND' })
    await t.rejects(bus.fail('nope', 'w1', { code: 'X', message: 'x', isRetryable: false }), {
      code: 'ERR_JOB_NOT_FOUND',
    })
    t.equal(await bus.get('nope'), null)
  })
}
