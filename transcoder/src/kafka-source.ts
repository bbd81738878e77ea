// Jobs from the Kafka bus (docs/architecture.md §9, bus kind kafka): the transcoder is a member of the
// transcoders' consumer group and claims from Kafka directly; everything else a job needs goes to the
// origin over HTTP as with the embedded queue (./origin-client.ts): the source, the outputs,
// progress and the outcome, so job state lands in the origin's metadata.
//
// Per job, in this order:
//   claim      bus.claim (Kafka) → origin lease (POST /v1/jobs/:id/lease): the origin records who
//              runs it. Nothing to run there (settled, video deleted) → settled on the bus at once.
//   heartbeat  both: the origin's lease (its routes admit only the holder) and the bus's.
//   complete   origin first (the job done, the video ready: the origin refuses a second holder),
//              then the bus commits the offset. A crash in between: the group redelivers the job,
//              the origin answers that it is settled, and it is committed without running.
//   fail       origin first: it decides retry or final (the same rule and maxAttempts the Kafka
//              message carries) and moves the video; then the bus republishes to the retry topic
//              or, when the origin called it final, to the dead-letter topic.
import {
  connectKafkaJobBus,
  JOB_KINDS,
  type BusConfig,
  type ClaimedJob,
  type JobError,
  type JobResult,
  type KafkaJobBus,
} from '../../shared/bus/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { CaptionFile } from './captions.js'
import { HttpJobSource, type JobSource } from './origin-client.js'

/** How many settled jobs one claim passes over before it answers "nothing" (the worker polls again). */
const MAX_SKIPPED_PER_CLAIM = 32

export interface KafkaJobSourceOptions {
  origin: string
  token: string
  workerId: string
  kafka: BusConfig['kafka']
  log: Logger
  /** Job kinds this transcoder runs (default: every kind, JOB_KINDS). */
  kinds?: string[]
  /** For tests: the HTTP side. */
  http?: HttpJobSource
}

export class KafkaJobSource implements JobSource {
  readonly #http: HttpJobSource
  readonly #workerId: string
  readonly #log: Logger
  readonly #busOptions: Parameters<typeof connectKafkaJobBus>[0]
  #bus: KafkaJobBus | null = null

  constructor(opts: KafkaJobSourceOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('KafkaJobSource: options must be an object')
    if (typeof opts.workerId !== 'string' || opts.workerId === '')
      throw new TypeError('KafkaJobSource: options.workerId must be set')
    if (opts.kafka === null || typeof opts.kafka !== 'object')
      throw new TypeError('KafkaJobSource: options.kafka is required')
    this.#http = opts.http ?? new HttpJobSource({ origin: opts.origin, token: opts.token, workerId: opts.workerId })
    this.#workerId = opts.workerId
    this.#log = opts.log
    this.#busOptions = {
      ...opts.kafka, // the config's kafka keys are the bus's option names
      kinds: opts.kinds ?? [...JOB_KINDS],
      // Only this member's own lease expiries can exhaust a job here (a crashed member's job
      // comes back with the attempt count of its message): the origin learns it from the lease
      // it recorded, which ends without a heartbeat.
      onLeaseExhausted: (job) =>
        this.#log.error({ jobId: job.id, videoId: job.videoId }, 'job dead-lettered: its last lease expired'),
    }
  }

  /** Joins the group (creating the topics when missing); ERR_JOB_BUS_UNAVAILABLE when Kafka does not answer. */
  async connect(): Promise<void> {
    if (this.#bus === null) this.#bus = await connectKafkaJobBus(this.#busOptions)
  }

  #member(): KafkaJobBus {
    if (this.#bus === null) throw new TypeError('KafkaJobSource: connect() first')
    return this.#bus
  }

  async claim(leaseMs: number): Promise<ClaimedJob | null> {
    const bus = this.#member()
    for (let skipped = 0; skipped < MAX_SKIPPED_PER_CLAIM; skipped++) {
      const job = await bus.claim(this.#workerId, leaseMs)
      if (job === null) return null
      // An origin that does not answer throws here: the bus lease runs out and the job is offered again.
      const leased = await this.#http.lease(job.id, leaseMs, job.attempt)
      if (leased !== null) return leased
      // Settled at the origin (done, failed, or its video deleted): commit it without running.
      await bus.complete(job.id, this.#workerId, { isCancelled: true })
    }
    return null
  }

  async heartbeat(jobId: string, leaseMs: number, progress: number): Promise<boolean> {
    const bus = this.#member()
    const isHeld = await this.#http.heartbeat(jobId, leaseMs, progress)
    if (!isHeld) {
      // The origin gave the job to another member (the group moved it): this delivery is done here.
      await this.#settleQuietly(jobId)
      return false
    }
    return bus.heartbeat(jobId, this.#workerId, leaseMs, progress)
  }

  downloadSource(jobId: string, toPath: string, signal: AbortSignal): Promise<number> {
    return this.#http.downloadSource(jobId, toPath, signal)
  }

  downloadCaptions(jobId: string, dir: string, signal: AbortSignal): Promise<CaptionFile[]> {
    return this.#http.downloadCaptions(jobId, dir, signal)
  }

  downloadWork(jobId: string, key: string, toPath: string, signal: AbortSignal): Promise<number> {
    return this.#http.downloadWork(jobId, key, toPath, signal)
  }

  uploadOutput(jobId: string, key: string, path: string, contentType: string): Promise<void> {
    return this.#http.uploadOutput(jobId, key, path, contentType)
  }

  async complete(jobId: string, result: JobResult): Promise<void> {
    await this.#http.complete(jobId, result)
    await this.#member().complete(jobId, this.#workerId, result)
  }

  async fail(jobId: string, error: JobError): Promise<void> {
    const bus = this.#member()
    let status: string
    try {
      ;({ status } = await this.#http.failJob(jobId, error))
    } catch (err) {
      // The origin refused (the job is another worker's now, or gone): nothing to republish.
      await this.#settleQuietly(jobId)
      throw err
    }
    await bus.fail(jobId, this.#workerId, status === 'failed' ? { ...error, isRetryable: false } : error)
  }

  async close(): Promise<void> {
    const bus = this.#bus
    this.#bus = null
    await Promise.all([bus?.close(), this.#http.close()])
  }

  async #settleQuietly(jobId: string): Promise<void> {
    try {
      await this.#member().complete(jobId, this.#workerId, { isCancelled: true })
    } catch (err) {
      this.#log.warn({ err, jobId }, 'could not settle a job the origin gave to another worker')
    }
  }
}
