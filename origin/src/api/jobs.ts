// Worker endpoints of the job bus (docs/architecture.md §7.3, §8): transcoders claim jobs,
// heartbeat, download the source, upload outputs into the store and report completion or failure.
// The bodies are the worker wire protocol of shared/bus (wire.ts), parsed there; every video status
// change is asked of VideoLifecycle (../videos.ts).
// Bearer JWT with role `worker` (or admin). Source and output access require holding the job's
// lease, and a lease belongs to the credential that claimed it (see leaseHolder).
import {
  parseClaimRequest,
  parseDirectRequest,
  parseFailRequest,
  parseHeartbeatRequest,
  parseJobResult,
  parseLeaseRequest,
  parseWorkerId,
  type ClaimedJob,
  type ClaimResponse,
  type DirectResponse,
  type HeartbeatResponse,
  type Job,
  type LeaseResponse,
} from '../../../shared/bus/index.js'
import { ERRORS, isVcdnError, VcdnError } from '../../../shared/errors/index.js'
import { contentRange, parseRange, pipeToSink, sendError, sendJson } from '../../../shared/http/index.js'
import { videoDir, videoStorePrefix } from '../../../shared/namespace/index.js'
import { isDirectStore, validateStoreKey } from '../../../shared/store/index.js'
import { sourceKey } from '../uploads.js'
import { AUDIO_PART, isSplitPart, JOB_KIND_AUDIO, JOB_KIND_STITCH, workStorePrefix } from '../split-plan.js'
import type { Principal } from '../auth.js'
import { principal, readJson, type ApiDeps } from './context.js'
import type { Router } from './router.js'

const WORKER_ROLES = ['worker', 'admin'] as const
/**
 * Lifetime of a presigned source or output request: it is asked for right before use, and S3
 * checks the expiry when a request starts, so a long transfer that started in time finishes.
 */
const DIRECT_TTL_S = 900

/**
 * Who holds a lease: the authenticated worker (JWT `sub`) and the `workerId` it names. A workerId
 * alone is a label any worker token could quote; binding the credential means another token
 * that names the same workerId cannot download the source, write outputs or finish the job.
 * workerId has no '/', so the last '/' separates the two parts unambiguously.
 */
function leaseHolder(p: Principal, workerId: string): string {
  return `${p.sub}/${workerId}`
}

