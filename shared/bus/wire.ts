// The worker wire protocol (docs/architecture.md §8): the JSON a transcoder and the origin exchange
// over HTTP while a job runs — claim, heartbeat, source download, output upload, complete, fail.
// One home for both sides: the origin's worker routes (origin/src/api/jobs.ts) parse every
// incoming body with the functions below; the transcoder's client (transcoder/src/origin-client.ts)
// builds its requests from the same types. Parse errors are ERR_API_BODY naming the field.
import { VcdnError } from '../errors/index.js'
import type { JobError } from './job.js'

/** A worker's label; no '/', so the origin can join it to the credential's subject unambiguously. */
export const WORKER_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/
export const MIN_LEASE_MS = 1000
export const MAX_LEASE_MS = 3_600_000
export const DEFAULT_LEASE_MS = 30_000
/** A rendition name is one path segment of the video's prefix. */
export const RENDITION_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/

// ---- requests (worker → origin) ---------------------------------------------------------------

/** `POST /v1/jobs/claim` */
export interface ClaimRequest {
  workerId: string
  leaseMs?: number
}

/** `POST /v1/jobs/:id/heartbeat`: renews the lease and reports progress (0..1). */
export interface HeartbeatRequest {
  workerId: string
  leaseMs?: number
  progress?: number
}

export interface JobRendition {
  name: string
  width: number
  height: number
  bandwidth: number
  averageBandwidth: number | null
  codecs: string
  frameRate: number | null
}

export interface JobThumbnails {
  poster: string | null
  sprites: readonly string[]
  vtt: string | null
}

/** What a transcode produced, as the origin records it on the video. */
export interface JobResult {
  durationS: number | null
  renditions: readonly JobRendition[]
  thumbnails: JobThumbnails | null
}

/** `POST /v1/jobs/:id/complete` */
export interface CompleteRequest {
  workerId: string
  result: JobResult
}

/** `POST /v1/jobs/:id/fail` */
export interface FailRequest {
  workerId: string
  error: JobError
}

/**
 * `POST /v1/jobs/:id/direct`: with an S3 store the worker moves the bytes straight to and from the
 * bucket: it asks for a presigned request for the source (`source: true`) or for one output
 * (`output`). A store without direct access answers 404 ERR_STORE_NOT_DIRECT, and the worker uses
 * the source and output routes instead (docs/architecture.md §8).
 */
export interface DirectRequest {
  workerId: string
  source?: boolean
  output?: { key: string; contentType: string }
}

// ---- answers (origin → worker) ----------------------------------------------------------------

export interface ClaimedJob {
  id: string
  kind: string
  videoId: string
  attempt: number
  leaseUntilMs: number | null
  payload: Record<string, unknown>
}

/** `POST /v1/jobs/claim` → 200 */
export interface ClaimResponse {
  job: ClaimedJob | null
}

/** `POST /v1/jobs/:id/heartbeat` → 200; a lost lease is 409 ERR_JOB_LEASE_LOST. */
export interface HeartbeatResponse {
  ok: true
  leaseUntilMs: number | null
}

// ---- split-and-stitch payloads (docs/architecture.md §8) -------------------------------------

/** Payload of a `transcode.chunk` job: encode [startS, startS + lengthS) of the source, video only. */
export interface ChunkJobPayload {
  sourceKey: string
  index: number
  startS: number
  /** The last chunk (index = count - 1) runs to the end of the source whatever its length says. */
  lengthS: number
  count: number
}

/** Payload of a `transcode.audio` job: encode every audio track of the whole source, no video. */
export interface AudioJobPayload {
  sourceKey: string
}

/** Payload of a `transcode.stitch` job: chunks 0..count-1 are in the store at chunkStoreKey. */
export interface StitchJobPayload {
  sourceKey: string
  count: number
  /**
   * true: an audio job encoded every track into audioStoreKey, which the stitch copies. false (or
   * absent, from an origin before the audio job): the stitch encodes the source's audio itself.
   */
  hasAudioJob: boolean
}

/** Store prefix of a video's intermediate outputs (never served under /v/; removed after publishing). */
export function workStorePrefix(videoId: string): string {
  return `work/${videoId}/`
}

