// Caption files attached to a video (docs/architecture.md §7.2, §8): `POST
// /v1/videos/:id/captions?lang=xx[&name=…]` with a WebVTT or SRT body, before the job runs. The
// file is parsed (a bad one is ERR_CAPTION_INVALID, nothing stored), SRT becomes WebVTT, and it is
// stored beside the source as `sources/<id>/captions/<lang>.vtt`, the label on the WEBVTT line
// (W3C WebVTT §4.1: text after the signature), so it is deleted with the source. A tus creation
// request may carry the same files in its Upload-Metadata (`caption_<lang>`, see metadataCaptions).
import { parseWorkerId, type CaptionsResponse } from '../../../shared/bus/index.js'
import { VcdnError } from '../../../shared/errors/index.js'
import { sendJson } from '../../../shared/http/index.js'
import { CaptionParseError, formatWebVtt, parseCaptions } from '../../../shared/media/index.js'
import { sourceStorePrefix } from '../../../shared/namespace/index.js'
import { principal, type ApiDeps } from './context.js'
import type { Router } from './router.js'
import { ownedVideo } from './videos.js'

export const MAX_CAPTION_BYTES = 2 * 1024 * 1024
/** Languages per video: bounds what a job's captions response carries. */
const MAX_CAPTION_FILES = 32
const MAX_NAME = 64

/** The store key of a video's caption file in one language. */
export function captionKey(videoId: string, language: string): string {
  return `${sourceStorePrefix(videoId)}captions/${language}.vtt`
}

/** `lang` as a canonical BCP-47 tag (RFC 5646), or ERR_API_BODY. */
function languageParam(text: string | null, what = 'lang'): string {
  let tag: string | undefined
  try {
    tag = text !== null && /^[A-Za-z0-9-]{2,35}$/.test(text) ? Intl.getCanonicalLocales(text)[0] : undefined
  } catch {
    tag = undefined
  }
  if (tag === undefined || tag === 'und') throw new VcdnError('ERR_API_BODY', `${what} must be a BCP-47 language tag`)
  return tag
}

function nameParam(text: string | null): string | undefined {
  if (text === null) return undefined
  // One line of text, usable in an HLS quoted-string (RFC 8216 §4.2) and XML.
  if (text.length > MAX_NAME || text.trim() === '' || /[\u0000-\u001f\u007f"<>&]/.test(text))
    throw new VcdnError('ERR_API_BODY', `name must be 1..${MAX_NAME} characters without quotes or markup`)
  return text.trim()
}

export interface CheckedCaption {
  readonly language: string
  /** The stored WebVTT, the label (if any) on its WEBVTT line. */
  readonly vtt: string
  readonly cues: number
}

/** A WebVTT or SRT file's bytes as the stored WebVTT, or ERR_CAPTION_INVALID. */
function captionFile(language: string, body: Uint8Array, name: string | undefined): CheckedCaption {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body)
  } catch {
    throw new VcdnError('ERR_CAPTION_INVALID', 'the file is not UTF-8 text')
  }
  let cues
  try {
    cues = parseCaptions(text)
  } catch (err) {
    if (err instanceof CaptionParseError) throw new VcdnError('ERR_CAPTION_INVALID', err.message)
    throw err
  }
  const vtt = formatWebVtt(cues)
  return {
    language,
    vtt: name === undefined ? vtt : vtt.replace(/^WEBVTT\n/, `WEBVTT ${name}\n`),
    cues: cues.length,
  }
}

/** Upload-Metadata keys that carry a caption file: `caption_<BCP-47 tag>`. */
const METADATA_CAPTION_PREFIX = 'caption_'

/**
 * The caption files in a tus creation request's Upload-Metadata (tus core §Upload-Metadata:
 * comma-separated `key base64value` pairs): each `caption_<lang>` value is a WebVTT or SRT file,
 * base64. All are checked before anything is stored or created: a bad file is
 * ERR_CAPTION_INVALID, a bad language ERR_API_BODY. The request head, metadata included, must fit
 * the 4 KiB uWS.js reads before it gives up on a request (shared/http/README.md), so this is for
 * short files; longer ones go through POST /v1/videos/:id/captions.
 */