export function jobRoutes(router: Router, deps: ApiDeps): void {
  /** The job, if `holder` holds its lease (ERR_JOB_NOT_FOUND / ERR_JOB_LEASE_LOST otherwise). */
  const held = async (jobId: string | undefined, holder: string): Promise<Job> => {
    const job = jobId === undefined ? null : await deps.queue.get(jobId)
    if (job === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (job.status !== 'leased' || job.workerId !== holder) throw new VcdnError('ERR_JOB_LEASE_LOST')
    return job
  }

  router.add('POST', '/v1/jobs/claim', async ({ req, res }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const claim = parseClaimRequest(await readJson(req))
    const workerId = leaseHolder(p, claim.workerId)
    for (;;) {
      const job = await deps.queue.claim(workerId, claim.leaseMs)
      if (job === null) {
        sendJson(res, 200, { job: null } satisfies ClaimResponse)
        return
      }
      if (!deps.videos.claimed(job.videoId, splitClaimOf(job, claim.workerId))) {
        // The video was deleted after the job was queued: nothing to do, retire the job.
        await deps.queue.complete(job.id, workerId, { isCancelled: true })
        continue
      }
      sendJson(res, 200, { job: claimedView(job) } satisfies ClaimResponse)
      return
    }
  })

  // Bus kind kafka: a transcoder took the job from Kafka; the lease is recorded here so the routes
  // below admit it, and the video moves to processing (../kafka-jobs.ts).
  router.add('POST', '/v1/jobs/:id/lease', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    if (deps.leases === undefined) throw new VcdnError('ERR_NOT_FOUND')
    const body = parseLeaseRequest(await readJson(req))
    const workerId = leaseHolder(p, body.workerId)
    const job = await deps.leases.lease(params['id'] as string, workerId, body.leaseMs, body.attempt)
    if (job === null) {
      sendJson(res, 200, { job: null } satisfies LeaseResponse)
      return
    }
    if (!deps.videos.claimed(job.videoId, splitClaimOf(job, body.workerId))) {
      // The video was deleted (or failed) after the job was queued: nothing to run.
      await deps.queue.complete(job.id, workerId, { isCancelled: true })
      sendJson(res, 200, { job: null } satisfies LeaseResponse)
      return
    }
    sendJson(res, 200, { job: claimedView(job) } satisfies LeaseResponse)
  })

  router.add('POST', '/v1/jobs/:id/heartbeat', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const beat = parseHeartbeatRequest(await readJson(req))
    const workerId = leaseHolder(p, beat.workerId)
    const jobId = params['id'] as string
    if (!(await deps.queue.heartbeat(jobId, workerId, beat.leaseMs, beat.progress))) {
      if ((await deps.queue.get(jobId)) === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
      throw new VcdnError('ERR_JOB_LEASE_LOST')
    }
    const job = await deps.queue.get(jobId)
    // A split video's progress counts chunks (set as each completes); the stitch reports the rest.
    if (job?.kind === JOB_KIND_STITCH) deps.videos.stitchProgress(job.videoId, beat.progress)
    else if (job !== null && !isSplitPart(job.kind)) deps.videos.progress(job.videoId, beat.progress)
    sendJson(res, 200, { ok: true, leaseUntilMs: job?.leaseUntilMs ?? null } satisfies HeartbeatResponse)
  })

  router.add('GET', '/v1/jobs/:id/source', async ({ req, res, params, query }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const job = await held(params['id'], leaseHolder(p, parseWorkerId(query.get('workerId') ?? undefined)))
    const key = sourceKey(job.videoId)
    const info = await deps.store.head(key)
    if (info === null) throw new VcdnError('ERR_NOT_FOUND')
    // RFC 9110 §14: a single byte range lets a worker resume a cut download.
    const range = parseRange(req.headers['range'], info.size)
    if (range.kind === 'unsatisfiable') {
      sendError(res, 'ERR_REQUEST_RANGE', { 'content-range': `bytes */${info.size}` })
      return
    }
    const isPartial = range.kind === 'range'
    const got = await deps.store.get(key, isPartial ? { start: range.start, end: range.end } : undefined)
    if (got === null) throw new VcdnError('ERR_NOT_FOUND')
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      etag: info.etag,
      'accept-ranges': 'bytes',
      'cache-control': 'no-store',
    }
    if (isPartial) headers['content-range'] = contentRange(range.start, range.end, info.size)
    await sendStored(res, got.body, isPartial ? 206 : 200, headers, isPartial ? range.end - range.start + 1 : info.size)
  })

  // The stitch job reads the chunk and audio outputs of its video (split-and-stitch, docs/architecture.md §8).
  router.add('GET', '/v1/jobs/:id/work/*key', async ({ req, res, params, query }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const job = await held(params['id'], leaseHolder(p, parseWorkerId(query.get('workerId') ?? undefined)))
    const key = params['key'] as string
    try {
      validateStoreKey(key)
    } catch {
      throw new VcdnError('ERR_JOB_OUTPUT_KEY')
    }
    if (job.kind !== JOB_KIND_STITCH || !key.startsWith(workStorePrefix(job.videoId)))
      throw new VcdnError('ERR_JOB_OUTPUT_KEY')
    const got = await deps.store.get(key)
    if (got === null) throw new VcdnError('ERR_NOT_FOUND')
    const headers = { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' }
    await sendStored(res, got.body, 200, headers, got.info.size)
  })

  router.add('PUT', '/v1/jobs/:id/outputs/*key', async ({ req, res, params, query }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const job = await held(params['id'], leaseHolder(p, parseWorkerId(query.get('workerId') ?? undefined)))
    const key = outputKey(params['key'] as string, job)
    // Streamed into the store (atomic rename at the end): a cut upload leaves nothing behind.
    const info = await deps.store.put(key, req.body)
    // The video may have been deleted while the bytes streamed in, after its prefix was emptied:
    // a late object would outlive it. Deleting the row comes before emptying the prefix, so
    // either that sweep saw this object or this check sees the row gone.
    if (deps.meta.getVideo(job.videoId) === null) {
      await deps.store.delete(key)
      throw new VcdnError('ERR_JOB_NOT_FOUND')
    }
    sendJson(res, 201, { key: info.key, size: info.size, etag: info.etag })
  })

  // The direct variant of the two routes above (wire.ts DirectRequest): with an S3 store the origin
  // answers a presigned request and the bytes go between worker and bucket without crossing it.
  router.add('POST', '/v1/jobs/:id/direct', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const direct = parseDirectRequest(await readJson(req))
    const job = await held(params['id'], leaseHolder(p, direct.workerId))
    const store = deps.store
    if (!isDirectStore(store)) throw new VcdnError('ERR_STORE_NOT_DIRECT')
    let request: DirectResponse['request']
    if (direct.source === true) {
      const key = sourceKey(job.videoId)
      if ((await store.head(key)) === null) throw new VcdnError('ERR_NOT_FOUND')
      request = await store.presignGet(key, { expiresInS: DIRECT_TTL_S })
    } else {
      const output = direct.output as { key: string; contentType: string }
      const key = outputKey(output.key, job)
      try {
        request = await store.presignPut(key, { expiresInS: DIRECT_TTL_S, contentType: output.contentType })
      } catch (err) {
        if (err instanceof TypeError) throw new VcdnError('ERR_API_BODY', 'output.contentType is not a media type')
        throw err
      }
    }
    sendJson(res, 200, { request } satisfies DirectResponse)
  })

  router.add('POST', '/v1/jobs/:id/complete', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const body = await readJson(req)
    const workerId = leaseHolder(p, parseWorkerId(body['workerId']))
    const jobId = params['id'] as string
    const before = await deps.queue.get(jobId)
    if (before === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (before.status === 'done') {
      // Idempotent for the holder that completed it; anyone else learns nothing more.
      if (before.workerId !== workerId) throw new VcdnError('ERR_JOB_LEASE_LOST')
      // A crash between settling the job and marking the video ready (below) left the video
      // processing: the worker's repeated completion finishes it (§7.3).
      if (isSplitPart(before.kind)) await deps.videos.chunkCompleted(before.videoId, partIndex(before))
      else if (deps.videos.get(before.videoId)?.status === 'processing') {
        deps.videos.completed(before.videoId, parseJobResult(before.result))
      }
      sendJson(res, 200, { ok: true, job: { id: before.id, status: before.status } }) // idempotent
      return
    }
    const result = parseJobResult(body['result'])
    if (isSplitPart(before.kind)) {
      // One chunk or the audio of a split video: recorded; the last part queues the stitch. No
      // status change.
      await deps.queue.complete(jobId, workerId, result)
      await deps.videos.chunkCompleted(before.videoId, partIndex(before))
      sendJson(res, 200, { ok: true, job: { id: jobId, status: 'done' }, purge: null })
      return
    }
    const video = deps.videos.get(before.videoId)
    const isReprocess = video !== null && video.readyAtMs !== null
    // The bus settles the job first (ERR_JOB_LEASE_LOST leaves the video as it is), then the video
    // becomes ready; a crash in between leaves it processing with its job done (§7.3).
    await deps.queue.complete(jobId, workerId, result)
    deps.videos.completed(before.videoId, result)
    // The chunks are published inside the stitched outputs now (idempotent: none left is fine).
    if (before.kind === JOB_KIND_STITCH) await deps.store.deletePrefix(workStorePrefix(before.videoId))
    // docs/architecture.md §2: VOD playlists are cacheable; a reprocessed video's must not be
    // served stale.
    const purge = isReprocess ? await deps.nodes.purge({ prefix: videoDir(before.videoId) }) : null
    sendJson(res, 200, {
      ok: true,
      job: { id: jobId, status: 'done' },
      purge: purge === null ? null : { nodes: purge },
    })
  })

  router.add('POST', '/v1/jobs/:id/fail', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const failure = parseFailRequest(await readJson(req))
    const workerId = leaseHolder(p, failure.workerId)
    const error = failure.error
    const job = await deps.queue.fail(params['id'] as string, workerId, error)
    // The worker's message is for operators (ffmpeg's stderr, its file paths and host): it stays in
    // the job's dead-letter entry and this log line. The creator reads the code and its public
    // message only.
    deps.log.warn(
      { jobId: job.id, videoId: job.videoId, attempt: job.attempt, status: job.status, error },
      'job failed',
    )
    const shown = publicJobError(error.code)
    // The parts of a split video fail independently: the video moves when its status allows it
    // (one part waiting out a retry already made it queued; one dead-lettered part failed it).
    const status = isSplitPart(job.kind) ? deps.videos.get(job.videoId)?.status : 'processing'
    if (job.status === 'failed') {
      if (status === 'processing' || status === 'queued') deps.videos.failed(job.videoId, shown)
    } else if (status === 'processing') deps.videos.retrying(job.videoId, shown)
    sendJson(res, 200, {
      ok: true,
      job: { id: job.id, status: job.status, attempt: job.attempt, runAfterMs: job.runAfterMs },
    })
  })

  router.add('GET', '/v1/jobs/dead-letters', async ({ req, res }) => {
    principal(req, deps, ['admin'])
    sendJson(res, 200, { jobs: await deps.queue.deadLetters() })
  })
}

