// Where a Kafka job bus keeps job state. Kafka carries delivery; it cannot answer "what state is
// job X in" or "which jobs failed", so every transition is written here too. The default keeps
// it in this process; the origin's metadata is the store meant for several processes.
import type { Job } from './job.js'

export interface JobStateStore {
  get(jobId: string): Job | null
  /** Replaces the job with that id. */
  put(job: Job): void
  /** Failed jobs, newest first. */
  failed(): Job[]
}

/** State kept in this process only: enough for one bus, or for several in one process (tests). */
export function memoryJobStateStore(): JobStateStore {
  const jobs = new Map<string, Job>()
  return {
    get: (id) => jobs.get(id) ?? null,
    put: (job) => void jobs.set(job.id, job),
    failed: () => [...jobs.values()].filter((j) => j.status === 'failed').sort((a, b) => b.updatedAtMs - a.updatedAtMs),
  }
}
