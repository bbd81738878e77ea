// Webhooks for creators' back ends (docs/architecture.md §7.5, Mux-style): `video.ready`,
// `video.failed` and `video.deleted` are POSTed as JSON to every configured URL, signed with
// HMAC-SHA256 over "<unix seconds>.<raw body>". Each delivery is a row in the origin's SQLite
// (written in the lifecycle's transaction, so the event and the status change commit together and
// survive a restart), sent by a bounded loop (a timer, at most `batchSize` in flight), each
// attempt with a timeout, retried with exponential backoff up to `maxAttempts`. A 2xx is success.
// Nothing a receiver does (slow, 5xx, reset, a huge body: its body is never read) blocks the API.
// This class owns the webhook_deliveries rows.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Database } from 'better-sqlite3'
import type { Logger } from '../../shared/log/index.js'
import type { OriginConfig, WebhookEndpoint } from './config.js'

export type WebhookEventType = 'video.ready' | 'video.failed' | 'video.deleted'

export const SIGNATURE_HEADER = 'vcdn-signature'

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. */
export function signWebhook(secret: string, body: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000)
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`
}

/**
 * What a receiver does: recompute the HMAC over the raw body, compare in constant time, and refuse
 * a timestamp further than `toleranceS` from its clock (a replayed old delivery).
 */
export function verifyWebhook(
  secret: string,
  header: string | undefined,
  body: string,
  nowMs: number,
  toleranceS = 300,
): boolean {
  if (header === undefined) return false
  const parts = new Map<string, string>()
  for (const p of header.split(',')) {
    const i = p.indexOf('=')
    if (i > 0) parts.set(p.slice(0, i).trim(), p.slice(i + 1).trim())
  }
  const t = Number(parts.get('t'))
  const v1 = parts.get('v1') ?? ''
  if (!Number.isSafeInteger(t) || Math.abs(nowMs / 1000 - t) > toleranceS) return false
  const want = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'))
  const got = Buffer.from(v1)
  return got.length === want.length && timingSafeEqual(got, want)
}

export interface DeliveryView {
  id: number
  eventId: string
  type: string
  url: string
  status: 'pending' | 'delivered' | 'failed'
  attempts: number
  lastStatus: number | null
  lastError: string | null
  nextAttemptAtMs: number | null
  createdAtMs: number
  updatedAtMs: number
}

export interface WebhookDispatcherOptions extends Readonly<OriginConfig['webhookDelivery']> {
  db: Database
  endpoints: readonly WebhookEndpoint[]
  log: Logger
  now: () => number
}

interface Row {
  id: number
  event_id: string
  type: string
  url: string
  body: string
  status: DeliveryView['status']
  attempts: number
  last_status: number | null
  last_error: string | null
  next_at: number | null
  created_at: number
  updated_at: number
}

export class WebhookDispatcher {
  readonly #o: WebhookDispatcherOptions
  readonly #inFlight = new Map<number, Promise<void>>()
  readonly #abort = new AbortController()
  #timer: NodeJS.Timeout | null = null
  readonly #insert
  readonly #due
  readonly #done
  readonly #list

  constructor(opts: WebhookDispatcherOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('WebhookDispatcher: options must be an object')
    for (const k of ['db', 'endpoints', 'log', 'now'] as const) {
      if (opts[k] === undefined || opts[k] === null) throw new TypeError(`WebhookDispatcher: options.${k} is required`)
    }
    for (const k of [
      'maxAttempts',
      'backoffBaseMs',
      'backoffMaxMs',
      'timeoutMs',
      'pollEveryMs',
      'batchSize',
    ] as const) {
      if (!Number.isInteger(opts[k]) || opts[k] < 1)
        throw new TypeError(`WebhookDispatcher: options.${k} must be a positive integer`)
    }
    this.#o = opts
    this.#insert = opts.db.prepare(
      `INSERT INTO webhook_deliveries (event_id, type, url, body, status, attempts, next_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
    )
    this.#due = opts.db.prepare(
      `SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`,
    )
    this.#done = opts.db.prepare(
      `UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, next_at = ?,
       updated_at = ? WHERE id = ?`,
    )
    this.#list = opts.db.prepare(`SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT ?`)
  }

  /** One delivery per endpoint; called inside the lifecycle's transaction. No endpoints, no rows. */
  enqueue(type: WebhookEventType, data: Record<string, unknown>): void {
    if (this.#o.endpoints.length === 0) return
    const nowMs = this.#o.now()
    const eventId = randomUUID()
    const body = JSON.stringify({ id: eventId, type, createdAtMs: nowMs, data })
    for (const e of this.#o.endpoints) this.#insert.run(eventId, type, e.url, body, nowMs, nowMs, nowMs)
    // Sent on the next turn, after the transaction has committed.
    setImmediate(() => this.#tick())
  }

  start(): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => this.#tick(), this.#o.pollEveryMs)
    this.#timer.unref()
    this.#tick()
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#abort.abort()
    await Promise.allSettled([...this.#inFlight.values()])
  }

  /** The most recent deliveries, newest first. */
  list(limit: number): DeliveryView[] {
    return (this.#list.all(limit) as Row[]).map((r) => ({
      id: r.id,
      eventId: r.event_id,
      type: r.type,
      url: r.url,
      status: r.status,
      attempts: r.attempts,
      lastStatus: r.last_status,
      lastError: r.last_error,
      nextAttemptAtMs: r.status === 'pending' ? r.next_at : null,
      createdAtMs: r.created_at,
      updatedAtMs: r.updated_at,
    }))
  }

  #tick(): void {
    if (this.#abort.signal.aborted) return
    const room = this.#o.batchSize - this.#inFlight.size
    if (room <= 0) return
    const rows = this.#due.all(this.#o.now(), room + this.#inFlight.size) as Row[]
    for (const row of rows) {
      if (this.#inFlight.has(row.id) || this.#inFlight.size >= this.#o.batchSize) continue
      const p = this.#attempt(row)
        .catch((err: unknown) => this.#o.log.error({ err, deliveryId: row.id }, 'webhook attempt failed'))
        .finally(() => this.#inFlight.delete(row.id))
      this.#inFlight.set(row.id, p)
    }
  }

  async #attempt(row: Row): Promise<void> {
    const endpoint = this.#o.endpoints.find((e) => e.url === row.url)
    const attempts = row.attempts + 1
    let status = 0
    let error: string | null = null
    if (endpoint === undefined) {
      // The URL was removed from the config since the event: nobody to sign for.
      this.#done.run('failed', row.attempts, null, 'endpoint no longer configured', null, this.#o.now(), row.id)
      return
    }
    try {
      const res = await fetch(row.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signWebhook(endpoint.secret, row.body, this.#o.now()),
        },
        body: row.body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.#o.timeoutMs), this.#abort.signal]),
      })
      status = res.status
      // The receiver's body is never read: a huge or endless answer costs nothing.
      await res.body?.cancel().catch(() => undefined)
      if (status < 200 || status > 299) error = `status ${status}`
    } catch (err) {
      if (this.#abort.signal.aborted) return // closing: the row stays pending for the next start
      error = (err as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable'
    }
    const nowMs = this.#o.now()
    if (error === null) {
      this.#done.run('delivered', attempts, status, null, null, nowMs, row.id)
      return
    }
    const isLast = attempts >= this.#o.maxAttempts
    const delayMs = Math.min(this.#o.backoffBaseMs * 2 ** (attempts - 1), this.#o.backoffMaxMs)
    this.#done.run(
      isLast ? 'failed' : 'pending',
      attempts,
      status || null,
      error,
      isLast ? null : nowMs + delayMs,
      nowMs,
      row.id,
    )
    if (isLast) this.#o.log.warn({ deliveryId: row.id, url: row.url, error }, 'webhook delivery gave up')
  }
}