/**
 * A store object's body to a worker: the store stream is destroyed when the worker leaves, and a
 * coded store failure mid-body aborts the response (its head is already sent).
 */
async function sendStored(
  res: Parameters<typeof pipeToSink>[1],
  body: unknown,
  status: number,
  headers: Record<string, string>,
  length: number,
): Promise<void> {
  res.onAbort(() => (body as NodeJS.ReadableStream & { destroy(): void }).destroy())
  res.start(status, headers, length)
  try {
    await pipeToSink(body as AsyncIterable<Uint8Array>, res)
    res.end()
  } catch (err) {
    res.abort()
    if (!isVcdnError(err)) throw err
  }
}

/** What a claim of a split video's job records (processing.chunks and .audio, docs/architecture.md §8). */
function splitClaimOf(job: Job, workerId: string): { index: number; workerId: string } | 'stitch' | undefined {
  if (isSplitPart(job.kind)) return { index: partIndex(job), workerId }
  return job.kind === JOB_KIND_STITCH ? 'stitch' : undefined
}

/** A job as the worker that now holds it is told of it. */
function claimedView(job: Job): ClaimedJob {
  return {
    id: job.id,
    kind: job.kind,
    videoId: job.videoId,
    attempt: job.attempt,
    leaseUntilMs: job.leaseUntilMs,
    payload: job.payload,
  }
}

