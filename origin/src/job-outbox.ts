// The job outbox (docs/architecture.md §7.3, §9): how a video's status change and its job commit
// together whatever the bus. A job to send is a row written in the caller's SQLite transaction
// (the same one that changes the status); after the commit a relay hands each row to the bus
// with `JobBus.enqueue(…, { id })` and then deletes it. The id is chosen when the row is written,
// and an enqueue with a known id queues nothing more, so a crash between the hand-over and the
// delete sends the job again without making a second one. The embedded queue and the Kafka bus
// are driven alike: the origin calls nothing outside JobBus.
//
// Owned by the origin process: one relay per database; its flushes run one at a time.
import type { JobBus } from '../../shared/bus/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { Db, Statement } from './db.js'
import { newId } from './ids.js'

const OUTBOX_SCHEMA = `
  CREATE TABLE IF NOT EXISTS job_outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    video_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
`

interface OutboxRow {
  id: string
  kind: string
  video_id: string
  payload: string
}

export interface JobOutboxOptions {
  db: Db
  bus: JobBus
  log: Logger
  now: () => number
  /** How often pending rows are retried while the bus refuses them (default 5 s). */
  retryEveryMs?: number
}

export class JobOutbox {
  readonly #bus: JobBus
  readonly #log: Logger
  readonly #now: () => number
  readonly #retryEveryMs: number
  readonly #sql: Record<'insert' | 'pending' | 'delete' | 'deleteOfVideo', Statement>
  /** The flush in progress: flushes run one after another, never side by side. */
  #flushing: Promise<number> = Promise.resolve(0)
  #timer: NodeJS.Timeout | null = null

  constructor(opts: JobOutboxOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('JobOutbox: options must be an object')
    for (const k of ['db', 'bus', 'log', 'now'] as const) {
      if (opts[k] === undefined || opts[k] === null) throw new TypeError(`JobOutbox: options.${k} is required`)
    }
    const retryEveryMs = opts.retryEveryMs ?? 5000
    if (!Number.isSafeInteger(retryEveryMs) || retryEveryMs <= 0)
      throw new TypeError('JobOutbox: options.retryEveryMs must be a positive integer')
    this.#bus = opts.bus
    this.#log = opts.log
    this.#now = opts.now
    this.#retryEveryMs = retryEveryMs
    opts.db.exec(OUTBOX_SCHEMA)
    this.#sql = {
      insert: opts.db.prepare(
        `INSERT INTO job_outbox (id, kind, video_id, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      pending: opts.db.prepare(`SELECT id, kind, video_id, payload FROM job_outbox ORDER BY rowid`),
      delete: opts.db.prepare(`DELETE FROM job_outbox WHERE id = ?`),
      deleteOfVideo: opts.db.prepare(`DELETE FROM job_outbox WHERE video_id = ?`),
    }
  }

  /** Records a job to send; call inside the transaction that makes it due. Returns the job's id. */
  add(kind: string, videoId: string, payload: Record<string, unknown>): string {
    const id = newId()
    this.#sql.insert.run(id, kind, videoId, JSON.stringify(payload), this.#now())
    return id
  }

  /** Drops the jobs of a deleted video not yet sent (inside the deleting transaction). */
  deleteOfVideo(videoId: string): void {
    this.#sql.deleteOfVideo.run(videoId)
  }

  /**
   * Hands every pending row to the bus, oldest first; resolves to how many went. A refusal stops
   * the flush (order is kept) and is logged; the row stays for the next flush.
   */
  flush(): Promise<number> {
    // A flush that threw (the database) does not stop the ones after it.
    const next = this.#flushing.catch(() => 0).then(() => this.#flushOnce())
    this.#flushing = next
    return next
  }

  async #flushOnce(): Promise<number> {
    let sent = 0
    for (const row of this.#sql.pending.all() as OutboxRow[]) {
      try {
        await this.#bus.enqueue(row.kind, row.video_id, JSON.parse(row.payload) as Record<string, unknown>, {
          id: row.id,
        })
      } catch (err) {
        this.#log.error({ err, jobId: row.id, videoId: row.video_id }, 'the job bus refused a job; retried later')
        return sent
      }
      this.#sql.delete.run(row.id)
      sent++
    }
    return sent
  }

  /** Sends what a previous run left (a crash after a commit), then retries on a timer that never keeps the process up. */
  start(): Promise<number> {
    if (this.#timer !== null) return this.flush()
    this.#timer = setInterval(() => {
      this.flush().catch((err: unknown) => this.#log.error({ err }, 'job outbox flush failed'))
    }, this.#retryEveryMs)
    this.#timer.unref()
    return this.flush()
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#flushing.catch(() => 0)
  }
}