/** Store key of chunk `index` of a split video: one mp4 with a video stream per rung, lowest first. */
export function chunkStoreKey(videoId: string, index: number): string {
  return `${workStorePrefix(videoId)}chunks/${index}/video.mp4`
}

/** Store key of a split video's audio (the audio job's output): one mp4, audio track i = rendition i. */
export function audioStoreKey(videoId: string): string {
  return `${workStorePrefix(videoId)}audio/audio.mp4`
}

function payloadProblem(what: string): never {
  throw new TypeError(`job payload: ${what}`)
}

function wholeNumber(p: Record<string, unknown>, k: string, min: number): number {
  const v = p[k]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) payloadProblem(`${k} must be an integer ≥ ${min}`)
  return v
}

/** A chunk job's payload as the origin wrote it (a TypeError names a bad field). */
export function parseChunkPayload(p: Record<string, unknown>): ChunkJobPayload {
  if (typeof p['sourceKey'] !== 'string') payloadProblem('sourceKey must be a string')
  const out = {
    sourceKey: p['sourceKey'],
    index: wholeNumber(p, 'index', 0),
    startS: wholeNumber(p, 'startS', 0),
    lengthS: wholeNumber(p, 'lengthS', 1),
    count: wholeNumber(p, 'count', 1),
  }
  if (out.index >= out.count) payloadProblem('index must be below count')
  return out
}

/** A stitch job's payload as the origin wrote it. */
export function parseStitchPayload(p: Record<string, unknown>): StitchJobPayload {
  if (typeof p['sourceKey'] !== 'string') payloadProblem('sourceKey must be a string')
  const hasAudioJob = p['hasAudioJob'] ?? false
  if (typeof hasAudioJob !== 'boolean') payloadProblem('hasAudioJob must be a boolean')
  return { sourceKey: p['sourceKey'], count: wholeNumber(p, 'count', 1), hasAudioJob }
}

/** An audio job's payload as the origin wrote it. */
export function parseAudioPayload(p: Record<string, unknown>): AudioJobPayload {
  if (typeof p['sourceKey'] !== 'string') payloadProblem('sourceKey must be a string')
  return { sourceKey: p['sourceKey'] }
}

/** `POST /v1/jobs/:id/direct` → 200: send exactly this (the headers are signed). */
export interface DirectResponse {
  request: { method: 'GET' | 'PUT'; url: string; headers: Record<string, string>; expiresAtMs: number }
}

// ---- parsing incoming bodies (the origin side) -----------------------------------------------

function bad(message: string): never {
  throw new VcdnError('ERR_API_BODY', message)
}

function reqString(v: unknown, name: string, maxLength = 1024): string {
  if (typeof v !== 'string' || v.length > maxLength) bad(`${name} must be a string`)
  return v
}

function optString(v: unknown, name: string, maxLength = 1024): string | undefined {
  return v === undefined || v === null ? undefined : reqString(v, name, maxLength)
}

function reqNumber(v: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    bad(`${name} must be a number in ${min}..${max}`)
  return v
}

function optNumber(v: unknown, name: string, min = -Infinity, max = Infinity): number | undefined {
  return v === undefined || v === null ? undefined : reqNumber(v, name, min, max)
}

function object(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) bad(`${name} must be an object`)
  return v as Record<string, unknown>
}

export function parseWorkerId(v: unknown): string {
  if (typeof v !== 'string' || !WORKER_ID_RE.test(v)) bad('workerId must match [A-Za-z0-9._:-]{1,128}')
  return v
}

/** leaseMs of a claim or heartbeat, whole ms, DEFAULT_LEASE_MS when absent. */
export function parseLeaseMs(v: unknown): number {
  return Math.round(reqNumber(v ?? DEFAULT_LEASE_MS, 'leaseMs', MIN_LEASE_MS, MAX_LEASE_MS))
}

export function parseClaimRequest(body: Record<string, unknown>): Required<ClaimRequest> {
  return { workerId: parseWorkerId(body['workerId']), leaseMs: parseLeaseMs(body['leaseMs']) }
}

export function parseHeartbeatRequest(body: Record<string, unknown>): Required<HeartbeatRequest> {
  return {
    workerId: parseWorkerId(body['workerId']),
    leaseMs: parseLeaseMs(body['leaseMs']),
    progress: optNumber(body['progress'], 'progress', 0, 1) ?? 0,
  }
}

