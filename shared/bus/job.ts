// The job bus (docs/architecture.md §9): how the origin hands work to the transcoder fleet. Two implementations
// pass one contract suite (./test/contract.ts): the embedded SQLite queue inside the origin
// (origin/src/job-queue.ts, the default) and Kafka (./kafka.ts, scale-out).
//
// Lifecycle: queued → leased (lease + heartbeat) → done | queued again after a backoff (retryable
// failure, or a lease that expired because its worker died) | failed (non-retryable, or attempts
// exhausted) — failed jobs are kept with their last error and form the dead-letter list.

export type JobStatus = 'queued' | 'leased' | 'done' | 'failed'

/**
 * Job kinds. `transcode` encodes and publishes a whole video; a long video is split
 * (docs/architecture.md §8) into `transcode.chunk` jobs, one per chunk on the segment grid, one
 * `transcode.audio` job encoding every audio track of the whole source (when it has audio), and
 * one `transcode.stitch` job queued once all of them are done. All are keyed by video id on the
 * Kafka bus, but a chunk job by video id and index and the audio job by `<videoId>/audio`, so a
 * video's parts spread over the group.
 */
export const JOB_KIND_TRANSCODE = 'transcode'
export const JOB_KIND_CHUNK = 'transcode.chunk'
export const JOB_KIND_AUDIO = 'transcode.audio'
export const JOB_KIND_STITCH = 'transcode.stitch'
/** Every kind the origin enqueues (a Kafka bus needs a topic trio for each). */
export const JOB_KINDS: readonly string[] = [JOB_KIND_TRANSCODE, JOB_KIND_CHUNK, JOB_KIND_AUDIO, JOB_KIND_STITCH]

export interface JobError {
  code: string
  message: string
  isRetryable: boolean
}

export interface Job {
  id: string
  kind: string
  videoId: string
  payload: Record<string, unknown>
  status: JobStatus
  /** How many times the job has been claimed (1 on the first lease). */
  attempt: number
  maxAttempts: number
  /** Not claimable before this (epoch ms): the retry backoff. */
  runAfterMs: number
  /** While leased: the lease ends at this epoch ms unless a heartbeat extends it. */
  leaseUntilMs: number | null
  workerId: string | null
  /** 0..1 as last reported by the lease holder. */
  progress: number
  lastError: JobError | null
  result: unknown
  createdAtMs: number
  updatedAtMs: number
}

/** Options of one enqueue. */
export interface EnqueueOptions {
  /**
   * The job's id, chosen by the caller (JOB_ID_RE). With an id, enqueue is idempotent: when the bus
   * already knows a job with that id it returns that job and queues nothing. This is what lets a
   * transactional outbox (docs/architecture.md §9) hand the same job to the bus again after a crash
   * between the hand-over and the removal of its outbox row.
   */
  id?: string
}

/** A caller-chosen job id: a label safe in URLs, topic keys and logs. */
export const JOB_ID_RE = /^[A-Za-z0-9_-]{1,128}$/

export interface JobBus {
  enqueue(kind: string, videoId: string, payload: Record<string, unknown>, opts?: EnqueueOptions): Promise<Job>
  /** The next runnable job, leased to workerId for leaseMs; null when there is none. */
  claim(workerId: string, leaseMs: number): Promise<Job | null>
  /** Extends the lease and records progress; false when the lease is lost (another worker has it, or it ended). */
  heartbeat(jobId: string, workerId: string, leaseMs: number, progress: number): Promise<boolean>
  /**
   * Marks the job done. Idempotent: completing a done job is a no-op that returns it. Throws
   * VcdnError ERR_JOB_LEASE_LOST when workerId does not hold the lease, ERR_JOB_NOT_FOUND.
   */
  complete(jobId: string, workerId: string, result: unknown): Promise<Job>
  /** Retry after a backoff, or fail for good (non-retryable, attempts exhausted). Same lease rules as complete. */
  fail(jobId: string, workerId: string, error: JobError): Promise<Job>
  get(jobId: string): Promise<Job | null>
  /** Failed jobs with their last error, newest first. */
  deadLetters(): Promise<Job[]>
}

/** Options every implementation accepts, so the contract suite can drive them alike. */
export interface JobBusOptions {
  /** Clock, epoch ms (injected in tests). */
  now?: () => number
  /** Claims before a job fails for good (default 3). */
  maxAttempts?: number
  /** First retry delay; doubles per attempt up to backoffMaxMs (default 1000). */
  backoffBaseMs?: number
  backoffMaxMs?: number
}

export const DEFAULT_MAX_ATTEMPTS = 3
export const DEFAULT_BACKOFF_BASE_MS = 1000
export const DEFAULT_BACKOFF_MAX_MS = 5 * 60_000

/** Exponential backoff before attempt `attempt + 1`: base · 2^(attempt-1), capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}
