// `vcdn upload` straight into the origin's S3 bucket (docs/architecture.md §7.2): the origin
// created a multipart upload and hands out presigned part URLs; this sends the missing parts
// (a few at a time, each retried), then asks the origin to complete. Resuming is asking the parts
// route again: it lists what the store already has, with fresh URLs for the rest.
import { open } from 'node:fs/promises'

/** The caller's credential (the origin's URL comes in partsUrl). */
interface ApiTarget {
  token: string
}

interface PartUrl {
  n: number
  method: 'PUT'
  url: string
  headers: Record<string, string>
  expiresAtMs: number
}

interface PartsAnswer {
  size: number
  partSize: number
  partCount: number
  isComplete: boolean
  parts: { n: number; etag: string; size: number }[]
  urls: PartUrl[]
}

const PARALLEL_PARTS = 3
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10_000]

async function getParts(
  target: ApiTarget,
  partsUrl: string,
  from = 1,
): Promise<{ status: number; body: PartsAnswer | null }> {
  const res = await fetch(`${partsUrl}?from=${from}`, { headers: { authorization: `Bearer ${target.token}` } })
  const text = await res.text()
  if (res.status !== 200) return { status: res.status, body: null }
  return { status: 200, body: JSON.parse(text) as PartsAnswer }
}

/** Bytes the store already has of a remembered direct upload, or null when it is gone. */
export async function storedBytes(target: ApiTarget, partsUrl: string): Promise<number | null> {
  const { body } = await getParts(target, partsUrl)
  if (body === null || body.isComplete) return null
  return body.parts.reduce((sum, p) => sum + p.size, 0)
}

/** Sends every part the store lacks, then completes; `onProgress` gets the bytes the store holds. */
export async function uploadDirect(
  target: ApiTarget,
  file: string,
  size: number,
  partsUrl: string,
  opts: { onProgress?: (bytes: number) => void } = {},
): Promise<void> {
  const first = await getParts(target, partsUrl)
  if (first.body === null) throw new Error(`GET ${partsUrl}: ${first.status}`)
  const { partSize, partCount } = first.body
  if (first.body.size !== size) throw new Error(`the upload is for ${first.body.size} bytes, the file has ${size}`)
  const etags = new Map(first.body.parts.map((p) => [p.n, p.etag]))
  let done = first.body.parts.reduce((sum, p) => sum + p.size, 0)
  opts.onProgress?.(done)
  const fh = await open(file, 'r')
  try {
    let urls = first.body.urls
    // Each round sends the URLs of one answer (≤ 100 parts); the next answer starts past them.
    for (let round = 0; etags.size < partCount && round <= partCount; round++) {
      if (urls.length === 0) {
        const next = await getParts(target, partsUrl, nextMissing(etags, partCount))
        if (next.body === null) throw new Error(`GET ${partsUrl}: ${next.status}`)
        for (const p of next.body.parts) etags.set(p.n, p.etag)
        urls = next.body.urls
        if (urls.length === 0) break
      }
      const queue = urls.filter((u) => !etags.has(u.n))
      urls = []
      const worker = async (): Promise<void> => {
        for (let u = queue.shift(); u !== undefined; u = queue.shift()) {
          const start = (u.n - 1) * partSize
          const length = Math.min(partSize, size - start)
          const bytes = Buffer.alloc(length)
          const { bytesRead } = await fh.read(bytes, 0, length, start)
          if (bytesRead !== length) throw new Error(`${file} changed while uploading`)
          etags.set(u.n, await sendPart(u, bytes))
          done += length
          opts.onProgress?.(done)
        }
      }
      await Promise.all(Array.from({ length: PARALLEL_PARTS }, worker))
    }
  } finally {
    await fh.close()
  }
  if (etags.size < partCount) throw new Error(`only ${etags.size} of ${partCount} parts could be sent`)
  const parts = [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([n, etag]) => ({ n, etag }))
  const completeUrl = partsUrl.replace(/\/parts$/, '/complete')
  const res = await fetch(completeUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ parts }),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`POST ${completeUrl}: ${res.status} ${text.slice(0, 300)}`)
}

function nextMissing(etags: ReadonlyMap<number, string>, partCount: number): number {
  for (let n = 1; n <= partCount; n++) if (!etags.has(n)) return n
  return partCount + 1
}

/** One part to the store, retried over network failures and 5xx; its ETag. */
async function sendPart(u: PartUrl, bytes: Buffer): Promise<string> {
  let last = ''
  for (const delayMs of RETRY_DELAYS_MS) {
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs))
    try {
      const res = await fetch(u.url, { method: 'PUT', headers: u.headers, body: new Uint8Array(bytes) })
      const text = await res.text()
      const etag = res.headers.get('etag')
      if (res.status === 200 && etag !== null) return etag
      last = `${res.status} ${/<Code>([A-Za-z]{1,64})<\/Code>/.exec(text)?.[1] ?? ''}`
      if (res.status < 500) break // refused (expired URL, wrong signature): a retry would be too
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    }
  }
  throw new Error(`part ${u.n}: ${last}`)
}
