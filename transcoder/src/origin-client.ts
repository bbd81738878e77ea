// The worker side of the origin's job bus (docs/architecture.md §7.3, §9): claim, heartbeat,
// source download, output upload, complete, fail — over HTTP with a worker JWT, so a fleet can run
// on other machines. The bodies are the worker wire protocol of shared/bus (wire.ts), the types the
// origin parses them with. The Kafka bus will implement the same JobSource.
import { createWriteStream } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type {
  ClaimedJob,
  ClaimRequest,
  ClaimResponse,
  CompleteRequest,
  DirectRequest,
  DirectResponse,
  FailRequest,
  HeartbeatRequest,
  JobError,
  JobResult,
  LeaseRequest,
  LeaseResponse,
} from '../../shared/bus/index.js'
import { parseCaptionsResponse } from '../../shared/bus/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import { UpstreamClient } from '../../shared/upstream/index.js'
import type { CaptionFile } from './captions.js'

export interface JobSource {
  claim(leaseMs: number): Promise<ClaimedJob | null>
  /** false when the lease is lost (another worker has the job now). */
  heartbeat(jobId: string, leaseMs: number, progress: number): Promise<boolean>
  downloadSource(jobId: string, toPath: string, signal: AbortSignal): Promise<number>
  /** An intermediate object of the job's video (a chunk, for a stitch job; docs/architecture.md §8). */
  downloadWork(jobId: string, key: string, toPath: string, signal: AbortSignal): Promise<number>
  /** Caption files attached to the job's video, written into `dir` (absent: a source without any). */
  downloadCaptions?(jobId: string, dir: string, signal: AbortSignal): Promise<CaptionFile[]>
  uploadOutput(jobId: string, key: string, path: string, contentType: string): Promise<void>
  complete(jobId: string, result: JobResult): Promise<void>
  fail(jobId: string, error: JobError): Promise<void>
  close(): Promise<void>
}

export class HttpJobSource implements JobSource {
  #client: UpstreamClient
  #auth: Record<string, string>
  #workerId: string

  #completeRetryDelaysMs: readonly number[]
  /**
   * Whether the origin's store takes direct (presigned) requests: unknown until the first answer,
   * then fixed (an origin does not change its store while running).
   */
  #isDirect: boolean | null = null

  constructor(opts: { origin: string; token: string; workerId: string; completeRetryDelaysMs?: readonly number[] }) {
    if (typeof opts.token !== 'string' || opts.token === '') throw new TypeError('opts.token must be a JWT')
    if (typeof opts.workerId !== 'string' || opts.workerId === '') throw new TypeError('opts.workerId must be set')
    this.#completeRetryDelaysMs = opts.completeRetryDelaysMs ?? [1000, 2000, 4000, 8000, 16_000]
    this.#client = new UpstreamClient({ baseUrl: opts.origin, connections: 8, bodyTimeoutMs: 120_000 })
    this.#auth = { authorization: `Bearer ${opts.token}` }
    this.#workerId = opts.workerId
  }

  async #json(method: 'POST' | 'GET', path: string, body?: unknown): Promise<{ status: number; value: unknown }> {
    const res = await this.#client.request(path, {
      method,
      headers: { ...this.#auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })
    let text = ''
    for await (const chunk of res.body) text += Buffer.from(chunk).toString('utf8')
    let value: unknown = null
    try {
      value = text === '' ? null : JSON.parse(text)
    } catch {
      value = null
    }
    return { status: res.status, value }
  }

