// Worker endpoints of the embedded job bus (docs/architecture.md §7.3, §8): transcoders claim jobs,
// heartbeat, download the source, upload outputs into the store and report completion or failure.
// Bearer JWT with role `worker` (or admin). Source and output access require holding the job's
// lease, and a lease belongs to the credential that claimed it (see leaseHolder).
import type { Job } from '../../../shared/bus/index.js'
import { ERRORS, isVcdnError, VcdnError } from '../../../shared/errors/index.js'
import { contentRange, parseRange, pipeToSink, sendError, sendJson } from '../../../shared/http/index.js'
import { videoDir, videoStorePrefix } from '../../../shared/namespace/index.js'
import { validateStoreKey } from '../../../shared/store/index.js'
import type { Rendition, Thumbnails } from '../db.js'
import { sourceKey } from '../uploads.js'
import type { Principal } from '../auth.js'
import { optNumber, optString, principal, readJson, reqNumber, reqString, type ApiDeps } from './context.js'
import type { Router } from './router.js'

const WORKER_ROLES = ['worker', 'admin'] as const
const MIN_LEASE_MS = 1000
const MAX_LEASE_MS = 3_600_000
const WORKER_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/

function workerIdOf(v: unknown): string {
  if (typeof v !== 'string' || !WORKER_ID_RE.test(v))
    throw new VcdnError('ERR_API_BODY', 'workerId must match [A-Za-z0-9._:-]{1,128}')
  return v
}

/**
 * Who holds a lease: the authenticated worker (JWT `sub`) and the `workerId` it names. A workerId
 * alone is a label any worker token could quote; binding the credential means another token
 * that names the same workerId cannot download the source, write outputs or finish the job.
 * workerId has no '/', so the last '/' separates the two parts unambiguously.
 */
