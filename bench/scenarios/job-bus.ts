// job-bus: the two job buses under the same load, side by side (docs/architecture.md §9). Through
// the JobBus interface, an enqueuer puts `--jobs` small jobs (default 10 000) on the bus with up to
// ENQUEUE_IN_FLIGHT enqueues outstanding, while a no-op worker group of `--workers` (default 2)
// drains it: claim → complete, nothing in between. Figures per bus: jobs/s from the first enqueue
// to the last completion, and enqueue-to-start latency (enqueue called → claim returned the job),
// p50 and p99.
//
//   sqlite  the origin's embedded queue (origin/src/job-queue.ts, SqliteJobQueue) on a fresh
//           meta.db with the origin's schema, in this process; the workers are loops claiming
//           from that one queue object, as the origin serves every transcoder's claim from its
//           one queue (without the HTTP round trip of its worker API).
//   kafka   KafkaJobBus (shared/bus) against a real single-node KRaft broker started here; each
//           worker is its own process with its own bus, i.e. its own member of one consumer group
//           (lib/kafka-worker-process.ts: the transcoders' layout, each with its own in-memory
//           job state); the enqueuer is a producer-only bus in this process (shouldConsume false,
//           as the origin runs it with bus.kind kafka): it joins no group.
//
// Enqueue-to-start latency includes the wait behind the backlog: with the default 10 000 jobs
// enqueued 100 at a time, p99 is close to the drain time. Each bus first drains a small warm-up
// batch (for Kafka also: the group has settled after its members joined). Between its runs a
// bus's workers are paused, so they do not load the machine while the other bus is measured.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { connectKafkaJobBus, type JobBus } from '../../shared/bus/index.js'
import { startKafkaBroker, type KafkaBroker } from '../../shared/testing/index.js'
import { openDb } from '../../origin/src/db.js'
import { SqliteJobQueue } from '../../origin/src/job-queue.js'
import { KafkaWorkers, type JobDoneListener } from '../lib/kafka-workers.js'
import { fmtNum, ratio, type RunContext, type ScenarioResult } from '../lib/report.js'
import { delay, median, percentile, round } from '../lib/util.js'

const KIND = 'transcode'
/** Enqueues outstanding at once: a busy origin completing many uploads, not one long burst. */
const ENQUEUE_IN_FLIGHT = 100
/** A worker whose claim came back empty waits this long before claiming again. */
const IDLE_POLL_MS = 5
/** Longer than any job of the no-op worker could hold it. */
const LEASE_MS = 60_000
const WARMUP_JOBS = 50
/** How often an idle (paused) worker looks whether it may claim again. */
const PAUSED_POLL_MS = 20

type BusKind = 'sqlite' | 'kafka'

/** A worker group that runs until closed and reports each job it ran. */
interface WorkerGroup {
  readonly size: number
  setListener(fn: JobDoneListener | null): void
  /** Claim (during a run) or stay idle (between runs, while the other bus is measured). */
  setActive(isActive: boolean): void
  close(): Promise<void>
}

interface BusUnderTest {
  kind: BusKind
  enqueuer: JobBus
  workers: WorkerGroup
  close(): Promise<void>
}

export interface BusRun {
  bus: BusKind
  jobs: number
  workers: number
  wallMs: number
  jobsPerSec: number
  /** From the first enqueue called to the last enqueue acknowledged. */
  enqueueMs: number
  enqueuePerSec: number
  latencyP50Ms: number
  latencyP99Ms: number
  latencyMaxMs: number
  /** Jobs each worker ran: how evenly the group shared the load. */
  perWorker: number[]
  /** The least busy worker's jobs over an even share (1 = even; 0 = a worker ran nothing). */
  minWorkerShare: number
}

/** Epoch ms with sub-ms precision; comparable between processes of one machine. */
const nowMs = (): number => performance.timeOrigin + performance.now()

