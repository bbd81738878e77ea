// The embedded job bus (docs/architecture.md §7.3, §9): a queue in the origin's SQLite file, its
// `jobs` table created here, its statements prepared once. Every transition is one statement (or
// one synchronous transaction), so concurrent HTTP requests of one process can never interleave
// inside a transition; claim is a single UPDATE … RETURNING. The origin reaches it through the
// JobBus interface only; its video status changes hand it jobs through the outbox (job-outbox.ts).
//
//   queued ──claim──► leased ──complete──► done
//     ▲                 │ fail (retryable, attempts left) → queued with run_after = now + backoff
//     └─ lease expired ─┤ fail (non-retryable / exhausted), or lease expired on the last attempt
//        (next claim)   └──────────────────────────────────► failed (kept: the dead-letter list)
import {
  backoffMs,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_MAX_ATTEMPTS,
  JOB_ID_RE,
  type EnqueueOptions,
  type Job,
  type JobBus,
  type JobBusOptions,
  type JobError,
  type JobStatus,
} from '../../shared/bus/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import type { Db, Statement } from './db.js'
import { newId } from './ids.js'

/**
 * The `jobs` table: the embedded queue's state, and the Kafka bus's state store when the origin
 * runs that bus (./job-state.ts). Its schema lives here, beside the queue; databases made before it
 * moved got the same table from the metadata's first migration, hence IF NOT EXISTS.
 */
const JOBS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    video_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued','leased','done','failed')),
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_after INTEGER NOT NULL,
    lease_until INTEGER,
    worker_id TEXT,
    heartbeat_at INTEGER,
    progress REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    result TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS jobs_runnable ON jobs (status, run_after);
  CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_until);
  CREATE INDEX IF NOT EXISTS jobs_video ON jobs (video_id);
