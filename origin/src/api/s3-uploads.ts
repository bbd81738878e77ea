// Direct-to-store uploads (docs/architecture.md §7.2): `POST /v1/videos` with
// `{size, upload: {protocols: ['s3-multipart', 'tus'], partSize?}}` picks the first protocol the
// origin offers (s3-multipart only with the S3 store; an origin that knows none of this answers
// tus); then the parts go straight to the bucket with presigned URLs, `GET …/upload/parts` lists
// what the store has (resume) with fresh URLs for the rest, and `POST …/upload/complete` completes.
import { VcdnError } from '../../../shared/errors/index.js'
import { sendJson } from '../../../shared/http/index.js'
import { MAX_PARTS, MAX_URLS_PER_ANSWER, type S3Upload, type S3UploadManager } from '../s3-uploads.js'
import { principal, readJson, type ApiDeps } from './context.js'
import type { Router } from './router.js'
import { ownedVideo, view } from './videos.js'

export function s3UploadRoutes(router: Router, deps: ApiDeps): void {
  const owned = (req: Parameters<typeof principal>[0], id: string | undefined): { u: S3Upload; m: S3UploadManager } => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const video = ownedVideo(p, id, deps)
    const m = deps.s3Uploads
    if (!m) throw new VcdnError('ERR_STORE_NOT_DIRECT')
    const u = m.get(video.id)
    if (u === null) throw new VcdnError('ERR_UPLOAD_NOT_FOUND')
    return { u, m }
  }

  // What the store has, and fresh URLs for the missing parts from `from` (at most `limit`, ≤ 100).
  router.add('GET', '/v1/videos/:id/upload/parts', async ({ req, res, params, query }) => {
    const { u, m } = owned(req, params['id'])
    const from = intParam(query.get('from'), 1, 1, MAX_PARTS, 'from')
    const limit = intParam(query.get('limit'), MAX_URLS_PER_ANSWER, 0, MAX_URLS_PER_ANSWER, 'limit')
    const { parts, urls } = await m.parts(u, from, limit)
    sendJson(res, 200, {
      size: u.size,
      partSize: u.partBytes,
      partCount: u.partCount,
      isComplete: u.completedAtMs !== null,
      parts,
      urls,
    })
  })

  router.add('POST', '/v1/videos/:id/upload/complete', async ({ req, res, params }) => {
    const { u, m } = owned(req, params['id'])
    const body = await readJson(req)
    const raw = body['parts']
    if (!Array.isArray(raw) || raw.length > MAX_PARTS) throw new VcdnError('ERR_API_BODY', 'parts must be an array')
    const parts = raw.map((x: unknown, i) => {
      const o = (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>
      if (!Number.isInteger(o['n']) || typeof o['etag'] !== 'string' || o['etag'].length > 256) {
        throw new VcdnError('ERR_API_BODY', `parts[${i}] must be {n, etag}`)
      }
      return { n: o['n'] as number, etag: o['etag'] }
    })
    await m.complete(u, parts)
    const video = deps.meta.getVideo(u.videoId)
    if (video === null) throw new VcdnError('ERR_VIDEO_NOT_FOUND')
    sendJson(res, 200, view(video, deps))
  })
}

function intParam(text: string | null, fallback: number, min: number, max: number, name: string): number {
  if (text === null) return fallback
  const n = Number(text)
  if (!Number.isInteger(n) || n < min || n > max) throw new VcdnError('ERR_API_BODY', `${name} must be ${min}..${max}`)
  return n
}
