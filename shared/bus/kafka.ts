// The Kafka job bus (docs/architecture.md §9, scale-out column) on node-rdkafka, which only this
// file, ./kafka-client.ts and ./kafka-admin.ts load. Kafka carries delivery; the job's state
// (status, lease, progress, result, last error) lives in a JobStateStore (./state.ts: in memory by
// default; the origin's metadata is the store meant for several processes), because Kafka cannot
// be asked "what state is job X in" or "list the failed jobs".
// Leases are this member's: a lease that expires hands the job to another worker of the same bus;
// a member that dies hands its uncommitted jobs to the group.
//
// Topics per job kind K (prefix P, keyed by video id so one video's jobs stay in one partition, but
// a chunk job by video id and chunk index and an audio job by `<videoId>/audio`, so a video's parts
// spread over the group: messageKey):
//   P+K              new jobs (enqueue)
//   P+K.retry        a retryable failure, republished with its attempt count and the epoch ms
//                    before which it must not run (the backoff)
//   P+K.dead-letter  a job that failed for good, with its last error
// Every bus is one member of one consumer group (the transcoders' group). A background loop
// consumes the member's partitions into an in-memory buffer; claim() hands out the oldest runnable
// job of the buffer under a lease. Auto-commit is off: a message's offset is committed only once
// its job is settled (done, republished to the retry topic, or dead-lettered), and only as the
// contiguous settled prefix of its partition, so a member that dies mid-job leaves the job's
// offset uncommitted and the group hands it to another member after the rebalance.
//
// "Nothing to claim" is exact for this member: claim() first reads every assigned partition up to
// the high watermark it queries at that moment, so a job whose enqueue was acknowledged before the
// claim started is seen by it.
import Kafka from 'node-rdkafka'
import { randomBytes } from 'node:crypto'
import { VcdnError } from '../errors/index.js'
import {
  backoffMs,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_MAX_ATTEMPTS,
  JOB_ID_RE,
  JOB_KIND_AUDIO,
  JOB_KIND_CHUNK,
  type EnqueueOptions,
  type Job,
  type JobBus,
  type JobBusOptions,
  type JobError,
} from './job.js'
import { ensureTopics, withDeadline as raceDeadline } from './kafka-admin.js'
import { memoryJobStateStore, type JobStateStore } from './state.js'

export interface KafkaJobBusOptions extends JobBusOptions {
  /** Bootstrap brokers, `host:port[,host:port…]`. */
  brokers: string
  /** Prepended to every topic name (default `vcdn.jobs.`). */
  topicPrefix?: string
  /** The consumer group every transcoder joins (default `vcdn-transcoders`). */
  groupId?: string
  /** Job kinds this bus produces and consumes (default `["transcode"]`); one topic trio each. */
  kinds?: string[]
  /** Partitions of the topics this bus creates when they are missing (default 4). */
  partitions?: number
  /** Bound on each broker round trip: connect, first assignment, produce acknowledgement, read-up-to-date (default 30 s). */
  timeoutMs?: number
  state?: JobStateStore
  /**
   * false: a producer only (the origin): enqueue works, the bus joins no group and claim() throws.
   * Default true, a member of the group.
   */
  shouldConsume?: boolean
  /**
   * How long the group waits for a silent member before its partitions go to the others
   * (librdkafka session.timeout.ms; the broker allows 6 s..30 min by default). Default 45 s.
   */
  sessionTimeoutMs?: number
  /** Called for each job that failed for good because its last lease expired. */
  onLeaseExhausted?: (job: Job) => void
}

/** The JSON value of a job message on any of the three topics. */
interface JobMessage {
  id: string
  kind: string
  videoId: string
  payload: Record<string, unknown>
  /** Claims so far. */
  attempt: number
  maxAttempts: number
  runAfterMs: number
  createdAtMs: number
  /** The enqueuer's sequence number: orders jobs enqueued in the same millisecond. */
  seq: number
  lastError: JobError | null
}

/** One consumed message whose job is not settled yet. */
interface Delivery {
  msg: JobMessage
  topic: string
  partition: number
  offset: number
  workerId: string | null
  leaseUntilMs: number | null
  /** Its partition was revoked: another member owns the offset now; never commit it. */
  isRevoked: boolean
}

