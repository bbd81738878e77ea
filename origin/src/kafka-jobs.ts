// The origin's side of the Kafka job bus (docs/architecture.md §9): the origin produces, the transcoders
// consume. Jobs go from the outbox (./job-outbox.ts) to Kafka through a producer-only KafkaJobBus
// whose state store is the origin's `jobs` table (./job-state.ts). A transcoder that takes a job from
// Kafka reports the lease here (`POST /v1/jobs/:id/lease`), and from then on the job runs exactly as
// with the embedded queue: heartbeat, source, outputs, complete and fail are the same HTTP routes,
// answered from the `jobs` table, so job progress and state land in the origin's metadata.
//
// Who decides what:
// - Delivery, and who runs a job, is Kafka's: the group hands a job to one transcoder; when that one
//   dies its partitions move and the next one leases the job here, which takes the lease over
//   (the dead worker's late complete or output is then refused, ERR_JOB_LEASE_LOST). A done job is
//   final: a job completes once, and its video becomes ready once.
// - The outcome of a failure is decided here first (retry or final, by the same rule and the same
//   maxAttempts the Kafka message carries) and the transcoder then settles the job on the bus the
//   same way (retry topic or dead-letter topic). So a job that dead-letters has already turned its
//   video `failed` with the worker's coded reason; the dead-letter topic is the durable record.
//
// Owned by the origin process: the `jobs` table rows of Kafka jobs are written only here.
import {
  backoffMs,
  connectKafkaJobBus,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  JOB_KINDS,
  type BusConfig,
  type EnqueueOptions,
  type Job,
  type JobBus,
  type JobBusOptions,
  type JobError,
  type JobStateStore,
  type KafkaJobBus,
} from '../../shared/bus/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import type { Db } from './db.js'
import { sqliteJobStateStore } from './job-state.js'

export interface KafkaJobLedgerOptions extends JobBusOptions {
  db: Db
  kafka: BusConfig['kafka']
  /** Job kinds the origin produces (default: every kind, JOB_KINDS). */
  kinds?: string[]
}

export class KafkaJobLedger implements JobBus {
  readonly #state: JobStateStore
  readonly #now: () => number
  readonly #backoffBaseMs: number
  readonly #backoffMaxMs: number
  readonly #busOptions: Parameters<typeof connectKafkaJobBus>[0]
  #bus: Promise<KafkaJobBus> | null = null

  constructor(opts: KafkaJobLedgerOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('KafkaJobLedger: options must be an object')
    if (opts.db === null || typeof opts.db !== 'object') throw new TypeError('KafkaJobLedger: options.db is required')
    if (opts.kafka === null || typeof opts.kafka !== 'object')
      throw new TypeError('KafkaJobLedger: options.kafka is required')
    this.#state = sqliteJobStateStore(opts.db)
    this.#now = opts.now ?? Date.now
    this.#backoffBaseMs = opts.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS
    this.#backoffMaxMs = opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS
    // The config's kafka keys are the bus's option names (a producer joins no group: its
    // sessionTimeoutMs is unused).
    this.#busOptions = {
      ...opts.kafka,
      kinds: opts.kinds ?? [...JOB_KINDS],
      shouldConsume: false,
      state: this.#state,
      now: this.#now,
      ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
    }
  }

  /** Connects the producer (creating the topics when missing); ERR_JOB_BUS_UNAVAILABLE when Kafka does not answer. */
  async connect(): Promise<void> {
    await this.#producer()
  }

  #producer(): Promise<KafkaJobBus> {
    if (this.#bus === null) {
      const connecting = connectKafkaJobBus(this.#busOptions)
      // A failed connect is tried again by the next caller (the outbox retries on its timer).
      connecting.catch(() => {
        if (this.#bus === connecting) this.#bus = null
      })
      this.#bus = connecting
    }
    return this.#bus
  }

  async enqueue(kind: string, videoId: string, payload: Record<string, unknown>, opts?: EnqueueOptions): Promise<Job> {
    return (await this.#producer()).enqueue(kind, videoId, payload, opts)
  }

  /** Transcoders claim from Kafka, not from the origin: nothing is handed out over HTTP. */
  async claim(): Promise<Job | null> {
    return null
  }

  /**
   * A transcoder took the job from Kafka: the lease is now `workerId`'s, whoever held it before
   * (the group moved the job). Null when there is nothing to run: the job is settled.
   */
  async lease(jobId: string, workerId: string, leaseMs: number, attempt: number): Promise<Job | null> {
    const job = this.#state.get(jobId)
    if (job === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (job.status === 'done' || job.status === 'failed') return null
    const now = this.#now()
    const leased: Job = {
      ...job,
      status: 'leased',
      workerId,
      leaseUntilMs: now + leaseMs,
      attempt: Math.max(job.attempt, attempt),
      progress: 0,
      updatedAtMs: now,
    }
    this.#state.put(leased)
    return leased
  }

  async heartbeat(jobId: string, workerId: string, leaseMs: number, progress: number): Promise<boolean> {
    const job = this.#state.get(jobId)
    if (job === null || job.status !== 'leased' || job.workerId !== workerId) return false
    const now = this.#now()
    this.#state.put({ ...job, leaseUntilMs: now + leaseMs, progress, updatedAtMs: now })
    return true
  }

  async complete(jobId: string, workerId: string, result: unknown): Promise<Job> {
    const job = this.#held(jobId, workerId)
    if (job.status === 'done') return job
    const done: Job = {
      ...job,
      status: 'done',
      result: result ?? null,
      progress: 1,
      leaseUntilMs: null,
      updatedAtMs: this.#now(),
    }
    this.#state.put(done)
    return done
  }

  async fail(jobId: string, workerId: string, error: JobError): Promise<Job> {
    const job = this.#held(jobId, workerId)
    if (job.status === 'done') throw new VcdnError('ERR_JOB_LEASE_LOST')
    const now = this.#now()
    const lastError = { code: error.code, message: error.message, isRetryable: error.isRetryable }
    // The rule the Kafka bus applies when the transcoder settles the job (shared/bus/kafka.ts fail()).
    const isFinal = !error.isRetryable || job.attempt >= job.maxAttempts
    const settled: Job = {
      ...job,
      status: isFinal ? 'failed' : 'queued',
      lastError,
      runAfterMs: isFinal ? job.runAfterMs : now + backoffMs(job.attempt, this.#backoffBaseMs, this.#backoffMaxMs),
      workerId: null,
      leaseUntilMs: null,
      updatedAtMs: now,
    }
    this.#state.put(settled)
    return settled
  }

  async get(jobId: string): Promise<Job | null> {
    return this.#state.get(jobId)
  }

  async deadLetters(): Promise<Job[]> {
    return this.#state.failed()
  }

  async close(): Promise<void> {
    const bus = this.#bus
    this.#bus = null
    if (bus !== null) await bus.then((b) => b.close()).catch(() => undefined)
  }

  /** The job if workerId holds it (or completed it: complete is idempotent for its holder). */
  #held(jobId: string, workerId: string): Job {
    const job = this.#state.get(jobId)
    if (job === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (job.workerId !== workerId || (job.status !== 'leased' && job.status !== 'done'))
      throw new VcdnError('ERR_JOB_LEASE_LOST')
    return job
  }
}
