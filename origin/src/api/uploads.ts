// Resumable uploads with tus 1.0.0 (https://tus.io/protocols/resumable-upload): core, creation,
// creation-defer-length, termination, checksum (sha1, sha256, md5) and expiration, at /v1/uploads/,
// so tus-js-client and Uppy work unchanged. Every call but OPTIONS carries a Bearer JWT (tus
// clients send custom headers); CORS headers are added by the API front (app.ts).
import { VcdnError } from '../../../shared/errors/index.js'
import type { HeaderMap, ResponseSink } from '../../../shared/http/index.js'
import { requireOwner } from '../auth.js'
import type { Upload } from '../db.js'
import { ID_RE } from '../ids.js'
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from '../uploads.js'
import { metadataCaptions, storeCaptions } from './captions.js'
import { principal, type ApiDeps } from './context.js'
import type { Router } from './router.js'

export const TUS_VERSION = '1.0.0'
export const TUS_EXTENSIONS = 'creation,creation-defer-length,termination,checksum,expiration'

/** Headers of the OPTIONS answer (tus core §OPTIONS). */
export function tusOptionsHeaders(maxBytes: number): HeaderMap {
  return {
    'tus-version': TUS_VERSION,
    'tus-extension': TUS_EXTENSIONS,
    'tus-max-size': String(maxBytes),
    'tus-checksum-algorithm': CHECKSUM_ALGORITHMS.join(','),
  }
}

const OFFSET_CONTENT_TYPE = 'application/offset+octet-stream'
const INT_RE = /^\d{1,16}$/

function parseInt(header: string | undefined): number | null {
  if (header === undefined || !INT_RE.test(header.trim())) return null
  const n = Number(header.trim())
  return Number.isSafeInteger(n) ? n : null
}

/** tus §Upload-Metadata: comma-separated `key base64value` pairs (the value may be absent). */
export function parseMetadata(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (header === undefined || header.trim() === '') return out
  for (const pair of header.split(',')) {
    const [key, value] = pair.trim().split(' ')
    if (key === undefined || key === '') continue
    out.set(key, value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8'))
  }
  return out
}

function uploadHeaders(u: Upload): HeaderMap {
  const h: HeaderMap = {
    'upload-offset': String(u.offset),
    'upload-expires': new Date(u.expiresAtMs).toUTCString(),
    // tus core §HEAD: the offset must never be served from a cache.
    'cache-control': 'no-store',
  }
  if (u.length === null) h['upload-defer-length'] = '1'
  else h['upload-length'] = String(u.length)
  if (u.metadata !== '') h['upload-metadata'] = u.metadata
  return h
}

function sendEmpty(res: ResponseSink, status: number, headers: HeaderMap): void {
  if (status === 204) res.start(status, headers)
  else res.start(status, headers, 0)
  res.end()
}

function requireTus(headers: HeaderMap): void {
  // tus core: a request with another (or no) Tus-Resumable version is refused with 412.
  if (headers['tus-resumable'] !== TUS_VERSION) throw new VcdnError('ERR_UPLOAD_VERSION')
}

export function uploadRoutes(router: Router, deps: ApiDeps): void {
  const loadOwned = (id: string | undefined, p: ReturnType<typeof principal>): Upload => {
    const upload = id !== undefined && ID_RE.test(id) ? deps.uploads.get(id) : null
    if (upload === null) throw new VcdnError('ERR_UPLOAD_NOT_FOUND')
    requireOwner(p, upload.owner)
    return upload
  }

  // tus creation: POST with Upload-Length (or Upload-Defer-Length: 1) and Upload-Metadata videoId
  // (and optionally caption files, `caption_<lang>`).
  router.add('POST', '/v1/uploads', async ({ req, res }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    requireTus(req.headers)
    const length = parseInt(req.headers['upload-length'])
    const isDeferred = req.headers['upload-defer-length'] === '1'
    if (length === null && !isDeferred) throw new VcdnError('ERR_UPLOAD_LENGTH')
    if (length !== null && length > deps.config.maxUploadBytes) throw new VcdnError('ERR_UPLOAD_TOO_LARGE')
    const metadataHeader = req.headers['upload-metadata'] ?? ''
    const videoId = parseMetadata(metadataHeader).get('videoId')
    const video = videoId !== undefined && ID_RE.test(videoId) ? deps.meta.getVideo(videoId) : null
    if (video === null) throw new VcdnError('ERR_UPLOAD_METADATA')
    requireOwner(p, video.owner)
    if (video.status !== 'uploading') throw new VcdnError('ERR_VIDEO_STATE', 'the video already has its source')
    // Caption files in the metadata (`caption_<lang>`, ./captions.ts): every one checked before
    // anything is stored, stored before the upload exists, so a refused request leaves nothing.
    const captions = metadataCaptions(metadataHeader)
    await storeCaptions(deps, video.id, captions)
    const upload = await deps.uploads.create(video.id, video.owner, length, metadataHeader)
    sendEmpty(res, 201, {
      location: `/v1/uploads/${upload.id}`,
      'upload-expires': new Date(upload.expiresAtMs).toUTCString(),
    })
  })

  router.add('HEAD', '/v1/uploads/:id', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    requireTus(req.headers)
    loadOwned(params['id'], p)
    // A PATCH cut a moment ago may still be flushing: report the settled offset.
    await deps.uploads.settled(params['id'] as string)
    const upload = loadOwned(params['id'], p)
    sendEmpty(res, 200, uploadHeaders(upload))
  })

  router.add('PATCH', '/v1/uploads/:id', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    requireTus(req.headers)
    const upload = loadOwned(params['id'], p)
    if ((req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() !== OFFSET_CONTENT_TYPE) {
      throw new VcdnError('ERR_UPLOAD_CONTENT_TYPE')
    }
    const offset = parseInt(req.headers['upload-offset'])
    if (offset === null) throw new VcdnError('ERR_API_BODY', 'Upload-Offset missing or malformed')
    const declared = parseInt(req.headers['upload-length'])
    const length = upload.length ?? declared
    const contentLength = parseInt(req.headers['content-length'])
    if (contentLength !== null && offset + contentLength > (length ?? deps.config.maxUploadBytes)) {
      throw new VcdnError('ERR_UPLOAD_TOO_LARGE')
    }
    const checksum = parseChecksum(req.headers['upload-checksum'])
    const updated = await deps.uploads.append(upload.id, offset, req.body, { declaredLength: declared, checksum })
    sendEmpty(res, 204, {
      'upload-offset': String(updated.offset),
      'upload-expires': new Date(updated.expiresAtMs).toUTCString(),
    })
  })

  // tus termination.
  router.add('DELETE', '/v1/uploads/:id', async ({ req, res, params }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    requireTus(req.headers)
    const upload = loadOwned(params['id'], p)
    await deps.uploads.terminate(upload.id)
    sendEmpty(res, 204, {})
  })
}

/** tus checksum §Upload-Checksum: `<algorithm> <base64 digest>`. */
function parseChecksum(header: string | undefined): { algorithm: ChecksumAlgorithm; digest: Buffer } | null {
  if (header === undefined) return null
  const [algorithm, digest] = header.trim().split(' ')
  if (!CHECKSUM_ALGORITHMS.includes(algorithm as ChecksumAlgorithm) || digest === undefined || digest === '') {
    throw new VcdnError('ERR_UPLOAD_CHECKSUM_ALGORITHM')
  }
  return { algorithm: algorithm as ChecksumAlgorithm, digest: Buffer.from(digest, 'base64') }
}
