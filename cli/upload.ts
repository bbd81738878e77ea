// `vcdn upload <file>` and `vcdn status <id>`: a creator's view of the control API. Uploads use
// the tus 1.0 protocol (tus-js-client), so a flaky link resumes where it stopped; across runs, the
// upload URL is remembered per file fingerprint (as tus-js-client's urlStorage does in a browser),
// so running the command again after an interruption resumes into the same video. When the origin
// offers direct-to-store uploads (S3: `s3-multipart` in the create answer), the file goes straight
// to the bucket in parts with presigned URLs instead, resumed the same way (direct-upload.ts).
import { createHash } from 'node:crypto'
import {
  closeSync,
  createReadStream,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import * as tus from 'tus-js-client'
import { storedBytes, uploadDirect } from './direct-upload.js'

export interface ApiTarget {
  origin: string
  token: string
}

interface VideoView {
  id: string
  status: string
  progress?: number
  error?: { code: string; message: string } | null
  durationS?: number | null
  renditions?: { name: string }[]
  playback?: { hls?: string; dash?: string } | null
}

export async function api<T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${target.origin.replace(/\/$/, '')}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${target.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`)
  return JSON.parse(text) as T
}

function bar(fraction: number, width = 30): string {
  const f = Math.max(0, Math.min(1, fraction))
  const full = Math.round(f * width)
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(f * 100).toFixed(1).padStart(5)}%`
}

/** Where `vcdn upload` remembers unfinished uploads: `$XDG_STATE_HOME/vcdn/uploads.json`, else
 * `~/.local/state/vcdn/uploads.json` (XDG Base Directory: state that persists across runs). */
export function defaultUploadStateFile(env: NodeJS.ProcessEnv): string {
  const base =
    env['XDG_STATE_HOME'] !== undefined && env['XDG_STATE_HOME'] !== ''
      ? env['XDG_STATE_HOME']
      : join(homedir(), '.local', 'state')
  return join(base, 'vcdn', 'uploads.json')
}

const EDGE_BYTES = 64 * 1024

/** tus-js-client's fingerprint idea: the same file (size, mtime, first and last 64 KiB) sent to the
 * same origin is the same upload; hashing the ends keeps it cheap for a many-GiB file. */
export function uploadFingerprint(file: string, origin: string): string {
  const { size, mtimeMs } = statSync(file)
  const hash = createHash('sha256')
  const fd = openSync(file, 'r')
  try {
    for (const position of new Set([0, Math.max(0, size - EDGE_BYTES)])) {
      const buf = Buffer.alloc(Math.min(EDGE_BYTES, size))
      const n = readSync(fd, buf, 0, buf.length, position)
      hash.update(buf.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  return `${size}-${Math.trunc(mtimeMs)}-${hash.digest('hex').slice(0, 32)}-${origin.replace(/\/$/, '')}`
}

interface RememberedUpload {
  videoId: string
  /** tus: the upload URL; s3-multipart: the parts URL. */
  uploadUrl: string
  /** Absent in entries written before direct uploads existed: tus. */
  protocol?: 'tus' | 's3-multipart'
  file: string
  createdAtMs: number
}

/** The state file: fingerprint → unfinished upload. Only this process writes it while it runs;
 * each write replaces the file whole (write, then rename) so an interruption never leaves half a file. */
class UploadMemory {
  readonly #file: string
  constructor(file: string) {
    this.#file = file
  }
  #read(): Record<string, RememberedUpload> {
    try {
      const parsed = JSON.parse(readFileSync(this.#file, 'utf8')) as unknown
      return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, RememberedUpload>) : {}
    } catch {
      return {} // missing or unreadable: nothing remembered
    }
  }
  #write(all: Record<string, RememberedUpload>): void {
    mkdirSync(dirname(this.#file), { recursive: true })
    const tmp = `${this.#file}.${process.pid}.tmp`
    writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 })
    renameSync(tmp, this.#file)
  }
  get(fingerprint: string): RememberedUpload | undefined {
    const e = this.#read()[fingerprint]
    return e !== undefined && typeof e.uploadUrl === 'string' && typeof e.videoId === 'string' ? e : undefined
  }
  set(fingerprint: string, entry: RememberedUpload): void {
    this.#write({ ...this.#read(), [fingerprint]: entry })
  }
  remove(fingerprint: string): void {
    const all = this.#read()
    if (!(fingerprint in all)) return
    delete all[fingerprint]
    this.#write(all)
  }
}

/** The tus offset of a remembered upload (HEAD, tus 1.0 §HEAD), or null when it is gone. */
async function remoteOffset(target: ApiTarget, uploadUrl: string): Promise<number | null> {
  const res = await fetch(uploadUrl, {
    method: 'HEAD',
    headers: { authorization: `Bearer ${target.token}`, 'tus-resumable': '1.0.0' },
  })
  const offset = Number(res.headers.get('upload-offset'))
  return res.status === 200 && Number.isInteger(offset) && offset >= 0 ? offset : null
}

/** Creates a video (or, given `stateFile`, resumes the one this file was being uploaded into),
 * uploads the file with tus (resuming over failures), returns the video id. `onVideo` runs as soon
 * as the video exists, before any bytes are sent. */
export async function uploadFile(
  target: ApiTarget,
  file: string,
  opts: {
    title?: string
    showProgress?: boolean
    stateFile?: string
    onVideo?: (id: string, resumedAtBytes: number | null) => void
  } = {},
): Promise<string> {
  const size = statSync(file).size
  const originBase = target.origin.replace(/\/$/, '')
  const memory = opts.stateFile === undefined ? null : new UploadMemory(opts.stateFile)
  const fingerprint = memory === null ? '' : uploadFingerprint(file, originBase)
  let remembered = memory?.get(fingerprint)
  let resumedAt: number | null = null
  if (remembered !== undefined) {
    resumedAt =
      remembered.protocol === 's3-multipart'
        ? await storedBytes(target, remembered.uploadUrl)
        : await remoteOffset(target, remembered.uploadUrl)
  }
  if (remembered !== undefined && resumedAt === null) {
    memory?.remove(fingerprint) // expired, terminated or its video deleted: start afresh
    remembered = undefined
  }
  if (remembered === undefined) {
    const created = await api<{ id: string; upload: { protocol?: string; url?: string; partsUrl?: string } }>(
      target,
      'POST',
      '/v1/videos',
      // Direct to the store if the origin offers it; an origin that does not answers tus.
      { title: opts.title ?? basename(file), size, upload: { protocols: ['s3-multipart', 'tus'] } },
    )
    const isDirect = created.upload.protocol === 's3-multipart'
    remembered = {
      videoId: created.id,
      uploadUrl: `${originBase}${isDirect ? created.upload.partsUrl : created.upload.url}`,
      protocol: isDirect ? 's3-multipart' : 'tus',
      file,
      createdAtMs: Date.now(),
    }
    memory?.set(fingerprint, remembered)
  }
  const { videoId, uploadUrl } = remembered
  opts.onVideo?.(videoId, resumedAt)
  if (remembered.protocol === 's3-multipart') {
    await uploadDirect(target, file, size, uploadUrl, {
      onProgress: (sent) => {
        if (opts.showProgress) process.stderr.write(`\rupload ${bar(sent / size)} ${(sent / 1e6).toFixed(1)} MB`)
      },
    })
    if (opts.showProgress) process.stderr.write('\n')
    memory?.remove(fingerprint)
    return videoId
  }
  await new Promise<void>((resolve, reject) => {
    // Given uploadUrl, tus-js-client asks the offset (HEAD) and sends only the rest.
    const upload = new tus.Upload(createReadStream(file), {
      uploadUrl,
      uploadSize: size,
      chunkSize: 16 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      headers: { authorization: `Bearer ${target.token}` },
      onProgress: (sent, total) => {
        if (opts.showProgress) process.stderr.write(`\rupload ${bar(sent / total)} ${(sent / 1e6).toFixed(1)} MB`)
      },
      onError: reject,
      onSuccess: () => {
        if (opts.showProgress) process.stderr.write('\n')
        resolve()
      },
    })
    upload.start()
  })
  memory?.remove(fingerprint)
  return videoId
}

export async function videoStatus(target: ApiTarget, id: string): Promise<VideoView> {
  return api<VideoView>(target, 'GET', `/v1/videos/${encodeURIComponent(id)}`)
}

/** Polls until ready or failed (bounded by timeoutMs), drawing the job's progress. */
export async function waitReady(
  target: ApiTarget,
  id: string,
  opts: { timeoutMs: number; showProgress?: boolean },
): Promise<VideoView> {
  const deadline = Date.now() + opts.timeoutMs
  for (;;) {
    const v = await videoStatus(target, id)
    if (opts.showProgress) process.stderr.write(`\r${v.status.padEnd(10)} ${bar(v.progress ?? 0)}`)
    if (v.status === 'ready' || v.status === 'failed') {
      if (opts.showProgress) process.stderr.write('\n')
      return v
    }
    if (Date.now() > deadline) throw new Error(`video ${id} is still ${v.status} after ${opts.timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 500))
  }
}
