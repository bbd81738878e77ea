// The origin's metadata as the state store of the Kafka job bus (docs/architecture.md §9): Kafka carries the
// jobs, and every transition the bus makes lands in the same `jobs` table the embedded queue uses,
// so the API, `vcdn` and the dead-letter list read job state the same way with either bus. Only
// one of the two buses runs against a database: the embedded queue would claim these rows.
import type { Job, JobStateStore } from '../../shared/bus/index.js'
import type { Db } from './db.js'
import { openJobsTable, toJob, type JobRow } from './job-queue.js'

export function sqliteJobStateStore(db: Db): JobStateStore {
  if (db === null || typeof db !== 'object') throw new TypeError('sqliteJobStateStore: db must be a database')
  openJobsTable(db)
  const select = db.prepare(`SELECT * FROM jobs WHERE id = ?`)
  const upsert = db.prepare(
    `INSERT INTO jobs (id, kind, video_id, payload, status, attempt, max_attempts, run_after, lease_until, worker_id,
       progress, last_error, result, created_at, updated_at)
     VALUES (@id, @kind, @videoId, @payload, @status, @attempt, @maxAttempts, @runAfterMs, @leaseUntilMs, @workerId,
       @progress, @lastError, @result, @createdAtMs, @updatedAtMs)
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempt = excluded.attempt,
       max_attempts = excluded.max_attempts, run_after = excluded.run_after, lease_until = excluded.lease_until,
       worker_id = excluded.worker_id, progress = excluded.progress, last_error = excluded.last_error,
       result = excluded.result, updated_at = excluded.updated_at`,
  )
  const failed = db.prepare(`SELECT * FROM jobs WHERE status = 'failed' ORDER BY updated_at DESC, rowid DESC`)
  return {
    get(jobId: string): Job | null {
      const row = select.get(jobId) as JobRow | undefined
      return row === undefined ? null : toJob(row)
    },
    put(job: Job): void {
      upsert.run({
        ...job,
        payload: JSON.stringify(job.payload),
        lastError: job.lastError === null ? null : JSON.stringify(job.lastError),
        result: job.result === null || job.result === undefined ? null : JSON.stringify(job.result),
      })
    },
    failed(): Job[] {
      return (failed.all() as JobRow[]).map(toJob)
    },
  }
}