/**
 * The part of a split video a job is: AUDIO_PART for the audio job, else the chunk index of a
 * `transcode.chunk` job (written by VideoLifecycle, so always a number).
 */
function partIndex(job: Pick<Job, 'kind' | 'payload'>): number {
  if (job.kind === JOB_KIND_AUDIO) return AUDIO_PART
  const index = job.payload['index']
  if (typeof index !== 'number') throw new VcdnError('ERR_INTERNAL', 'chunk job without an index')
  return index
}

/**
 * An output key must be a valid store key under the job's video (ERR_JOB_OUTPUT_KEY): a chunk or
 * audio job writes under the video's work prefix (never served); every other job publishes under
 * v/<videoId>/.
 */
function outputKey(key: string, job: Job): string {
  try {
    validateStoreKey(key)
  } catch {
    throw new VcdnError('ERR_JOB_OUTPUT_KEY')
  }
  const prefix = isSplitPart(job.kind) ? workStorePrefix(job.videoId) : videoStorePrefix(job.videoId)
  if (!key.startsWith(prefix)) throw new VcdnError('ERR_JOB_OUTPUT_KEY')
  return key
}

const CODE_RE = /^ERR_[A-Z0-9_]{1,100}$/
const GENERIC_FAILURE = 'video processing failed'

/** What a video's creator sees of a worker's error: a code and a message with nothing of the worker. */
function publicJobError(code: string): { code: string; message: string } {
  if (!CODE_RE.test(code)) return { code: 'ERR_INTERNAL', message: GENERIC_FAILURE }
  const registered = (ERRORS as Record<string, { message: string } | undefined>)[code]
  return { code, message: registered?.message ?? GENERIC_FAILURE }
}
