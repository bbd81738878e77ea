// What every control-API route gets: the origin's services, and small request helpers.
import { VcdnError } from '../../../shared/errors/index.js'
import type { IncomingRequest } from '../../../shared/http/index.js'
import type { Job, JobBus } from '../../../shared/bus/index.js'
import type { Logger } from '../../../shared/log/index.js'
import type { Store } from '../../../shared/store/index.js'
import { authenticate, requireRole, type Principal, type Role } from '../auth.js'
import type { OriginConfig } from '../config.js'
import type { MetadataDb } from '../db.js'
import type { NodeFanout } from '../node-fanout.js'
import type { S3UploadManager } from '../s3-uploads.js'
import type { UploadManager } from '../uploads.js'
import type { VideoLifecycle } from '../videos.js'
import type { WebhookDispatcher } from '../webhooks.js'

export interface ApiDeps {
  config: OriginConfig
  /** Reads of the metadata; every video status change goes through `videos`. */
  meta: MetadataDb
  videos: VideoLifecycle
  /** The job bus, whichever it is: only the JobBus interface. */
  queue: JobBus
  /**
   * With the Kafka bus: records the lease of a job a transcoder took from Kafka
   * (`POST /v1/jobs/:id/lease`, ../kafka-jobs.ts). Absent with the embedded queue (claimed here).
   */
  leases?: { lease(jobId: string, workerId: string, leaseMs: number, attempt: number): Promise<Job | null> }
  store: Store
  uploads: UploadManager
  /** Direct-to-store (S3 multipart) uploads; null or absent when the store is not S3. */
  s3Uploads?: S3UploadManager | null
  /** Purge and prewarm on every registered shield and edge. */
  nodes: NodeFanout
  /** Webhook deliveries (their list). */
  webhooks: WebhookDispatcher
  log: Logger
  now: () => number
}

const MAX_JSON_BYTES = 256 * 1024

/** The caller, verified; 503 when the API has no JWT secret, 401/403 coded otherwise. */
export function principal(req: IncomingRequest, deps: ApiDeps, roles: readonly Role[]): Principal {
  if (deps.config.jwt.secret === '') throw new VcdnError('ERR_API_DISABLED')
  const p = authenticate(req.headers['authorization'], deps.config.jwt, deps.now())
  requireRole(p, roles)
  return p
}

/** A JSON object body (an empty body is `{}`); ERR_API_BODY / ERR_API_BODY_TOO_LARGE. */
export async function readJson(req: IncomingRequest): Promise<Record<string, unknown>> {
  const body = await req.readBody(MAX_JSON_BYTES)
  if (body === null) throw new VcdnError('ERR_API_BODY_TOO_LARGE')
  if (body.byteLength === 0) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    throw new VcdnError('ERR_API_BODY', 'not JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new VcdnError('ERR_API_BODY', 'not an object')
  return parsed as Record<string, unknown>
}

export function reqString(v: unknown, name: string, maxLength = 1024): string {
  if (typeof v !== 'string' || v.length > maxLength) throw new VcdnError('ERR_API_BODY', `${name} must be a string`)
  return v
}

export function optString(v: unknown, name: string, maxLength = 1024): string | undefined {
  return v === undefined || v === null ? undefined : reqString(v, name, maxLength)
}

export function reqNumber(v: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new VcdnError('ERR_API_BODY', `${name} must be a number in ${min}..${max}`)
  }
  return v
}

export function optNumber(v: unknown, name: string, min = -Infinity, max = Infinity): number | undefined {
  return v === undefined || v === null ? undefined : reqNumber(v, name, min, max)
}