  #fail(what: string, status: number, value: unknown): never {
    const code = (value as { error?: { code?: string } } | null)?.error?.code ?? `HTTP ${status}`
    throw new VcdnError('ERR_UPSTREAM_STATUS', `${what}: ${code}`)
  }

  async claim(leaseMs: number): Promise<ClaimedJob | null> {
    const body: ClaimRequest = { workerId: this.#workerId, leaseMs }
    const { status, value } = await this.#json('POST', '/v1/jobs/claim', body)
    if (status !== 200) this.#fail('claim', status, value)
    return (value as ClaimResponse).job
  }

  async heartbeat(jobId: string, leaseMs: number, progress: number): Promise<boolean> {
    const body: HeartbeatRequest = { workerId: this.#workerId, leaseMs, progress }
    const { status, value } = await this.#json('POST', `/v1/jobs/${jobId}/heartbeat`, body)
    if (status === 409) return false
    if (status !== 200) this.#fail('heartbeat', status, value)
    return true
  }

  /**
   * The presigned request for a source or an output when the origin's store is S3 (wire.ts
   * DirectRequest), or null: the origin carries the bytes itself.
   */
  async #direct(jobId: string, what: Omit<DirectRequest, 'workerId'>): Promise<DirectResponse['request'] | null> {
    if (this.#isDirect === false) return null
    const body: DirectRequest = { workerId: this.#workerId, ...what }
    const { status, value } = await this.#json('POST', `/v1/jobs/${jobId}/direct`, body)
    const code = (value as { error?: { code?: string } } | null)?.error?.code
    // An origin from before the direct route answers a plain 404 ERR_NOT_FOUND.
    if (status === 404 && (code === 'ERR_STORE_NOT_DIRECT' || code === 'ERR_NOT_FOUND')) {
      this.#isDirect = false
      return null
    }
    if (status !== 200) this.#fail('direct request', status, value)
    this.#isDirect = true
    return (value as DirectResponse).request
  }

  async downloadSource(jobId: string, toPath: string, signal: AbortSignal): Promise<number> {
    const direct = await this.#direct(jobId, { source: true })
    if (direct !== null) return downloadDirect(direct, toPath, signal)
    return this.#download(`/v1/jobs/${jobId}/source`, 'source download', toPath, signal)
  }

  downloadWork(jobId: string, key: string, toPath: string, signal: AbortSignal): Promise<number> {
    return this.#download(`/v1/jobs/${jobId}/work/${key}`, `download ${key}`, toPath, signal)
  }

  async #download(path: string, what: string, toPath: string, signal: AbortSignal): Promise<number> {
    const res = await this.#client.request(`${path}?workerId=${encodeURIComponent(this.#workerId)}`, {
      method: 'GET',
      headers: this.#auth,
      signal,
    })
    if (res.status !== 200) {
      let text = ''
      for await (const chunk of res.body) text += Buffer.from(chunk).toString('utf8')
      this.#fail(what, res.status, safeJson(text))
    }
    let bytes = 0
    const counted = Readable.from(
      (async function* () {
        for await (const chunk of res.body) {
          bytes += chunk.byteLength
          yield chunk
        }
      })(),
    )
    await pipeline(counted, createWriteStream(toPath), { signal })
    return bytes
  }

  async downloadCaptions(jobId: string, dir: string, signal: AbortSignal): Promise<CaptionFile[]> {
    const res = await this.#client.request(
      `/v1/jobs/${jobId}/captions?workerId=${encodeURIComponent(this.#workerId)}`,
      { method: 'GET', headers: this.#auth, signal },
    )
    let text = ''
    for await (const chunk of res.body) text += Buffer.from(chunk).toString('utf8')
    if (res.status !== 200) this.#fail('captions download', res.status, safeJson(text))
    const files: CaptionFile[] = []
    for (const [i, c] of parseCaptionsResponse(safeJson(text)).captions.entries()) {
      const path = join(dir, `caption_${i}.vtt`)
      await writeFile(path, c.vtt)
      files.push({ path, language: c.language })
    }
    return files
  }

  async uploadOutput(jobId: string, key: string, path: string, contentType: string): Promise<void> {
    // Outputs are segments and playlists (a few MB at most): one buffer per file is fine.
    const body = await readFile(path)
    const direct = await this.#direct(jobId, { output: { key, contentType } })
    if (direct !== null) {
      const res = await fetch(direct.url, { method: 'PUT', headers: direct.headers, body: new Uint8Array(body) })
      const text = await res.text()
      if (res.status !== 200 && res.status !== 201) {
        throw new VcdnError('ERR_UPSTREAM_STATUS', `direct upload ${key}: HTTP ${res.status} ${s3Code(text)}`)
      }
      return
    }
    const res = await this.#client.request(
      `/v1/jobs/${jobId}/outputs/${key}?workerId=${encodeURIComponent(this.#workerId)}`,
      { method: 'PUT', headers: { ...this.#auth, 'content-type': contentType }, body },
    )
    let text = ''
    for await (const chunk of res.body) text += Buffer.from(chunk).toString('utf8')
    if (res.status !== 201 && res.status !== 200) this.#fail(`upload ${key}`, res.status, safeJson(text))
  }

  /**
   * Retried while the origin is unreachable or answers 5xx (completeRetryDelaysMs): completing a done
   * job is idempotent for its holder, and the repeat is what marks the video ready when the origin
   * died between settling the job and marking the video (docs/architecture.md §7.3).
   */
  async complete(jobId: string, result: JobResult): Promise<void> {
    const body: CompleteRequest = { workerId: this.#workerId, result }
    for (let attempt = 0; ; attempt++) {
      const delayMs = this.#completeRetryDelaysMs[attempt]
      let answer: { status: number; value: unknown }
      try {
        answer = await this.#json('POST', `/v1/jobs/${jobId}/complete`, body)
      } catch (err) {
        if (delayMs === undefined) throw err
        await sleep(delayMs)
        continue
      }
      if (answer.status === 200) return
      if (answer.status < 500 || delayMs === undefined) this.#fail('complete', answer.status, answer.value)
      await sleep(delayMs)
    }
  }

  async fail(jobId: string, error: JobError): Promise<void> {
    await this.failJob(jobId, error)
  }

  /** fail(), answering what the origin made of it: `queued` (retried after a backoff) or `failed` (final). */
  async failJob(jobId: string, error: JobError): Promise<{ status: string }> {
    const body: FailRequest = { workerId: this.#workerId, error }
    const { status, value } = await this.#json('POST', `/v1/jobs/${jobId}/fail`, body)
    if (status !== 200) this.#fail('fail', status, value)
    return { status: (value as { job?: { status?: string } } | null)?.job?.status ?? 'queued' }
  }

  /**
   * Bus kind kafka: tells the origin this worker took the job from Kafka (attempt: the bus's claim
   * count). The job to run, or null when there is nothing to run (settled, or its video gone).
   */
  async lease(jobId: string, leaseMs: number, attempt: number): Promise<ClaimedJob | null> {
    const body: LeaseRequest = { workerId: this.#workerId, leaseMs, attempt }
    const { status, value } = await this.#json('POST', `/v1/jobs/${jobId}/lease`, body)
    if (status === 404 && (value as { error?: { code?: string } } | null)?.error?.code === 'ERR_JOB_NOT_FOUND')
      return null
    if (status !== 200) this.#fail('lease', status, value)
    return (value as LeaseResponse).job
  }

  close(): Promise<void> {
    return this.#client.close()
  }
}

/** A presigned GET straight from the store (fetch: the URL is not the origin's). */
async function downloadDirect(direct: DirectResponse['request'], toPath: string, signal: AbortSignal): Promise<number> {
  const res = await fetch(direct.url, { method: 'GET', headers: direct.headers, signal })
  if (res.status !== 200 || res.body === null) {
    const text = await res.text()
    throw new VcdnError('ERR_UPSTREAM_STATUS', `direct source download: HTTP ${res.status} ${s3Code(text)}`)
  }
  let bytes = 0
  const body = res.body
  const counted = Readable.from(
    (async function* () {
      for await (const chunk of body) {
        bytes += chunk.byteLength
        yield chunk
      }
    })(),
  )
  await pipeline(counted, createWriteStream(toPath), { signal })
  return bytes
}

/** The <Code> of an S3 error document, for the message (never the whole body). */
function s3Code(text: string): string {
  return /<Code>([A-Za-z0-9]{1,64})<\/Code>/.exec(text)?.[1] ?? ''
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}