function leaseHolder(p: Principal, workerId: unknown): string {
  return `${p.sub}/${workerIdOf(workerId)}`
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
    const body = await readJson(req)
    const workerId = leaseHolder(p, body['workerId'])
    const leaseMs = Math.round(reqNumber(body['leaseMs'] ?? 30_000, 'leaseMs', MIN_LEASE_MS, MAX_LEASE_MS))
    for (;;) {
      const job = await deps.queue.claim(workerId, leaseMs)
      if (job === null) {
        sendJson(res, 200, { job: null })
        return
      }
      if (deps.meta.getVideo(job.videoId) === null) {
        // The video was deleted after the job was queued: nothing to do, retire the job.
        deps.queue.completeSync(job.id, workerId, { isCancelled: true })
        continue
      }
      deps.meta.setStatus(job.videoId, 'processing', deps.now(), { progress: 0, error: null })
      sendJson(res, 200, {
        job: {
          id: job.id,
          kind: job.kind,
          videoId: job.videoId,
          attempt: job.attempt,
          leaseUntilMs: job.leaseUntilMs,
          payload: job.payload,
        },
      })
      return
    }
  })

  router.add('POST', '/v1/jobs/:id/heartbeat', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const body = await readJson(req)
    const workerId = leaseHolder(p, body['workerId'])
    const leaseMs = Math.round(reqNumber(body['leaseMs'] ?? 30_000, 'leaseMs', MIN_LEASE_MS, MAX_LEASE_MS))
    const progress = optNumber(body['progress'], 'progress', 0, 1) ?? 0
    const jobId = params['id'] as string
    if (!(await deps.queue.heartbeat(jobId, workerId, leaseMs, progress))) {
      if ((await deps.queue.get(jobId)) === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
      throw new VcdnError('ERR_JOB_LEASE_LOST')
    }
    const job = await deps.queue.get(jobId)
    if (job !== null) deps.meta.setProgress(job.videoId, progress, deps.now())
    sendJson(res, 200, { ok: true, leaseUntilMs: job?.leaseUntilMs ?? null })
  })

  router.add('GET', '/v1/jobs/:id/source', async ({ req, res, params, query }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const job = await held(params['id'], leaseHolder(p, query.get('workerId') ?? undefined))
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
    res.onAbort(() => (got.body as NodeJS.ReadableStream & { destroy(): void }).destroy())
    res.start(isPartial ? 206 : 200, headers, isPartial ? range.end - range.start + 1 : info.size)
    try {
      await pipeToSink(got.body as AsyncIterable<Uint8Array>, res)
      res.end()
    } catch (err) {
      res.abort()
      if (!isVcdnError(err)) throw err
    }
  })

  router.add('PUT', '/v1/jobs/:id/outputs/*key', async ({ req, res, params, query }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const job = await held(params['id'], leaseHolder(p, query.get('workerId') ?? undefined))
    const key = params['key'] as string
    try {
      validateStoreKey(key)
    } catch {
      throw new VcdnError('ERR_JOB_OUTPUT_KEY')
    }
    if (!key.startsWith(videoStorePrefix(job.videoId))) throw new VcdnError('ERR_JOB_OUTPUT_KEY')
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

  router.add('POST', '/v1/jobs/:id/complete', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const body = await readJson(req)
    const workerId = leaseHolder(p, body['workerId'])
    const jobId = params['id'] as string
    const before = await deps.queue.get(jobId)
    if (before === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (before.status === 'done') {
      // Idempotent for the holder that completed it; anyone else learns nothing more.
      if (before.workerId !== workerId) throw new VcdnError('ERR_JOB_LEASE_LOST')
      sendJson(res, 200, { ok: true, job: { id: before.id, status: before.status } }) // idempotent
      return
    }
    const result = parseResult(body['result'])
    const video = deps.meta.getVideo(before.videoId)
    const isReprocess = video !== null && video.readyAtMs !== null
    deps.meta.db.transaction(() => {
      deps.queue.completeSync(jobId, workerId, result)
      if (deps.meta.getVideo(before.videoId) !== null) deps.meta.markReady(before.videoId, result, deps.now())
    })()
    // docs/architecture.md §2: VOD playlists are cacheable; a reprocessed video's must not be
    // served stale.
    const purge = isReprocess ? await deps.purger.purge(videoDir(before.videoId)) : null
    sendJson(res, 200, {
      ok: true,
      job: { id: jobId, status: 'done' },
      purge: purge === null ? null : { nodes: purge },
    })
  })

  router.add('POST', '/v1/jobs/:id/fail', async ({ req, res, params }) => {
    const p = principal(req, deps, WORKER_ROLES)
    const body = await readJson(req)
    const workerId = leaseHolder(p, body['workerId'])
    const e = body['error']
    if (typeof e !== 'object' || e === null) throw new VcdnError('ERR_API_BODY', 'error must be an object')
    const err = e as Record<string, unknown>
    const error = {
      code: reqString(err['code'], 'error.code', 128),
      message: reqString(err['message'] ?? '', 'error.message', 2000),
      isRetryable: err['isRetryable'] === true,
    }
    const job = await deps.queue.fail(params['id'] as string, workerId, error)
    const now = deps.now()
    // The worker's message is for operators (ffmpeg's stderr, its file paths and host): it stays in
    // the job's dead-letter entry and this log line. The creator reads the code and its public
    // message only.
    deps.log.warn(
      { jobId: job.id, videoId: job.videoId, attempt: job.attempt, status: job.status, error },
      'job failed',
    )
    const shown = publicJobError(error.code)
    if (job.status === 'failed') deps.meta.setStatus(job.videoId, 'failed', now, { error: shown })
    else deps.meta.setStatus(job.videoId, 'queued', now, { progress: 0, error: shown })
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

const CODE_RE = /^ERR_[A-Z0-9_]{1,100}$/
const GENERIC_FAILURE = 'video processing failed'

/** What a video's creator sees of a worker's error: a code and a message with nothing of the worker. */
function publicJobError(code: string): { code: string; message: string } {
  if (!CODE_RE.test(code)) return { code: 'ERR_INTERNAL', message: GENERIC_FAILURE }
  const registered = (ERRORS as Record<string, { message: string } | undefined>)[code]
  return { code, message: registered?.message ?? GENERIC_FAILURE }
}

function parseResult(raw: unknown): {
  durationS: number | null
  renditions: Rendition[]
  thumbnails: Thumbnails | null
} {
  if (typeof raw !== 'object' || raw === null) throw new VcdnError('ERR_API_BODY', 'result must be an object')
  const r = raw as Record<string, unknown>
  const durationS = optNumber(r['durationS'], 'result.durationS', 0) ?? null
  if (!Array.isArray(r['renditions'])) throw new VcdnError('ERR_API_BODY', 'result.renditions must be an array')
  const renditions = (r['renditions'] as unknown[]).map((x, i): Rendition => {
    if (typeof x !== 'object' || x === null)
      throw new VcdnError('ERR_API_BODY', `result.renditions[${i}] must be an object`)
    const o = x as Record<string, unknown>
    const name = reqString(o['name'], `result.renditions[${i}].name`, 64)
    if (!NAME_RE.test(name)) throw new VcdnError('ERR_API_BODY', `result.renditions[${i}].name must be a path segment`)
    const int = (k: string): number => Math.round(reqNumber(o[k], `result.renditions[${i}].${k}`, 0))
    const avg = optNumber(o['averageBandwidth'], `result.renditions[${i}].averageBandwidth`, 0)
    return {
      name,
      width: int('width'),
      height: int('height'),
      bandwidth: int('bandwidth'),
      averageBandwidth: avg === undefined ? null : Math.round(avg),
      codecs: reqString(o['codecs'], `result.renditions[${i}].codecs`, 256),
      frameRate: optNumber(o['frameRate'], `result.renditions[${i}].frameRate`, 0) ?? null,
    }
  })
  let thumbnails: Thumbnails | null = null
  const t = r['thumbnails']
  if (typeof t === 'object' && t !== null) {
    const o = t as Record<string, unknown>
    const sprites = o['sprites'] ?? []
    if (!Array.isArray(sprites)) throw new VcdnError('ERR_API_BODY', 'result.thumbnails.sprites must be an array')
    thumbnails = {
      poster: optString(o['poster'], 'result.thumbnails.poster') ?? null,
      sprites: sprites.map((s, i) => reqString(s, `result.thumbnails.sprites[${i}]`)),
      vtt: optString(o['vtt'], 'result.thumbnails.vtt') ?? null,
    }
  }
  return { durationS, renditions, thumbnails }
}