`

/**
 * The next runnable job: the first by (run_after, rowid) among queued jobs that are due and leases
 * that expired. Each kind is read from its own index, first row only, and the two are compared: a
 * single query with an OR would sort every due job on each claim (a backlog of n jobs drained in
 * O(n²); 5 ms per claim at 20 000 queued, 5 µs this way).
 */
export const CLAIM_NEXT = `SELECT rowid FROM (
    SELECT rowid, run_after FROM (SELECT rowid, run_after FROM jobs WHERE status = 'queued' AND run_after <= @now
      ORDER BY run_after, rowid LIMIT 1)
    UNION ALL
    SELECT rowid, run_after FROM (SELECT rowid, run_after FROM jobs WHERE status = 'leased' AND lease_until <= @now
      ORDER BY run_after, rowid LIMIT 1)
  ) ORDER BY run_after, rowid LIMIT 1`

/** The jobs table, created when missing; what the rest of the origin may do to it directly. */
export interface JobsTable {
  /** Forgets every job of a video (its deletion; runs inside the caller's transaction). */
  deleteOfVideo(videoId: string): void
}

export function openJobsTable(db: Db): JobsTable {
  db.exec(JOBS_SCHEMA)
  const del = db.prepare(`DELETE FROM jobs WHERE video_id = ?`)
  return { deleteOfVideo: (videoId) => void del.run(videoId) }
}

export interface SqliteJobQueueOptions extends JobBusOptions {
  db: Db
  /** Called (synchronously) for each job that failed for good because its last lease expired. */
  onLeaseExhausted?: (job: Job) => void
}

export interface JobRow {
  id: string
  kind: string
  video_id: string
  payload: string
  status: JobStatus
  attempt: number
  max_attempts: number
  run_after: number
  lease_until: number | null
  worker_id: string | null
  progress: number
  last_error: string | null
  result: string | null
  created_at: number
  updated_at: number
}

export function toJob(r: JobRow): Job {
  return {
    id: r.id,
    kind: r.kind,
    videoId: r.video_id,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    status: r.status,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    runAfterMs: r.run_after,
    leaseUntilMs: r.lease_until,
    workerId: r.worker_id,
    progress: r.progress,
    lastError: r.last_error === null ? null : (JSON.parse(r.last_error) as JobError),
    result: r.result === null ? null : (JSON.parse(r.result) as unknown),
    createdAtMs: r.created_at,
    updatedAtMs: r.updated_at,
  }
}

const LEASE_EXPIRED: JobError = {
  code: 'ERR_JOB_LEASE_EXPIRED',
  message: 'the worker stopped heartbeating on the last attempt',
  isRetryable: false,
}

function positiveInt(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`SqliteJobQueue: ${path} must be a positive integer`)
  }
  return value
}

export class SqliteJobQueue implements JobBus {
  readonly #db: Db
  readonly #now: () => number
  readonly #maxAttempts: number
  readonly #backoffBaseMs: number
  readonly #backoffMaxMs: number
  readonly #onLeaseExhausted: (job: Job) => void
  // Prepared once (the table exists by then: openJobsTable).
  readonly #sql: Record<
    'insert' | 'failExpired' | 'claim' | 'heartbeat' | 'complete' | 'settleFail' | 'deadLetters' | 'get',
    Statement
  >

  constructor(opts: SqliteJobQueueOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('SqliteJobQueue: options must be an object')
    if (opts.db === null || typeof opts.db !== 'object')
      throw new TypeError('SqliteJobQueue: options.db must be a database')
    this.#db = opts.db
    this.#now = opts.now ?? Date.now
    this.#maxAttempts = positiveInt(opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 'options.maxAttempts')
    this.#backoffBaseMs = positiveInt(opts.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS, 'options.backoffBaseMs')
    this.#backoffMaxMs = positiveInt(opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS, 'options.backoffMaxMs')
    this.#onLeaseExhausted = opts.onLeaseExhausted ?? (() => undefined)
    openJobsTable(this.#db)
    const db = this.#db
    this.#sql = {
      // ON CONFLICT … DO NOTHING: an enqueue with a known id (EnqueueOptions.id) returns no row.
      insert: db.prepare(
        `INSERT INTO jobs (id, kind, video_id, payload, status, max_attempts, run_after, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING *`,
      ),
      // A lease that expired on the last attempt: the worker died every time; stop retrying.
      failExpired: db.prepare(
        `UPDATE jobs SET status = 'failed', last_error = ?, worker_id = NULL, lease_until = NULL, updated_at = ?
         WHERE status = 'leased' AND lease_until <= ? AND attempt >= max_attempts RETURNING *`,
      ),
      // Runnable = queued past its backoff, or leased with an expired lease (a dead worker).
      claim: db.prepare(
        `UPDATE jobs SET status = 'leased', worker_id = @workerId, lease_until = @now + @leaseMs, heartbeat_at = @now,
           attempt = attempt + 1, updated_at = @now
         WHERE rowid = (${CLAIM_NEXT})
         RETURNING *`,
      ),
      heartbeat: db.prepare(
        `UPDATE jobs SET lease_until = ?, heartbeat_at = ?, progress = ?, updated_at = ?
         WHERE id = ? AND status = 'leased' AND worker_id = ?`,
      ),
      complete: db.prepare(
        `UPDATE jobs SET status = 'done', result = ?, progress = 1, lease_until = NULL, updated_at = ?
         WHERE id = ? AND status = 'leased' AND worker_id = ? RETURNING *`,
      ),
      settleFail: db.prepare(
        `UPDATE jobs SET status = ?, last_error = ?, run_after = ?, worker_id = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? RETURNING *`,
      ),
      deadLetters: db.prepare(`SELECT * FROM jobs WHERE status = 'failed' ORDER BY updated_at DESC, rowid DESC`),
      get: db.prepare(`SELECT * FROM jobs WHERE id = ?`),
    }
  }

  async enqueue(
    kind: string,
    videoId: string,
    payload: Record<string, unknown>,
    opts: EnqueueOptions = {},
  ): Promise<Job> {
    if (opts.id !== undefined && !JOB_ID_RE.test(opts.id))
      throw new TypeError('SqliteJobQueue: opts.id must match JOB_ID_RE')
    const now = this.#now()
    const id = opts.id ?? newId()
    const row = this.#sql.insert.get(id, kind, videoId, JSON.stringify(payload), this.#maxAttempts, now, now, now) as
      JobRow | undefined
    // Idempotent by id: the job as the queue knows it.
    return row === undefined ? (this.#get(id) as Job) : toJob(row)
  }

  async claim(workerId: string, leaseMs: number): Promise<Job | null> {
    const now = this.#now()
    const exhausted: Job[] = []
    const claimed = this.#db.transaction(() => {
      const dead = this.#sql.failExpired.all(JSON.stringify(LEASE_EXPIRED), now, now) as JobRow[]
      for (const r of dead) exhausted.push(toJob(r))
      const row = this.#sql.claim.get({ workerId, leaseMs, now }) as JobRow | undefined
      return row === undefined ? null : toJob(row)
    })()
    for (const job of exhausted) this.#onLeaseExhausted(job)
    return claimed
  }

  async heartbeat(jobId: string, workerId: string, leaseMs: number, progress: number): Promise<boolean> {
    const now = this.#now()
    // The lease is held while the job is leased to this worker; an expired lease nobody else took
    // yet is still this worker's (a late heartbeat is not a reason to throw finished work away).
    const info = this.#sql.heartbeat.run(now + leaseMs, now, progress, now, jobId, workerId)
    return info.changes === 1
  }

  // async: a throw of the synchronous body becomes a rejection.
  async complete(jobId: string, workerId: string, result: unknown): Promise<Job> {
    const now = this.#now()
    const row = this.#sql.complete.get(JSON.stringify(result ?? null), now, jobId, workerId) as JobRow | undefined
    if (row !== undefined) return toJob(row)
    const current = this.#get(jobId)
    if (current === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (current.status === 'done') return current // idempotent: a retried complete is a no-op
    throw new VcdnError('ERR_JOB_LEASE_LOST')
  }

  async fail(jobId: string, workerId: string, error: JobError): Promise<Job> {
    const now = this.#now()
    const failed = this.#db.transaction((): Job => {
      const current = this.#get(jobId)
      if (current === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
      if (current.status !== 'leased' || current.workerId !== workerId) throw new VcdnError('ERR_JOB_LEASE_LOST')
      const lastError = JSON.stringify({ code: error.code, message: error.message, isRetryable: error.isRetryable })
      const isFinal = !error.isRetryable || current.attempt >= current.maxAttempts
      const runAfter = isFinal
        ? current.runAfterMs
        : now + backoffMs(current.attempt, this.#backoffBaseMs, this.#backoffMaxMs)
      const row = this.#sql.settleFail.get(isFinal ? 'failed' : 'queued', lastError, runAfter, now, jobId) as JobRow
      return toJob(row)
    })
    return failed()
  }

  async get(jobId: string): Promise<Job | null> {
    return this.#get(jobId)
  }

  async deadLetters(): Promise<Job[]> {
    return (this.#sql.deadLetters.all() as JobRow[]).map(toJob)
  }

  #get(jobId: string): Job | null {
    const row = this.#sql.get.get(jobId) as JobRow | undefined
    return row === undefined ? null : toJob(row)
  }
}
