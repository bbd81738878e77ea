import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { JobBus } from '../../shared/bus/index.js'
import { isVcdnError } from '../../shared/errors/index.js'
import { createAdminServer, HttpServer, sendError, sendJson, type IncomingRequest } from '../../shared/http/index.js'
import type { Logger } from '../../shared/log/index.js'
import { redactPath } from '../../shared/log/index.js'
import { createMetrics } from '../../shared/metrics/index.js'
import { FsStore, isDirectStore, S3Store, type Store } from '../../shared/store/index.js'
import { buildApiRouter, TrackedResponse, tusOptionsHeaders } from './api/index.js'
import type { OriginConfig } from './config.js'
import { serveContent } from './content.js'
import { ControlPublisher } from './control-publisher.js'
import { MetadataDb, openDb } from './db.js'
import { SqliteJobQueue } from './job-queue.js'
import { KafkaJobLedger } from './kafka-jobs.js'
import { NodeFanout } from './node-fanout.js'
import { probeUpload } from './probe-upload.js'
import { S3UploadManager } from './s3-uploads.js'
import { UploadManager } from './uploads.js'
import { VideoLifecycle } from './videos.js'
import { WebhookDispatcher } from './webhooks.js'

export interface OriginDeps {
  log: Logger
  now?: () => number
  store?: Store
}

export interface RunningTier {
  port: number
  adminPort: number
}

export interface Origin {
  listen(): Promise<RunningTier>
  close(): Promise<void>
  /** Upload storage (its sweep is driven by the injected clock in tests). */
  readonly uploads: UploadManager
}

const originMetrics = {
  requests_total: { type: 'counter', help: 'content requests by status', labels: ['status'] },
  sent_bytes_total: { type: 'counter', help: 'content body bytes sent' },
  received_bytes_total: {
    type: 'counter',
    help: 'request body bytes the origin read (control API, tus uploads, worker outputs)',
  },
} as const

// Every control-API answer: CORS for browsers and Uppy (tus headers must be readable by scripts),
// and the tus protocol version (tus core §Tus-Resumable).
const API_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers':
    'Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Defer-Length, Upload-Expires, ' +
    'Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm',
  'tus-resumable': '1.0.0',
}

// CORS preflight (Fetch standard §3.2.3): no credentials needed, so it is answered for any path.
const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': 'GET, HEAD, POST, PATCH, PUT, DELETE, OPTIONS',
  'access-control-allow-headers':
    'Authorization, Content-Type, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Defer-Length, ' +
    'Upload-Checksum, Upload-Concat, Tus-Resumable, X-HTTP-Method-Override, X-Requested-With, Range',
  'access-control-max-age': '86400',
}