const LEASE_EXPIRED: JobError = {
  code: 'ERR_JOB_LEASE_EXPIRED',
  message: 'the worker stopped heartbeating on the last attempt',
  isRetryable: false,
}

const CONSUME_BATCH = 100
const CONSUME_WAIT_MS = 100

function positiveInt(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`KafkaJobBus: ${path} must be a positive integer`)
  }
  return value
}

function nonEmptyString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`KafkaJobBus: ${path} must be a non-empty string`)
  return value
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`

/**
 * The key a job's messages carry, which picks their partition: the video id, so one video's jobs
 * keep their order in one partition and reach one member. A chunk job of a split video (§8) is
 * keyed by its video id and chunk index instead, and its audio job by `<videoId>/audio`, so the
 * parts spread over the partitions and the group's members encode them side by side; their retry
 * messages carry the same key.
 */
function messageKey(msg: Pick<JobMessage, 'kind' | 'videoId' | 'payload'>): string {
  if (msg.kind === JOB_KIND_AUDIO) return `${msg.videoId}/audio`
  const index = msg.payload['index']
  return msg.kind === JOB_KIND_CHUNK && Number.isSafeInteger(index) ? `${msg.videoId}/${String(index)}` : msg.videoId
}

function unavailable(what: string, cause?: unknown): VcdnError {
  return new VcdnError('ERR_JOB_BUS_UNAVAILABLE', `${what}`, cause === undefined ? undefined : { cause })
}

function withDeadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  return raceDeadline(what, ms, p, unavailable)
}

export class KafkaJobBus implements JobBus {
  readonly #now: () => number
  readonly #maxAttempts: number
  readonly #backoffBaseMs: number
  readonly #backoffMaxMs: number
  readonly #timeoutMs: number
  readonly #prefix: string
  readonly #kinds: string[]
  readonly #state: JobStateStore
  readonly #onLeaseExhausted: (job: Job) => void
  readonly #shouldConsume: boolean
  readonly #producer: Kafka.HighLevelProducer
  readonly #consumer: Kafka.KafkaConsumer
  /** Unsettled deliveries by job id (one per job: a job's next message exists only once this one is settled). */
  readonly #deliveries = new Map<string, Delivery>()
  /**
   * Messages of a job consumed while an earlier delivery of it is still unsettled here: the retry
   * message fail() produces can be consumed before its produce is acknowledged, i.e. before fail()
   * settles the delivery it replaces. Each waits, by job id, until that delivery settles.
   */
  readonly #early = new Map<string, { msg: JobMessage; topic: string; partition: number; offset: number }[]>()
  /** Per assigned partition: offsets consumed and not yet committed, ascending, with whether each is settled. */
  readonly #uncommitted = new Map<string, { offset: number; isSettled: boolean }[]>()
  /** Per assigned partition: the next offset the loop will read (known once read or looked up). */
  readonly #next = new Map<string, number>()
  /** Per partition: the offset to commit that the broker has not acknowledged yet. */
  readonly #commitDue = new Map<string, Kafka.TopicPartitionOffset>()
  #isAssigned = false
  #isClosed = false
  #loop: Promise<void> = Promise.resolve()
  #loopError: unknown = null
  /** Woken after each consume round. */
  #waiters: (() => void)[] = []
  /** All state transitions run one at a time (the owner of #deliveries and #uncommitted). */
  #serial: Promise<unknown> = Promise.resolve()
  #seq = 0

  private constructor(opts: KafkaJobBusOptions) {
    this.#now = opts.now ?? Date.now
    this.#maxAttempts = positiveInt(opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 'options.maxAttempts')
    this.#backoffBaseMs = positiveInt(opts.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS, 'options.backoffBaseMs')
    this.#backoffMaxMs = positiveInt(opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS, 'options.backoffMaxMs')
    this.#timeoutMs = positiveInt(opts.timeoutMs ?? 30_000, 'options.timeoutMs')
    this.#prefix = opts.topicPrefix ?? 'vcdn.jobs.'
    if (typeof this.#prefix !== 'string') throw new TypeError('KafkaJobBus: options.topicPrefix must be a string')
    const kinds = opts.kinds ?? ['transcode']
    if (!Array.isArray(kinds) || kinds.length === 0)
      throw new TypeError('KafkaJobBus: options.kinds must be a non-empty array')
    this.#kinds = kinds.map((k, i) => nonEmptyString(k, `options.kinds[${i}]`))
    this.#state = opts.state ?? memoryJobStateStore()
    this.#onLeaseExhausted = opts.onLeaseExhausted ?? (() => undefined)
    this.#shouldConsume = opts.shouldConsume ?? true
    if (typeof this.#shouldConsume !== 'boolean')
      throw new TypeError('KafkaJobBus: options.shouldConsume must be a boolean')
    const sessionTimeoutMs = positiveInt(opts.sessionTimeoutMs ?? 45_000, 'options.sessionTimeoutMs')
    const brokers = nonEmptyString(opts.brokers, 'options.brokers')
    const groupId = nonEmptyString(opts.groupId ?? 'vcdn-transcoders', 'options.groupId')
    this.#producer = new Kafka.HighLevelProducer(
      { 'metadata.broker.list': brokers, 'enable.idempotence': true },
      // Every enqueue and republish is acknowledged by all in-sync replicas, once (idempotence).
      { acks: -1, 'message.timeout.ms': this.#timeoutMs },
    )
    this.#consumer = new Kafka.KafkaConsumer(
      {
        'metadata.broker.list': brokers,
        'group.id': groupId,
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        // How long an idle long-poll fetch waits at the broker: also how late a claim() that
        // waits for a just-enqueued job may see it (default 500 ms).
        'fetch.wait.max.ms': 100,
        'session.timeout.ms': sessionTimeoutMs,
        // librdkafka wants heartbeats well inside the session (its default 3 s, or a third of a shorter one).
        'heartbeat.interval.ms': Math.max(100, Math.min(3000, Math.floor(sessionTimeoutMs / 3))),
        rebalance_cb: (err: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]) => this.#rebalance(err, assignment),
      },
      { 'auto.offset.reset': 'earliest' },
    )
  }

  /** Creates the topics when missing, connects, joins the group and waits for its first assignment. */
  static async connect(opts: KafkaJobBusOptions): Promise<KafkaJobBus> {
    if (opts === null || typeof opts !== 'object') throw new TypeError('KafkaJobBus: options must be an object')
    const partitions = positiveInt(opts.partitions ?? 4, 'options.partitions')
    const bus = new KafkaJobBus(opts)
    try {
      await bus.#createTopics(nonEmptyString(opts.brokers, 'options.brokers'), partitions)
      await bus.#connect()
    } catch (err) {
      await bus.close()
      throw err
    }
    return bus
  }

  #topic(kind: string): string {
    return `${this.#prefix}${kind}`
  }

  #retryTopic(kind: string): string {
    return `${this.#prefix}${kind}.retry`
  }

  #deadLetterTopic(kind: string): string {
    return `${this.#prefix}${kind}.dead-letter`
  }

  async #createTopics(brokers: string, partitions: number): Promise<void> {
    const topics = this.#kinds.flatMap((k) => [this.#topic(k), this.#retryTopic(k), this.#deadLetterTopic(k)])
    await ensureTopics(brokers, topics, partitions, this.#timeoutMs, unavailable)
  }

  async #connect(): Promise<void> {
    await withDeadline(
      'producer connect',
      this.#timeoutMs,
      new Promise<void>((res, rej) =>
        this.#producer.connect({}, (err) => (err ? rej(unavailable('producer connect', err)) : res())),
      ),
    )
    this.#producer.setPollInterval(20)
    if (!this.#shouldConsume) return
    await withDeadline(
      'consumer connect',
      this.#timeoutMs,
      new Promise<void>((res, rej) =>
        this.#consumer.connect({}, (err) => (err ? rej(unavailable('consumer connect', err)) : res())),
      ),
    )
    this.#consumer.setDefaultConsumeTimeout(CONSUME_WAIT_MS)
    this.#consumer.subscribe(this.#kinds.flatMap((k) => [this.#topic(k), this.#retryTopic(k)]))
    this.#loop = this.#runLoop()
    await withDeadline(
      'first partition assignment',
      this.#timeoutMs,
      this.#waitFor(() => this.#isAssigned),
    )
  }

  /** The background reader: consumes the assigned partitions into #deliveries until close(). */
  async #runLoop(): Promise<void> {
    while (!this.#isClosed) {
      try {
        const batch = await new Promise<Kafka.Message[]>((res, rej) =>
          this.#consumer.consume(CONSUME_BATCH, (err, msgs) => (err ? rej(unavailable('consume', err)) : res(msgs))),
        )
        for (const m of batch) this.#ingest(m)
        this.#loopError = null
      } catch (err) {
        // A broker that is down or restarting: librdkafka reconnects by itself; claim() reports
        // ERR_JOB_BUS_UNAVAILABLE if it cannot read up to date before its deadline.
        if (this.#isClosed) break
        this.#loopError = err
        await new Promise((res) => setTimeout(res, CONSUME_WAIT_MS))
      }
      const waiters = this.#waiters
      this.#waiters = []
      for (const w of waiters) w()
    }
  }

  async #waitFor(cond: () => boolean): Promise<void> {
    while (!cond()) {
      if (this.#isClosed) throw unavailable('the bus is closed')
      await new Promise<void>((res) => this.#waiters.push(res))
    }
  }

  #rebalance(err: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]): void {
    if (err.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
      this.#consumer.assign(assignment)
      this.#isAssigned = true
      return
    }
    if (err.code === Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) {
      // The partitions go to another member, which restarts from their committed offsets: drop
      // what was buffered and not handed out; a job leased here may finish here, but its offset
      // is no longer ours to commit (the new owner runs it again unless the shared state says done).
      for (const { topic, partition } of assignment) {
        const key = tpKey(topic, partition)
        this.#uncommitted.delete(key)
        this.#commitDue.delete(key)
        this.#next.delete(key)
        for (const [id, d] of this.#deliveries) {
          if (d.topic !== topic || d.partition !== partition) continue
          if (d.workerId === null) this.#deliveries.delete(id)
          else d.isRevoked = true
        }
        for (const [id, list] of this.#early) {
          const kept = list.filter((e) => e.topic !== topic || e.partition !== partition)
          if (kept.length > 0) this.#early.set(id, kept)
          else this.#early.delete(id)
        }
      }
      this.#consumer.unassign()
      this.#isAssigned = false
    }
  }

  #ingest(m: Kafka.Message): void {
    const key = tpKey(m.topic, m.partition)
    this.#next.set(key, m.offset + 1)
    let msg: JobMessage
    try {
      msg = JSON.parse(m.value?.toString() ?? '') as JobMessage
    } catch {
      // Not ours: a message no vcdn bus wrote. Skip it, and let its offset be committed.
      this.#track(key, m.offset, true)
      return
    }
    const existing = this.#state.get(msg.id)
    if (existing !== null && (existing.status === 'done' || existing.status === 'failed')) {
      // Redelivered after its job was settled (a member died between settling and committing).
      this.#track(key, m.offset, true)
      return
    }
    this.#track(key, m.offset, false)
    const mine = this.#deliveries.get(msg.id)
    if (mine !== undefined && !mine.isRevoked && msg.attempt === 0 && mine.offset !== m.offset) {
      // A second enqueue message (attempt 0; retries carry their attempt) of a job delivered here
      // already, produced again by an idempotent enqueue: the first delivery is the job; this one
      // is settled at once.
      this.#track(key, m.offset, true)
      return
    }
    if (mine !== undefined && mine.topic === m.topic && mine.partition === m.partition && mine.offset === m.offset) {
      // Leased here before a rebalance took its partition away, and the partition came back:
      // the lease stands, and the offset is ours to commit again.
      mine.isRevoked = false
      return
    }
    if (mine !== undefined) {
      // Another message of a job whose delivery here is not settled yet: the retry message of a
      // fail() still waiting for its produce acknowledgement. It must not take the delivery's
      // place (fail() would then settle the retry's offset and leave the job's own uncommitted,
      // and the retry would never run): it waits until that delivery settles (#settle).
      const list = this.#early.get(msg.id) ?? []
      list.push({ msg, topic: m.topic, partition: m.partition, offset: m.offset })
      this.#early.set(msg.id, list)
      return
    }
    this.#accept(msg, m.topic, m.partition, m.offset, existing)
  }

  /** A consumed message of a job with no unsettled delivery here becomes its delivery. */
  #accept(msg: JobMessage, topic: string, partition: number, offset: number, existing: Job | null): void {
    // Redelivered after its member died mid-job: the shared state may know of more claims than
    // the message, which was produced before them.
    if (existing !== null && existing.attempt > msg.attempt) msg.attempt = existing.attempt
    // Or its partition moved while another member's worker runs it: that lease is honoured until
    // it expires (the shared state says when), so the job does not run twice at once.
    const isHeldElsewhere =
      existing?.status === 'leased' && existing.workerId !== null && existing.leaseUntilMs !== null
    const delivery: Delivery = {
      msg,
      topic,
      partition,
      offset,
      workerId: isHeldElsewhere ? existing.workerId : null,
      leaseUntilMs: isHeldElsewhere ? existing.leaseUntilMs : null,
      isRevoked: false,
    }
    this.#deliveries.set(msg.id, delivery)
    if (!isHeldElsewhere) this.#state.put(this.#toJob(delivery, existing))
  }

  /**
   * Brings the buffer in line with the shared state: a job another member settled is settled here
   * too (its offset committed), and a lease another member renewed is renewed here.
   */
  #syncWithState(): void {
    for (const d of [...this.#deliveries.values()]) {
      const st = this.#state.get(d.msg.id)
      if (st === null) continue
      if (st.status === 'done' || st.status === 'failed') {
        this.#settle(d)
        continue
      }
      if (
        st.status === 'leased' &&
        d.workerId !== null &&
        st.workerId === d.workerId &&
        st.leaseUntilMs !== null &&
        (d.leaseUntilMs === null || st.leaseUntilMs > d.leaseUntilMs)
      ) {
        d.leaseUntilMs = st.leaseUntilMs
      }
    }
  }

  /** The job's delivery settled: the next message of it that came early becomes its delivery, or is settled. */
  #acceptEarly(jobId: string): void {
    const list = this.#early.get(jobId)
    const next = list?.shift()
    if (list === undefined || next === undefined) return
    if (list.length === 0) this.#early.delete(jobId)
    const existing = this.#state.get(jobId)
    if (existing !== null && (existing.status === 'done' || existing.status === 'failed')) {
      // Settled already: like a redelivery of a settled job (#ingest), its offset is settled too.
      this.#settle({
        msg: next.msg,
        topic: next.topic,
        partition: next.partition,
        offset: next.offset,
        workerId: null,
        leaseUntilMs: null,
        isRevoked: false,
      })
      return
    }
    this.#accept(next.msg, next.topic, next.partition, next.offset, existing)
  }

  #track(key: string, offset: number, isSettled: boolean): void {
    let list = this.#uncommitted.get(key)
    if (list === undefined) this.#uncommitted.set(key, (list = []))
    list.push({ offset, isSettled })
  }

  #toJob(d: Delivery, prev: Job | null): Job {
    const now = this.#now()
    return {
      id: d.msg.id,
      kind: d.msg.kind,
      videoId: d.msg.videoId,
      payload: d.msg.payload,
      status: d.workerId === null ? 'queued' : 'leased',
      attempt: d.msg.attempt,
      maxAttempts: d.msg.maxAttempts,
      runAfterMs: d.msg.runAfterMs,
      leaseUntilMs: d.leaseUntilMs,
      workerId: d.workerId,
      progress: prev?.progress ?? 0,
      lastError: d.msg.lastError,
      result: null,
      createdAtMs: d.msg.createdAtMs,
      updatedAtMs: prev?.updatedAtMs ?? now,
    }
  }

  /** Marks a delivery's offset settled and commits its partition's settled prefix. */
  #settle(d: Delivery): void {
    this.#deliveries.delete(d.msg.id)
    this.#acceptEarly(d.msg.id)
    if (d.isRevoked) return
    const key = tpKey(d.topic, d.partition)
    const list = this.#uncommitted.get(key)
    if (list === undefined) return
    const entry = list.find((e) => e.offset === d.offset)
    if (entry !== undefined) entry.isSettled = true
    let n = 0
    while (n < list.length && list[n]?.isSettled === true) n++
    if (n === 0) return
    const last = list[n - 1]?.offset ?? 0
    list.splice(0, n)
    // The committed offset is the next one to read (Kafka's convention).
    this.#commitDue.set(key, { topic: d.topic, partition: d.partition, offset: last + 1 })
    this.#commitDueOffsets()
  }

  /**
   * Commits what is due. A commit that fails (the broker is restarting, the group rebalancing)
   * stays due and is tried again on the next settle or claim; the job's state is already written,
   * so a redelivery in between is recognised as settled and skipped.
   */
  #commitDueOffsets(): void {
    for (const [key, tpo] of this.#commitDue) {
      if (!this.#uncommitted.has(key)) {
        this.#commitDue.delete(key) // revoked meanwhile: no longer ours to commit
        continue
      }
      try {
        this.#consumer.commitSync(tpo)
        this.#commitDue.delete(key)
      } catch {
        return
      }
    }
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#serial.then(fn, fn)
    this.#serial = p.catch(() => undefined)
    return p
  }

  async #produce(topic: string, msg: JobMessage): Promise<void> {
    await withDeadline(
      `produce to ${topic}`,
      this.#timeoutMs,
      new Promise<void>((res, rej) => {
        this.#producer.produce(topic, null, Buffer.from(JSON.stringify(msg)), messageKey(msg), Date.now(), (err) =>
          err ? rej(unavailable(`produce to ${topic}`, err)) : res(),
        )
      }),
    )
  }

  /** Reads every assigned partition up to the high watermark it has now. */
  async #readUpToDate(): Promise<void> {
    const deadline = performance.now() + this.#timeoutMs
    await withDeadline(
      'partition assignment',
      this.#timeoutMs,
      this.#waitFor(() => this.#isAssigned),
    )
    const assigned = this.#consumer.assignments()
    const marks = await Promise.all(
      assigned.map(({ topic, partition }) =>
        withDeadline(
          `watermarks of ${topic}/${partition}`,
          this.#timeoutMs,
          new Promise<{ low: number; high: number }>((res, rej) => {
            // Asked through the producer's connection: the broker answers one connection's requests
            // in order, and on the consumer's this query would wait behind the pending long-poll fetch.
            this.#producer.queryWatermarkOffsets(topic, partition, this.#timeoutMs, (err, w) =>
              err ? rej(unavailable('query watermarks', err)) : res({ low: w.lowOffset, high: w.highOffset }),
            )
          }),
        ),
      ),
    )
    const targets = new Map<string, { low: number; high: number }>()
    assigned.forEach(({ topic, partition }, i) => {
      const m = marks[i]
      if (m !== undefined) targets.set(tpKey(topic, partition), m)
    })
    const behind = (): boolean => {
      for (const [key, { high }] of targets) {
        if (high <= 0) continue
        const next = this.#next.get(key)
        if (next === undefined || next < high) return true
      }
      return false
    }
    // A partition with nothing past its committed offset has no message for the loop to report:
    // its position comes from the committed offset, looked up once.
    if (behind()) await this.#learnCommitted(targets)
    while (behind()) {
      const leftMs = deadline - performance.now()
      if (leftMs <= 0 || this.#isClosed) {
        throw unavailable(
          `could not read the job topics up to date within ${this.#timeoutMs} ms`,
          this.#loopError ?? undefined,
        )
      }
      await withDeadline('consume', leftMs, new Promise<void>((res) => this.#waiters.push(res)))
    }
  }

  async #learnCommitted(targets: Map<string, { low: number; high: number }>): Promise<void> {
    const unknown = this.#consumer.assignments().filter((a) => !this.#next.has(tpKey(a.topic, a.partition)))
    if (unknown.length === 0) return
    // Bounded here too, like every other broker round trip of a claim: a claim that never returns
    // would stop its worker's loop for good.
    const committed = await withDeadline(
      'committed offsets',
      this.#timeoutMs,
      new Promise<Kafka.TopicPartitionOffset[]>((res, rej) =>
        this.#consumer.committed(unknown, this.#timeoutMs, (err, tps) =>
          err ? rej(unavailable('committed offsets', err)) : res(tps),
        ),
      ),
    )
    for (const c of committed) {
      const key = tpKey(c.topic, c.partition)
      const marks = targets.get(key)
      if (marks === undefined || this.#next.has(key)) continue
      // No committed offset: the group starts at the earliest message still kept.
      const start = c.offset >= 0 ? c.offset : marks.low
      if (start >= marks.high) this.#next.set(key, start)
    }
  }

  async enqueue(
    kind: string,
    videoId: string,
    payload: Record<string, unknown>,
    opts: EnqueueOptions = {},
  ): Promise<Job> {
    if (!this.#kinds.includes(kind)) throw new TypeError(`KafkaJobBus: kind "${kind}" is not one of options.kinds`)
    if (opts.id !== undefined && !JOB_ID_RE.test(opts.id))
      throw new TypeError('KafkaJobBus: opts.id must match JOB_ID_RE')
    // Idempotent by id: a job the state store shows past its first delivery is returned as it is.
    // One still queued on attempt 0 may be a job whose produce failed after its state was written,
    // so it is produced again; a duplicate message that results is dropped on delivery (#ingest).
    const known = opts.id === undefined ? null : this.#state.get(opts.id)
    if (known !== null && !(known.status === 'queued' && known.attempt === 0)) return known
    const now = this.#now()
    const msg: JobMessage = {
      id: opts.id ?? `${now.toString(36)}${randomBytes(6).toString('hex')}`,
      kind,
      videoId,
      payload,
      attempt: 0,
      maxAttempts: this.#maxAttempts,
      runAfterMs: known?.runAfterMs ?? now,
      createdAtMs: known?.createdAtMs ?? now,
      seq: this.#seq++,
      lastError: null,
    }
    const job: Job = {
      ...msg,
      status: 'queued',
      leaseUntilMs: null,
      workerId: null,
      progress: 0,
      result: null,
      updatedAtMs: now,
    }
    delete (job as Partial<JobMessage>).seq
    this.#state.put(job)
    await this.#produce(this.#topic(kind), msg)
    return job
  }

  async claim(workerId: string, leaseMs: number): Promise<Job | null> {
    if (!this.#shouldConsume) throw new TypeError('KafkaJobBus: a producer-only bus (shouldConsume false) cannot claim')
    await this.#readUpToDate()
    return this.#run(async () => {
      const now = this.#now()
      this.#syncWithState()
      this.#commitDueOffsets()
      // A lease that expired on the last attempt: the worker died every time; stop retrying.
      // Or a redelivered job whose last attempt died with its member.
      for (const d of [...this.#deliveries.values()]) {
        const isExpired = d.workerId !== null && d.leaseUntilMs !== null && d.leaseUntilMs <= now
        const isOrphan = d.workerId === null && d.msg.runAfterMs <= now
        if (!(isExpired || isOrphan) || d.isRevoked) continue
        if (d.msg.attempt < d.msg.maxAttempts) continue
        const failed = await this.#deadLetter(d, LEASE_EXPIRED)
        this.#onLeaseExhausted(failed)
      }
      let best: Delivery | null = null
      for (const d of this.#deliveries.values()) {
        if (d.isRevoked) continue
        const isRunnable =
          d.workerId === null ? d.msg.runAfterMs <= now : d.leaseUntilMs !== null && d.leaseUntilMs <= now
        if (!isRunnable) continue
        if (
          best === null ||
          d.msg.runAfterMs < best.msg.runAfterMs ||
          (d.msg.runAfterMs === best.msg.runAfterMs &&
            (d.msg.createdAtMs < best.msg.createdAtMs ||
              (d.msg.createdAtMs === best.msg.createdAtMs && d.msg.seq < best.msg.seq)))
        ) {
          best = d
        }
      }
      if (best === null) return null
      best.workerId = workerId
      best.leaseUntilMs = now + leaseMs
      best.msg.attempt += 1
      const job: Job = { ...this.#toJob(best, this.#state.get(best.msg.id)), updatedAtMs: now }
      this.#state.put(job)
      return job
    })
  }

  async heartbeat(jobId: string, workerId: string, leaseMs: number, progress: number): Promise<boolean> {
    return this.#run(async () => {
      const d = this.#deliveries.get(jobId)
      // As in the embedded queue: an expired lease nobody else took yet is still this worker's.
      if (d === undefined || d.workerId !== workerId) return false
      const now = this.#now()
      d.leaseUntilMs = now + leaseMs
      const prev = this.#state.get(jobId)
      this.#state.put({ ...this.#toJob(d, prev), progress, updatedAtMs: now })
      return true
    })
  }

  async complete(jobId: string, workerId: string, result: unknown): Promise<Job> {
    return this.#run(async () => {
      const d = this.#held(jobId, workerId)
      if (d === null) return this.#settledOrThrow(jobId)
      const now = this.#now()
      const job: Job = {
        ...this.#toJob(d, this.#state.get(jobId)),
        status: 'done',
        result: result ?? null,
        progress: 1,
        leaseUntilMs: null,
        updatedAtMs: now,
      }
      this.#state.put(job)
      this.#settle(d)
      return job
    })
  }

  async fail(jobId: string, workerId: string, error: JobError): Promise<Job> {
    return this.#run(async () => {
      const d = this.#held(jobId, workerId)
      if (d === null) {
        this.#settledOrThrow(jobId)
        throw new VcdnError('ERR_JOB_LEASE_LOST')
      }
      const lastError = { code: error.code, message: error.message, isRetryable: error.isRetryable }
      if (!error.isRetryable || d.msg.attempt >= d.msg.maxAttempts) return this.#deadLetter(d, lastError)
      const now = this.#now()
      const retry: JobMessage = {
        ...d.msg,
        runAfterMs: now + backoffMs(d.msg.attempt, this.#backoffBaseMs, this.#backoffMaxMs),
        lastError,
      }
      // Republish first, then commit: a crash in between runs the job once more, never zero times.
      await this.#produce(this.#retryTopic(d.msg.kind), retry)
      const job: Job = {
        ...this.#toJob(d, this.#state.get(jobId)),
        status: 'queued',
        runAfterMs: retry.runAfterMs,
        lastError,
        workerId: null,
        leaseUntilMs: null,
        updatedAtMs: now,
      }
      this.#state.put(job)
      this.#settle(d)
      return job
    })
  }

  async get(jobId: string): Promise<Job | null> {
    return this.#state.get(jobId)
  }

  async deadLetters(): Promise<Job[]> {
    return this.#state.failed()
  }

  /** Stops the reader and leaves the group; unsettled jobs go to the other members. */
  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    await this.#loop
    if (this.#consumer.isConnected()) this.#commitDueOffsets() // a last try before leaving the group
    for (const w of this.#waiters) w()
    this.#waiters = []
    await Promise.all([
      new Promise<void>((res) => (this.#consumer.isConnected() ? this.#consumer.disconnect(() => res()) : res())),
      new Promise<void>((res) => (this.#producer.isConnected() ? this.#producer.disconnect(() => res()) : res())),
    ])
  }

  #held(jobId: string, workerId: string): Delivery | null {
    const d = this.#deliveries.get(jobId)
    return d !== undefined && d.workerId === workerId ? d : null
  }

  #settledOrThrow(jobId: string): Job {
    const current = this.#state.get(jobId)
    if (current === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (current.status === 'done') return current // idempotent: a retried complete is a no-op
    throw new VcdnError('ERR_JOB_LEASE_LOST')
  }

  async #deadLetter(d: Delivery, lastError: JobError): Promise<Job> {
    await this.#produce(this.#deadLetterTopic(d.msg.kind), { ...d.msg, lastError })
    const now = this.#now()
    const job: Job = {
      ...this.#toJob(d, this.#state.get(d.msg.id)),
      status: 'failed',
      lastError,
      workerId: null,
      leaseUntilMs: null,
      updatedAtMs: now,
    }
    this.#state.put(job)
    this.#settle(d)
    return job
  }
}
