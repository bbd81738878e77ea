// /v1/videos: create (with its tus upload), read (with signed playback URLs when ready), list
// (cursor pagination, newest first, owner-scoped unless admin), rename, delete (store objects,
// source, purge on every node), reprocess, prewarm (every node fetches its first segments).
import { VcdnError } from '../../../shared/errors/index.js'
import { sendJson } from '../../../shared/http/index.js'
import { sourceStorePrefix, videoDir, videoStorePrefix } from '../../../shared/namespace/index.js'
import { signedPath } from '../../../shared/token/index.js'
import { requireOwner, type Principal } from '../auth.js'
import type { Video } from '../db.js'
import { ID_RE } from '../ids.js'
import { MAX_PREWARM_SEGMENTS, prewarmKeys } from '../prewarm.js'
import { workStorePrefix } from '../split-plan.js'
import { videoTracks } from '../tracks.js'
import { optNumber, optString, principal, readJson, reqString, type ApiDeps } from './context.js'
import { multipartView, uploadProtocol } from '../s3-uploads.js'
import type { Router } from './router.js'

const DEFAULT_PAGE = 20
const MAX_PAGE = 100
const MAX_TITLE = 500
const DEFAULT_PREWARM_SEGMENTS = 3

export function videoRoutes(router: Router, deps: ApiDeps): void {
  router.add('POST', '/v1/videos', async ({ req, res }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const body = await readJson(req)
    const title = optString(body['title'], 'title', MAX_TITLE) ?? ''
    const size = optNumber(body['size'], 'size', 0, Number.MAX_SAFE_INTEGER)
    if (size !== undefined && !Number.isInteger(size)) throw new VcdnError('ERR_API_BODY', 'size must be an integer')
    if (size !== undefined && size > deps.config.maxUploadBytes) throw new VcdnError('ERR_UPLOAD_TOO_LARGE')
    const protocol = uploadProtocol(body['upload'], Boolean(deps.s3Uploads))
    const askedPartBytes = optNumber(
      (body['upload'] as Record<string, unknown> | undefined)?.['partSize'],
      'upload.partSize',
      1,
      Number.MAX_SAFE_INTEGER,
    )
    if (protocol === 's3-multipart' && size === undefined) throw new VcdnError('ERR_UPLOAD_LENGTH')
    const video = deps.videos.create(p.sub, title)
    const offers = deps.s3Uploads ? ['s3-multipart', 'tus'] : ['tus']
    if (protocol === 's3-multipart' && deps.s3Uploads) {
      let upload
      try {
        upload = await deps.s3Uploads.create(video.id, p.sub, size ?? 0, askedPartBytes)
      } catch (err) {
        deps.videos.delete(video.id) // nothing of it exists yet: no video without an upload
        throw err
      }
      sendJson(
        res,
        201,
        { ...view(video, deps), upload: await multipartView(upload, deps.s3Uploads, offers) },
        { location: `/v1/videos/${video.id}` },
      )
      return
    }
    const metadata = `videoId ${Buffer.from(video.id).toString('base64')}`
    const upload = await deps.uploads.create(video.id, p.sub, size ?? null, metadata)
    sendJson(
      res,
      201,
      {
        ...view(video, deps),
        upload: {
          protocol: 'tus',
          offers,
          url: `/v1/uploads/${upload.id}`,
          endpoint: '/v1/uploads/',
          metadata: { videoId: video.id },
          length: upload.length,
          expiresAtMs: upload.expiresAtMs,
        },
      },
      { location: `/v1/videos/${video.id}` },
    )
  })

  router.add('GET', '/v1/videos', ({ req, res, query }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const limitText = query.get('limit')
    const limit = limitText === null ? DEFAULT_PAGE : Number(limitText)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new VcdnError('ERR_API_BODY', `limit must be 1..${MAX_PAGE}`)
    const cursor = query.get('cursor')
    const ownerFilter = query.get('owner')
    const owner = p.role === 'admin' ? ownerFilter : p.sub
    const rows = deps.meta.listVideos({
      owner,
      limit: limit + 1,
      before: cursor === null || cursor === '' ? null : decodeCursor(cursor),
    })
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    sendJson(res, 200, {
      videos: page.map((v) => view(v, deps)),
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last) : null,
    })
  })

  router.add('GET', '/v1/videos/:id', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const video = ownedVideo(p, params['id'], deps)
    // A ready video lists its audio and subtitle tracks, read from its master playlist.
    const tracks = video.status === 'ready' ? await videoTracks(deps.store, video.id) : null
    sendJson(res, 200, { ...view(video, deps), tracks })
  })

  router.add('PATCH', '/v1/videos/:id', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const video = ownedVideo(p, params['id'], deps)
    const body = await readJson(req)
    const title = reqString(body['title'], 'title', MAX_TITLE)
    deps.meta.setTitle(video.id, title, deps.now())
    sendJson(res, 200, view(deps.meta.getVideo(video.id) ?? video, deps))
  })

  router.add('DELETE', '/v1/videos/:id', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const video = ownedVideo(p, params['id'], deps)
    // Row first: from here on workers get ERR_JOB_NOT_FOUND and nobody can read the video; then
    // the bytes; then the caches (docs/architecture.md §2: playlists are purged on delete).
    await deps.uploads.removeFilesOfVideo(video.id)
    await deps.s3Uploads?.abortOfVideo(video.id)
    deps.videos.delete(video.id)
    const removedObjects =
      (await deps.store.deletePrefix(videoStorePrefix(video.id))) +
      (await deps.store.deletePrefix(sourceStorePrefix(video.id))) +
      (await deps.store.deletePrefix(workStorePrefix(video.id)))
    const nodes = await deps.nodes.purge({ prefix: videoDir(video.id) })
    sendJson(res, 200, { id: video.id, deleted: true, removedObjects, purge: { nodes } })
  })

  // The first segments of every rendition into every shield and edge, before viewers arrive.
  router.add('POST', '/v1/videos/:id/prewarm', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const video = ownedVideo(p, params['id'], deps)
    const body = await readJson(req)
    const segments = optNumber(body['segments'], 'segments', 0, MAX_PREWARM_SEGMENTS) ?? DEFAULT_PREWARM_SEGMENTS
    if (!Number.isInteger(segments)) throw new VcdnError('ERR_API_BODY', 'segments must be an integer')
    if (video.status !== 'ready') throw new VcdnError('ERR_VIDEO_STATE', 'only a ready video can be prewarmed')
    const keys = await prewarmKeys(deps.store, video.id, segments)
    sendJson(res, 200, {
      id: video.id,
      segments,
      keys: keys.length,
      ...(await deps.nodes.prewarmReport(keys, video.id)),
    })
  })

  router.add('POST', '/v1/videos/:id/reprocess', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const video = ownedVideo(p, params['id'], deps)
    // Ready or failed, with a source (ERR_VIDEO_STATE otherwise): VideoLifecycle decides.
    const queued = await deps.videos.reprocess(video.id)
    sendJson(res, 202, view(queued, deps))
  })
}