export function buildOrigin(config: OriginConfig, deps: OriginDeps): Origin {
  const log = deps.log
  const now = deps.now ?? Date.now
  const storeDir = config.store.dir !== '' ? config.store.dir : join(config.dataDir, 'store')
  mkdirSync(config.dataDir, { recursive: true })
  const s3Store = deps.store === undefined && config.store.kind === 's3' ? newS3Store(config) : null
  const store = deps.store ?? s3Store ?? new FsStore({ dir: storeDir })
  const metrics = createMetrics('vcdn_origin', originMetrics)
  let isReady = false

  const meta = new MetadataDb(openDb(join(config.dataDir, 'meta.db')))
  // The origin holds the bus as a JobBus only (docs/architecture.md §9): the embedded queue, or with
  // bus.kind kafka a producer whose job state stays in this database (./kafka-jobs.ts); the
  // transcoders then claim from Kafka and report each lease here.
  const kafkaJobs =
    config.bus.kind === 'kafka'
      ? new KafkaJobLedger({ db: meta.db, kafka: config.bus.kafka, now, ...config.jobs })
      : null
  const queue: JobBus =
    kafkaJobs ??
    new SqliteJobQueue({
      db: meta.db,
      now,
      ...config.jobs,
      onLeaseExhausted: (job) => {
        const error = job.lastError ?? { code: 'ERR_JOB_LEASE_EXPIRED', message: 'worker lost' }
        try {
          videos.failed(job.videoId, { code: error.code, message: error.message })
        } catch (err) {
          // ERR_VIDEO_STATE: the video moved on (its job was not the one it waits for); the job's
          // dead-letter entry stays, and the claim that noticed goes on.
          if (!isVcdnError(err) || err.code !== 'ERR_VIDEO_STATE') throw err
          log.warn({ err, jobId: job.id, videoId: job.videoId }, 'lease exhausted on a video that moved on')
        }
      },
    })
  const webhooks = new WebhookDispatcher({
    db: meta.db,
    endpoints: config.webhooks,
    log,
    now,
    ...config.webhookDelivery,
  })
  const videos = new VideoLifecycle({
    meta,
    bus: queue,
    log,
    now,
    split: config.transcode,
    // The event's data: the video as the API shows it, without signed URLs (they expire); the id
    // alone for a deleted video.
    onEvent: (type, v) =>
      webhooks.enqueue(
        type,
        type === 'video.deleted'
          ? { id: v.id }
          : {
              id: v.id,
              owner: v.owner,
              title: v.title,
              status: v.status,
              error: v.error,
              durationS: v.durationS,
              renditions: v.status === 'ready' ? meta.renditions(v.id) : [],
              createdAtMs: v.createdAtMs,
              updatedAtMs: v.updatedAtMs,
              readyAtMs: v.readyAtMs,
            },
      ),
  })
  // An upload is probed when it completes (a file path for tus, a presigned URL for S3 multipart).
  // A source that could be split has its frame count checked (a variable frame rate is transcoded
  // whole): a local file's by demuxing it, a URL's from what the container keeps, since demuxing it
  // would download the whole source (probe-upload.ts).
  const probe = config.upload.isProbed
    ? (pathOrUrl: string) =>
        probeUpload(
          pathOrUrl,
          {
            ...config.upload,
            countFramesAboveS: config.transcode.splitAboveS,
            isRemote: /^https?:/.test(pathOrUrl),
          },
          (detail) => log.warn(detail, 'upload probe: the tool reported a problem'),
        )
    : undefined
  // What both upload paths (tus, S3 multipart) share.
  const uploadDeps = {
    meta,
    videos,
    store,
    log,
    now,
    ttlMs: config.uploadTtlMs,
    maxBytes: config.maxUploadBytes,
    probe,
  }
  const uploads = new UploadManager({ dir: join(config.dataDir, 'uploads'), ...uploadDeps })
  // Control events over Kafka (docs/architecture.md §9): purges and prewarms go on a topic instead of to each node.
  const control = config.control.kind === 'kafka' ? new ControlPublisher({ kafka: config.control.kafka, log }) : null
  // Direct-to-store uploads exist only with a store that presigns (S3).
  const s3Uploads = isDirectStore(store) ? new S3UploadManager({ ...uploadDeps, store }) : null
  const nodes = new NodeFanout({
    control,
    meta,
    staticNodes: config.nodes,
    tierSecret: config.tierSecret,
    timeoutMs: config.purgeTimeoutMs,
    prewarmTimeoutMs: config.prewarmTimeoutMs,
    now,
    log,
  })
  const api = buildApiRouter({
    config,
    meta,
    videos,
    queue,
    ...(kafkaJobs !== null ? { leases: kafkaJobs } : {}),
    store,
    uploads,
    s3Uploads,
    nodes,
    webhooks,
    log,
    now,
  })
  const onApiError = (err: unknown): void => log.error({ err }, 'control API handler failed')

  const server = new HttpServer({
    host: config.listen.host,
    port: config.listen.port,
    sendTimeoutS: config.sendTimeoutS,
    onHandlerError: (err) => log.error({ err }, 'handler failed'),
    handler: async (req, res) => {
      const startedMs = performance.now()
      if (req.path === '/healthz') {
        sendJson(res, 200, { ok: true })
        return
      }
      let result = { status: 404, bytes: 0 }
      if (req.path.startsWith('/v/')) result = await serveContent(req, res, store, config)
      else if (req.path.startsWith('/v1/')) {
        const tracked = new TrackedResponse(res, API_HEADERS)
        if (req.method === 'OPTIONS') {
          tracked.start(204, { ...PREFLIGHT_HEADERS, ...tusOptionsHeaders(config.maxUploadBytes) })
          tracked.end()
        } else if (
          !(await api.handle(
            countingBody(req, (n) => metrics.m.received_bytes_total.inc(n)),
            tracked,
            onApiError,
          ))
        ) {
          sendError(tracked, 'ERR_NOT_FOUND')
        }
        result = { status: tracked.status, bytes: 0 }
      } else sendError(res, 'ERR_NOT_FOUND')
      metrics.m.requests_total.inc({ status: result.status })
      metrics.m.sent_bytes_total.inc(result.bytes)
      if (config.accessLog) {
        log.info(
          {
            access: true,
            method: req.method,
            key: redactPath(req.path),
            status: result.status,
            bytes: result.bytes,
            ms: Math.round((performance.now() - startedMs) * 10) / 10,
          },
          'access',
        )
      }
    },
  })
  const admin = createAdminServer({
    host: config.admin.host,
    port: config.admin.port,
    tierSecret: config.tierSecret,
    metricsText: () => metrics.text(),
    metricsContentType: metrics.contentType,
    isReady: () => isReady,
  })

  return {
    async listen() {
      // Wrong credentials, a missing bucket or an unreachable S3 server stop the start with a
      // coded error (ERR_STORE_AUTH / _BUCKET / _UNAVAILABLE) rather than failing every request.
      if (s3Store !== null) await s3Store.check()
      // Kafka that does not answer stops the start with ERR_JOB_BUS_UNAVAILABLE, like the store.
      await kafkaJobs?.connect()
      await videos.start()
      webhooks.start()
      await uploads.init()
      uploads.startSweeper()
      control?.start()
      s3Uploads?.startSweeper()
      const port = await server.listen()
      const adminPort = await admin.listen()
      isReady = true
      return { port, adminPort }
    },
    async close() {
      isReady = false
      await server.drain(config.drainTimeoutMs)
      await admin.drain(0)
      await uploads.close()
      await s3Uploads?.close()
      await videos.close()
      await webhooks.close()
      await kafkaJobs?.close()
      await control?.close()
      meta.close()
      s3Store?.close()
    },
    uploads,
  }
}

/**
 * The request with its body counted as it is read (received_bytes_total): what shows that direct
 * uploads and outputs do not cross the origin. The request's own getters run on the request.
 */
function countingBody(req: IncomingRequest, count: (bytes: number) => void): IncomingRequest {
  const body: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      for await (const chunk of req.body) {
        count(chunk.byteLength)
        yield chunk
      }
    },
  }
  return new Proxy(req, {
    get(target, prop) {
      if (prop === 'body') return body
      if (prop === 'readBody') {
        return async (maxBytes: number): Promise<Buffer | null> => {
          const got = await target.readBody(maxBytes)
          count(got === null ? maxBytes : got.byteLength)
          return got
        }
      }
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
}

function newS3Store(config: OriginConfig): S3Store {
  const { endpoint, ...s3 } = config.store.s3
  return new S3Store({ ...s3, ...(endpoint !== '' ? { endpoint } : {}) })
}
