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
  FailRequest,
  HeartbeatRequest,
  JobError,
  JobResult,
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

  async downloadSource(jobId: string, toPath: string, signal: AbortSignal): Promise<number> {
    const res = await this.#client.request(`/v1/jobs/${jobId}/source?workerId=${encodeURIComponent(this.#workerId)}`, {
      method: 'GET',
      headers: this.#auth,
      signal,
    })
    if (res.status !== 200) {
      let text = ''
      for await (const chunk of res.body) text += Buffer.from(chunk).toString('utf8')
      this.#fail('source download', res.status, safeJson(text))
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
    const body: FailRequest = { workerId: this.#workerId, error }
    const { status, value } = await this.#json('POST', `/v1/jobs/${jobId}/fail`, body)
    if (status !== 200) this.#fail('fail', status, value)
  }

  close(): Promise<void> {
    return this.#client.close()
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}