export function parseJobResult(raw: unknown): JobResult {
  const r = object(raw, 'result')
  const durationS = optNumber(r['durationS'], 'result.durationS', 0) ?? null
  if (!Array.isArray(r['renditions'])) bad('result.renditions must be an array')
  const renditions = (r['renditions'] as unknown[]).map((x, i): JobRendition => {
    const o = object(x, `result.renditions[${i}]`)
    const name = reqString(o['name'], `result.renditions[${i}].name`, 64)
    if (!RENDITION_NAME_RE.test(name)) bad(`result.renditions[${i}].name must be a path segment`)
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
  let thumbnails: JobThumbnails | null = null
  const t = r['thumbnails']
  if (typeof t === 'object' && t !== null) {
    const o = t as Record<string, unknown>
    const sprites = o['sprites'] ?? []
    if (!Array.isArray(sprites)) bad('result.thumbnails.sprites must be an array')
    thumbnails = {
      poster: optString(o['poster'], 'result.thumbnails.poster') ?? null,
      sprites: sprites.map((s, i) => reqString(s, `result.thumbnails.sprites[${i}]`)),
      vtt: optString(o['vtt'], 'result.thumbnails.vtt') ?? null,
    }
  }
  return { durationS, renditions, thumbnails }
}

export function parseCompleteRequest(body: Record<string, unknown>): CompleteRequest {
  return { workerId: parseWorkerId(body['workerId']), result: parseJobResult(body['result']) }
}

export function parseFailRequest(body: Record<string, unknown>): FailRequest {
  const workerId = parseWorkerId(body['workerId'])
  const err = object(body['error'], 'error')
  return {
    workerId,
    error: {
      code: reqString(err['code'], 'error.code', 128),
      message: reqString(err['message'] ?? '', 'error.message', 2000),
      isRetryable: err['isRetryable'] === true,
    },
  }
}

// ---- a job claimed from Kafka (bus kind kafka) -----------------------------------------------

/**
 * `POST /v1/jobs/:id/lease`: a transcoder took this job from the Kafka bus and tells the origin,
 * which records the lease (who may download the source, write outputs and finish it) and moves
 * the video to processing. `attempt` is the bus's count of claims, 1 on the first.
 */
export interface LeaseRequest {
  workerId: string
  leaseMs?: number
  attempt: number
}

/** → 200: `job` is what to run, or null when there is nothing to run (the job is settled or its video gone): settle it on the bus. */
export interface LeaseResponse {
  job: ClaimedJob | null
}

export function parseLeaseRequest(body: Record<string, unknown>): Required<LeaseRequest> {
  return {
    workerId: parseWorkerId(body['workerId']),
    leaseMs: parseLeaseMs(body['leaseMs']),
    attempt: Math.round(reqNumber(body['attempt'], 'attempt', 1, 1_000_000)),
  }
}

export function parseDirectRequest(body: Record<string, unknown>): DirectRequest {
  const workerId = parseWorkerId(body['workerId'])
  if (body['source'] === true) return { workerId, source: true }
  const o = object(body['output'], 'output')
  return {
    workerId,
    output: {
      key: reqString(o['key'], 'output.key'),
      contentType: reqString(o['contentType'], 'output.contentType', 256),
    },
  }
}

// ---- captions (origin → worker) ---------------------------------------------------------------

/** One caption file attached to the job's video: WebVTT as the origin stored it. */
export interface JobCaption {
  /** BCP-47. */
  language: string
  vtt: string
}

/** `GET /v1/jobs/:id/captions`: every caption file of the job's video. */
export interface CaptionsResponse {
  captions: JobCaption[]
}

export function parseCaptionsResponse(v: unknown): CaptionsResponse {
  const o = object(v, 'captions response')
  if (!Array.isArray(o['captions'])) bad('captions must be an array')
  return {
    captions: (o['captions'] as unknown[]).map((x, i) => {
      const c = object(x, `captions[${i}]`)
      const language = reqString(c['language'], `captions[${i}].language`, 35)
      if (!/^[A-Za-z0-9-]+$/.test(language)) bad(`captions[${i}].language must be a language tag`)
      return { language, vtt: reqString(c['vtt'], `captions[${i}].vtt`, 8 * 1024 * 1024) }
    }),
  }
}