export function ownedVideo(p: Principal, id: string | undefined, deps: ApiDeps): Video {
  if (id === undefined || !ID_RE.test(id)) throw new VcdnError('ERR_VIDEO_NOT_FOUND')
  const video = deps.meta.getVideo(id)
  if (video === null) throw new VcdnError('ERR_VIDEO_NOT_FOUND')
  requireOwner(p, video.owner)
  return video
}

function encodeCursor(v: Video): string {
  return Buffer.from(JSON.stringify([v.createdAtMs, v.id])).toString('base64url')
}

function decodeCursor(cursor: string): { createdAtMs: number; id: string } {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(parsed) && typeof parsed[0] === 'number' && typeof parsed[1] === 'string') {
      return { createdAtMs: parsed[0], id: parsed[1] }
    }
  } catch {
    // fall through
  }
  throw new VcdnError('ERR_API_CURSOR')
}

/** A thumbnail reference from a worker ('thumbs/poster.jpg', '/v/<id>/thumbs/…', 'v/<id>/…') → relative name. */
function relativeName(videoId: string, ref: string): string {
  return ref.replace(/^\//, '').replace(new RegExp(`^${videoStorePrefix(videoId)}`), '')
}

/**
 * A split video's chunks while it is transcoded (docs/architecture.md §8): how many are done, and
 * the workers that took them (their workerId labels); kept once ready, as the record of who encoded
 * it. null for a video transcoded whole.
 */
function processingView(v: Video, deps: ApiDeps): Record<string, unknown> | null {
  const chunks = deps.videos.chunks(v.id)
  if (chunks === null) return null
  // claims: how many times each chunk was leased (1 each unless a chunk was retried alone). audio:
  // the audio job that runs beside the chunks (null: none, the source has no audio or the stitch
  // encodes it); workers lists the chunks' workers only, audio.workers the audio job's.
  const { audio } = chunks
  return {
    chunks: { done: chunks.done, total: chunks.total, claims: chunks.attempts },
    audio: audio === null ? null : { done: audio.isDone, claims: audio.attempts, workers: audio.workers },
    workers: chunks.workers,
  }
}

/** The public JSON of a video. Playback and thumbnail URLs are signed edge URLs, only when ready. */
export function view(v: Video, deps: ApiDeps): Record<string, unknown> {
  const isReady = v.status === 'ready'
  const { edgeBaseUrl, activeKey, signingKeys, playbackTtlS } = deps.config
  const canSign = isReady && edgeBaseUrl !== '' && activeKey !== '' && signingKeys[activeKey] !== undefined
  const prefix = videoDir(v.id)
  const nowMs = deps.now()
  const url = (rel: string): string =>
    edgeBaseUrl.replace(/\/+$/, '') +
    signedPath({ prefix, path: prefix + rel, ttlS: playbackTtlS, kid: activeKey, keys: signingKeys, nowMs })
  const t = v.thumbnails
  return {
    id: v.id,
    owner: v.owner,
    title: v.title,
    status: v.status,
    progress: v.progress,
    processing: processingView(v, deps),
    error: v.error,
    durationS: v.durationS,
    renditions: isReady ? deps.meta.renditions(v.id) : [],
    thumbnails:
      t === null || !isReady
        ? null
        : canSign
          ? {
              poster: t.poster === null ? null : url(relativeName(v.id, t.poster)),
              sprites: t.sprites.map((s) => url(relativeName(v.id, s))),
              vtt: t.vtt === null ? null : url(relativeName(v.id, t.vtt)),
            }
          : t,
    playback: canSign ? { hls: url('master.m3u8'), dash: url('manifest.mpd') } : null,
    createdAtMs: v.createdAtMs,
    updatedAtMs: v.updatedAtMs,
    readyAtMs: v.readyAtMs,
  }
}