export function metadataCaptions(header: string): CheckedCaption[] {
  const byLanguage = new Map<string, CheckedCaption>()
  for (const pair of header.split(',')) {
    const [key, value] = pair.trim().split(' ')
    if (key === undefined || !key.startsWith(METADATA_CAPTION_PREFIX)) continue
    const language = languageParam(key.slice(METADATA_CAPTION_PREFIX.length), `the language of ${key}`)
    const body = Buffer.from(value ?? '', 'base64')
    if (body.length > MAX_CAPTION_BYTES) throw new VcdnError('ERR_API_BODY_TOO_LARGE')
    byLanguage.set(language, captionFile(language, body, undefined))
  }
  if (byLanguage.size > MAX_CAPTION_FILES)
    throw new VcdnError('ERR_VIDEO_STATE', `a video has at most ${MAX_CAPTION_FILES} caption languages`)
  return [...byLanguage.values()]
}

/** Store caption files checked by metadataCaptions for a video that has no source yet. */
export async function storeCaptions(
  deps: ApiDeps,
  videoId: string,
  captions: readonly CheckedCaption[],
): Promise<void> {
  if (captions.length === 0) return
  const existing = await deps.store.list(`${sourceStorePrefix(videoId)}captions/`)
  const keys = new Set([...existing.map((o) => o.key), ...captions.map((c) => captionKey(videoId, c.language))])
  if (keys.size > MAX_CAPTION_FILES)
    throw new VcdnError('ERR_VIDEO_STATE', `a video has at most ${MAX_CAPTION_FILES} caption languages`)
  for (const c of captions) await deps.store.put(captionKey(videoId, c.language), Buffer.from(c.vtt, 'utf8'))
}

export function captionRoutes(router: Router, deps: ApiDeps): void {
  router.add('POST', '/v1/videos/:id/captions', async ({ req, res, params, query }) => {
    const p = principal(req, deps, ['uploader', 'admin'])
    const video = ownedVideo(p, params['id'], deps)
    const language = languageParam(query.get('lang'))
    const name = nameParam(query.get('name'))
    // The job takes the captions when it starts; after that they would silently be ignored.
    if (video.status !== 'uploading' && video.status !== 'queued')
      throw new VcdnError('ERR_VIDEO_STATE', 'captions are attached before the video is processed')
    const existing = await deps.store.list(`${sourceStorePrefix(video.id)}captions/`)
    if (existing.length >= MAX_CAPTION_FILES && !existing.some((o) => o.key === captionKey(video.id, language)))
      throw new VcdnError('ERR_VIDEO_STATE', `a video has at most ${MAX_CAPTION_FILES} caption languages`)
    const body = await req.readBody(MAX_CAPTION_BYTES)
    if (body === null) throw new VcdnError('ERR_API_BODY_TOO_LARGE')
    const caption = captionFile(language, body, name)
    await deps.store.put(captionKey(video.id, language), Buffer.from(caption.vtt, 'utf8'))
    sendJson(res, 201, { id: video.id, language, name: name ?? null, cues: caption.cues })
  })

  // The worker holding the job's lease reads the captions with the source (docs/architecture.md
  // §8): the same holder rule as GET /v1/jobs/:id/source.
  router.add('GET', '/v1/jobs/:id/captions', async ({ req, res, params, query }) => {
    const p = principal(req, deps, ['worker', 'admin'])
    const holder = `${p.sub}/${parseWorkerId(query.get('workerId') ?? undefined)}`
    const jobId = params['id']
    const job = jobId === undefined ? null : await deps.queue.get(jobId)
    if (job === null) throw new VcdnError('ERR_JOB_NOT_FOUND')
    if (job.status !== 'leased' || job.workerId !== holder) throw new VcdnError('ERR_JOB_LEASE_LOST')
    const prefix = `${sourceStorePrefix(job.videoId)}captions/`
    const captions: CaptionsResponse['captions'] = []
    for (const o of (await deps.store.list(prefix)).slice(0, MAX_CAPTION_FILES)) {
      const language = o.key.slice(prefix.length).replace(/\.vtt$/, '')
      const got = await deps.store.get(o.key)
      if (got === null) continue
      const chunks: Buffer[] = []
      for await (const chunk of got.body as AsyncIterable<Buffer | string>)
        chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
      captions.push({ language, vtt: Buffer.concat(chunks).toString('utf8') })
    }
    sendJson(res, 200, { captions } satisfies CaptionsResponse, { 'cache-control': 'no-store' })
  })
}
