// `vcdn upload <file>` and `vcdn status <id>`: a creator's view of the control API. Uploads use
// the tus 1.0 protocol (tus-js-client), so a flaky link resumes where it stopped.
import { createReadStream, statSync } from 'node:fs'
import { basename } from 'node:path'
import * as tus from 'tus-js-client'

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

async function api<T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
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

/** Creates a video, uploads the file with tus (resuming over failures), returns the video id. */
export async function uploadFile(
  target: ApiTarget,
  file: string,
  opts: { title?: string; showProgress?: boolean } = {},
): Promise<string> {
  const size = statSync(file).size
  const created = await api<{ id: string; upload: { url: string } }>(target, 'POST', '/v1/videos', {
    title: opts.title ?? basename(file),
    size,
  })
  const uploadUrl = `${target.origin.replace(/\/$/, '')}${created.upload.url}`
  await new Promise<void>((resolve, reject) => {
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
  return created.id
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