/** Enqueue `jobs` jobs while the group drains them; bounded by `deadlineMs`. */
async function drive(bus: BusUnderTest, jobs: number, deadlineMs: number, label: string): Promise<BusRun> {
  const latencies: number[] = []
  const perWorker = Array.from({ length: bus.workers.size }, () => 0)
  let done = 0
  // Set by an enqueuer that failed (an object, so the narrowing of a `let` does not hide it below).
  const failed: { error: Error | null } = { error: null }
  let wake: () => void = () => undefined
  const drained = new Promise<void>((res) => (wake = res))
  bus.workers.setListener((w, latencyMs) => {
    latencies.push(latencyMs)
    perWorker[w] = (perWorker[w] ?? 0) + 1
    if (++done >= jobs) wake()
  })
  bus.workers.setActive(true)
  const t0 = performance.now()
  let next = 0
  let enqueuedAt = t0
  const enqueueSome = async (): Promise<void> => {
    while (next < jobs && failed.error === null && performance.now() - t0 < deadlineMs) {
      // One enqueue per event-loop turn, as one per request in the origin: an SQLite enqueue
      // settles at once, and a loop of them alone would starve the workers' timers.
      await nextTurn()
      const seq = next++
      await bus.enqueuer.enqueue(KIND, `bench-${label}-${seq}`, { seq, enqueuedAtMs: nowMs() })
    }
    enqueuedAt = Math.max(enqueuedAt, performance.now())
  }
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<void>((res) => (timer = setTimeout(res, deadlineMs)))
  try {
    await Promise.all(
      Array.from({ length: Math.min(ENQUEUE_IN_FLIGHT, jobs) }, () =>
        enqueueSome().catch((err: unknown) => {
          failed.error ??= err instanceof Error ? err : new Error(`enqueue failed: ${JSON.stringify(err)}`)
          wake()
        }),
      ),
    )
    await Promise.race([drained, late])
  } finally {
    clearTimeout(timer)
    bus.workers.setListener(null)
    bus.workers.setActive(false)
  }
  const wallMs = performance.now() - t0
  if (failed.error !== null) throw failed.error
  if (done < jobs)
    throw new Error(`${bus.kind}: ${done} of ${jobs} jobs drained within ${Math.round(deadlineMs / 1000)} s`)
  const enqueueMs = enqueuedAt - t0
  return {
    bus: bus.kind,
    jobs,
    workers: bus.workers.size,
    wallMs: round(wallMs, 1),
    jobsPerSec: round(jobs / (wallMs / 1000)),
    enqueueMs: round(enqueueMs, 1),
    enqueuePerSec: round(jobs / (enqueueMs / 1000)),
    latencyP50Ms: round(percentile(latencies, 50), 2),
    latencyP99Ms: round(percentile(latencies, 99), 2),
    latencyMaxMs: round(Math.max(...latencies), 2),
    perWorker,
    minWorkerShare: round(Math.min(...perWorker) / (jobs / perWorker.length), 2),
  }
}

/**
 * The embedded queue's group: loops in this process, as the origin serves every transcoder's
 * claim from its one queue. Each loop runs until close(), waiting IDLE_POLL_MS after an empty claim.
 */
function sqliteWorkers(queue: SqliteJobQueue, n: number): WorkerGroup {
  let listener: JobDoneListener | null = null
  let isClosed = false
  let isActive = false
  const loop = async (w: number): Promise<void> => {
    const workerId = `bench-worker-${w}`
    while (!isClosed) {
      if (!isActive) {
        await delay(PAUSED_POLL_MS)
        continue
      }
      await nextTurn() // one claim per turn, as one HTTP request each in the origin
      const job = await queue.claim(workerId, LEASE_MS)
      if (job === null) {
        await delay(IDLE_POLL_MS)
        continue
      }
      const startedAt = nowMs()
      const sent = job.payload['enqueuedAtMs']
      await queue.complete(job.id, workerId, null)
      listener?.(w, typeof sent === 'number' ? startedAt - sent : Number.NaN)
    }
  }
  const loops = Array.from({ length: n }, (_, w) => loop(w))
  return {
    size: n,
    setListener: (fn) => (listener = fn),
    setActive: (is) => (isActive = is),
    close: async () => {
      isClosed = true
      await Promise.all(loops)
    },
  }
}

function openSqlite(dir: string, workers: number): BusUnderTest {
  mkdirSync(dir, { recursive: true })
  const db = openDb(join(dir, 'meta.db'))
  const queue = new SqliteJobQueue({ db })
  const group = sqliteWorkers(queue, workers)
  return {
    kind: 'sqlite',
    enqueuer: queue,
    workers: group,
    close: async () => {
      await group.close()
      db.close()
    },
  }
}

async function openKafka(broker: KafkaBroker, workers: number, runId: string): Promise<BusUnderTest> {
  const topicPrefix = `bench.${runId}.`
  const timeoutMs = 120_000 // a busy machine: joins and rebalances of a cold broker
  const group = await KafkaWorkers.start(workers, {
    brokers: broker.bootstrap,
    topicPrefix,
    groupId: `bench-${runId}-workers`,
    kind: KIND,
    leaseMs: LEASE_MS,
    idlePollMs: IDLE_POLL_MS,
    timeoutMs,
    maxLifeMs: 60 * 60_000,
  })
  group.setActive(false)
  try {
    // The enqueuer produces only, as the origin does with bus.kind kafka: it joins no group.
    const enqueuer = await connectKafkaJobBus({
      brokers: broker.bootstrap,
      topicPrefix,
      groupId: `bench-${runId}-enqueuer`,
      kinds: [KIND],
      timeoutMs,
      shouldConsume: false,
    })
    return {
      kind: 'kafka',
      enqueuer,
      workers: group,
      close: async () => {
        await Promise.allSettled([enqueuer.close(), group.close()])
      },
    }
  } catch (err) {
    await group.close()
    throw err
  }
}

export async function jobBusScenario(ctx: RunContext): Promise<ScenarioResult> {
  const dir = join(ctx.dir, 'job-bus')
  mkdirSync(dir, { recursive: true })
  const jobs = ctx.jobs
  const workers = ctx.workers
  // A bound, not an expectation: 100 ms per no-op job is far beyond either bus on a busy machine.
  const deadlineMs = Math.max(120_000, jobs * 100)
  const runs: BusRun[] = []
  const broker = await startKafkaBroker()
  try {
    const buses: BusUnderTest[] = []
    try {
      buses.push(openSqlite(join(dir, 'sqlite'), workers))
      buses.push(await openKafka(broker, workers, ctx.stamp.toLowerCase()))
      for (const b of buses) await drive(b, WARMUP_JOBS, deadlineMs, `warm-${b.kind}`)
      for (let i = 0; i < ctx.runs; i++)
        for (const b of buses) runs.push(await drive(b, jobs, deadlineMs, `${b.kind}-${i}`))
    } finally {
      await Promise.allSettled(buses.map((b) => b.close()))
    }
  } finally {
    await broker.close()
  }
  const of = (bus: BusKind, f: (r: BusRun) => number): number => median(runs.filter((r) => r.bus === bus).map(f))
  const sqlite = of('sqlite', (r) => r.jobsPerSec)
  const kafka = of('kafka', (r) => r.jobsPerSec)
  const line =
    `job-bus       ${fmtNum(jobs)} jobs, ${workers} no-op workers  ` +
    `sqlite ${fmtNum(sqlite)} jobs/s p99 ${of('sqlite', (r) => r.latencyP99Ms).toFixed(1)} ms  ` +
    `kafka ${fmtNum(kafka)} jobs/s p99 ${of('kafka', (r) => r.latencyP99Ms).toFixed(1)} ms  ` +
    `kafka/sqlite ${ratio(kafka, sqlite).toFixed(2)}×  median of ${ctx.runs}` +
    `  [enqueue-to-start p50: sqlite ${of('sqlite', (r) => r.latencyP50Ms).toFixed(1)} ms, kafka ${of('kafka', (r) => r.latencyP50Ms).toFixed(1)} ms;` +
    ` enqueue alone: sqlite ${fmtNum(of('sqlite', (r) => r.enqueuePerSec))}/s, kafka ${fmtNum(of('kafka', (r) => r.enqueuePerSec))}/s]`
  return {
    scenario: 'job-bus',
    line,
    summary: {
      jobs,
      workers,
      enqueueInFlight: ENQUEUE_IN_FLIGHT,
      sqliteJobsPerSec: sqlite,
      kafkaJobsPerSec: kafka,
      kafkaToSqlite: ratio(kafka, sqlite),
      sqliteLatencyP50Ms: of('sqlite', (r) => r.latencyP50Ms),
      sqliteLatencyP99Ms: of('sqlite', (r) => r.latencyP99Ms),
      kafkaLatencyP50Ms: of('kafka', (r) => r.latencyP50Ms),
      kafkaLatencyP99Ms: of('kafka', (r) => r.latencyP99Ms),
      sqliteEnqueuePerSec: of('sqlite', (r) => r.enqueuePerSec),
      kafkaEnqueuePerSec: of('kafka', (r) => r.enqueuePerSec),
      sqliteMinWorkerShare: of('sqlite', (r) => r.minWorkerShare),
      kafkaMinWorkerShare: of('kafka', (r) => r.minWorkerShare),
      kafkaBrokerStartMs: round(broker.startMs),
    },
    target: 'none: a side-by-side measurement (the issue asks for the figures, not a threshold)',
    isPass: true,
    runs,
    notes: [
      ...runs
        .filter((r) => r.minWorkerShare < 0.5)
        .map((r) => `${r.bus}: a worker ran ${Math.min(...r.perWorker)} of ${r.jobs} jobs (${r.perWorker.join('/')})`),
      `enqueue-to-start latency includes the wait behind the backlog: with ${jobs} jobs enqueued ${ENQUEUE_IN_FLIGHT} at a time, p99 is close to the drain time`,
      'sqlite: the origin queue object in this process, the workers loops in it (no HTTP); kafka: one process and bus per worker in one consumer group, a single-node KRaft broker on loopback, topics of 4 partitions (the bus default)',
      'pinned runs: this process and the Kafka workers on the load-generator core; the broker JVM is not pinned',
    ],
  }
}
