// Direct-to-store uploads with the S3 store (docs/architecture.md §7.2): beside tus, a video's source
// can go straight into the bucket as an S3 multipart upload whose parts the client sends with
// presigned UploadPart URLs; the origin creates the upload, hands out part URLs, lists the parts the
// store has (resume) and completes it, then takes the same path as a finished tus upload (probe,
// `uploaded`, transcode queued). The bytes never cross the origin. Owned by the origin process; the
// table `s3_uploads` is this module's (one multipart upload per video, created here).
import { VcdnError } from '../../shared/errors/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { DirectStore, PresignedRequest, UploadedPart } from '../../shared/store/index.js'
import type { MetadataDb } from './db.js'
import type { UploadVerdict } from './probe-upload.js'
import { sourceKey } from './uploads.js'
import { ERRORS } from '../../shared/errors/index.js'
import type { VideoLifecycle } from './videos.js'

const MIB = 1024 * 1024
export const DEFAULT_PART_BYTES = 16 * MIB
/** S3: every part but the last at least 5 MiB, at most 5 GiB, at most 10,000 parts. */
export const MIN_PART_BYTES = 5 * MIB
export const MAX_PART_BYTES = 5 * 1024 * MIB
export const MAX_PARTS = 10_000
/** Part URLs per answer: a 10,000-part upload is asked for in pages, not one 6 MB answer. */
export const MAX_URLS_PER_ANSWER = 100
/** A part URL's life; a client past it asks the parts route again for fresh ones. */
const PART_URL_TTL_S = 3600
/** The probe reads the first second through a presigned GET (ffprobe/ffmpeg read ranges of it). */
const PROBE_URL_TTL_S = 900

export interface S3UploadsOptions {
  meta: MetadataDb
  videos: VideoLifecycle
  store: DirectStore
  log: Logger
  now: () => number
  ttlMs: number
  maxBytes: number
  /** Asked about the completed source (by a presigned URL) before the video is queued; none: no check. */
  probe?: ((pathOrUrl: string) => Promise<UploadVerdict>) | undefined
}

export interface S3Upload {
  videoId: string
  owner: string
  s3UploadId: string
  size: number
  partBytes: number
  partCount: number
  createdAtMs: number
  expiresAtMs: number
  completedAtMs: number | null
}

export type PartUrl = PresignedRequest & { n: number }

interface Row {
  video_id: string
  owner: string
  s3_upload_id: string
  size_bytes: number
  part_bytes: number
  created_at: number
  expires_at: number
  completed_at: number | null
}

function toUpload(r: Row): S3Upload {
  return {
    videoId: r.video_id,
    owner: r.owner,
    s3UploadId: r.s3_upload_id,
    size: r.size_bytes,
    partBytes: r.part_bytes,
    partCount: partCount(r.size_bytes, r.part_bytes),
    createdAtMs: r.created_at,
    expiresAtMs: r.expires_at,
    completedAtMs: r.completed_at,
  }
}

/** An empty source is one empty part (S3 needs at least one). */
function partCount(size: number, partBytes: number): number {
  return Math.max(1, Math.ceil(size / partBytes))
}

export class S3UploadManager {
  readonly #o: S3UploadsOptions
  #timer: NodeJS.Timeout | null = null
  /** Completions in flight, by video id: a second complete for the same video waits for the first. */
  readonly #completing = new Map<string, Promise<void>>()

  constructor(opts: S3UploadsOptions) {
    for (const k of ['meta', 'videos', 'store', 'log', 'now', 'ttlMs', 'maxBytes'] as const) {
      if (opts[k] === undefined || opts[k] === null) throw new TypeError(`S3UploadManager: options.${k} is required`)
    }
    this.#o = opts
    opts.meta.db.exec(`
      CREATE TABLE IF NOT EXISTS s3_uploads (
        video_id TEXT PRIMARY KEY REFERENCES videos (id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        s3_upload_id TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        part_bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        completed_at INTEGER
      );
      CREATE INDEX IF NOT EXISTS s3_uploads_expires ON s3_uploads (expires_at) WHERE completed_at IS NULL;
    `)
  }

  get(videoId: string): S3Upload | null {
    const row = this.#o.meta.db.prepare(`SELECT * FROM s3_uploads WHERE video_id = ?`).get(videoId) as Row | undefined
    return row === undefined ? null : toUpload(row)
  }

  /** Part size for `size` bytes: the asked one (clamped to S3's bounds), grown until ≤ MAX_PARTS parts. */
  static partBytesFor(size: number, asked: number | undefined): number {
    let part = Math.min(MAX_PART_BYTES, Math.max(MIN_PART_BYTES, asked ?? DEFAULT_PART_BYTES))
    const least = Math.ceil(size / MAX_PARTS)
    if (part < least) part = Math.ceil(least / MIB) * MIB
    return part
  }

  /** Creates the multipart upload of a new video's source at its final key. */
  async create(videoId: string, owner: string, size: number, askedPartBytes: number | undefined): Promise<S3Upload> {
    if (size > this.#o.maxBytes) throw new VcdnError('ERR_UPLOAD_TOO_LARGE')
    const partBytes = S3UploadManager.partBytesFor(size, askedPartBytes)
    const s3UploadId = await this.#o.store.createMultipart(sourceKey(videoId), {
      contentType: 'application/octet-stream',
    })
    const now = this.#o.now()
    this.#o.meta.db
      .prepare(
        `INSERT INTO s3_uploads (video_id, owner, s3_upload_id, size_bytes, part_bytes, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(videoId, owner, s3UploadId, size, partBytes, now, now + this.#o.ttlMs)
    return this.get(videoId) as S3Upload
  }

  /** Presigned UploadPart requests for parts `from`.. (at most `limit`), skipping `except`. */
  async partUrls(
    u: S3Upload,
    from: number,
    limit: number,
    except: ReadonlySet<number> = new Set(),
  ): Promise<PartUrl[]> {
    const out: PartUrl[] = []
    const key = sourceKey(u.videoId)
    for (let n = Math.max(1, from); n <= u.partCount && out.length < Math.min(limit, MAX_URLS_PER_ANSWER); n++) {
      if (except.has(n)) continue
      out.push({ n, ...(await this.#o.store.presignPart(key, u.s3UploadId, n, { expiresInS: PART_URL_TTL_S })) })
    }
    return out
  }

  /** What the store has (ListParts), and fresh URLs for missing parts; the upload lives on (expiry renewed). */
  async parts(u: S3Upload, from: number, limit: number): Promise<{ parts: UploadedPart[]; urls: PartUrl[] }> {
    if (u.completedAtMs !== null) return { parts: [], urls: [] }
    const parts = await this.#o.store.listParts(sourceKey(u.videoId), u.s3UploadId)
    this.#o.meta.db
      .prepare(`UPDATE s3_uploads SET expires_at = ? WHERE video_id = ?`)
      .run(this.#o.now() + this.#o.ttlMs, u.videoId)
    const urls = await this.partUrls(u, from, limit, new Set(parts.map((p) => p.n)))
    return { parts, urls }
  }

  /**
   * Completes the upload from the client's part list (every part 1..partCount, each ETag as the
   * store listed it, sizes adding up to the declared size), then probes the source and queues the
   * transcode. A repeat after success answers the same; a repeat after a crash between the store's
   * completion and the video's change finishes the change.
   */
  async complete(u: S3Upload, claimed: readonly { n: number; etag: string }[]): Promise<void> {
    const running = this.#completing.get(u.videoId)
    if (running !== undefined) {
      await running
      return
    }
    const p = this.#complete(u, claimed)
    this.#completing.set(u.videoId, p)
    try {
      await p
    } finally {
      this.#completing.delete(u.videoId)
    }
  }

  async #complete(u: S3Upload, claimed: readonly { n: number; etag: string }[]): Promise<void> {
    if (u.completedAtMs !== null) return
    const key = sourceKey(u.videoId)
    const existing = await this.#o.store.head(key)
    if (existing === null || existing.size !== u.size) {
      const listed = new Map((await this.#o.store.listParts(key, u.s3UploadId)).map((p) => [p.n, p]))
      if (claimed.length !== u.partCount) {
        throw new VcdnError('ERR_STORE_MULTIPART', `${claimed.length} parts named, ${u.partCount} expected`)
      }
      let total = 0
      for (const [i, part] of claimed.entries()) {
        const have = listed.get(part.n)
        if (part.n !== i + 1 || have === undefined || unquote(have.etag) !== unquote(part.etag)) {
          throw new VcdnError('ERR_STORE_MULTIPART', `part ${part.n} is not in the store as named`)
        }
        total += have.size
      }
      if (total !== u.size) throw new VcdnError('ERR_STORE_MULTIPART', `parts hold ${total} bytes, not ${u.size}`)
      await this.#o.store.completeMultipart(key, u.s3UploadId, claimed)
    }
    // What the probe found decides split or whole (split-plan.ts); unknown without a probe.
    let probed: { durationS: number; audioStreams: number; isVariableFrameRate: boolean } | null = null
    if (this.#o.probe !== undefined) {
      const url = (await this.#o.store.presignGet(key, { expiresInS: PROBE_URL_TTL_S })).url
      const verdict = await this.#o.probe(url)
      if (!verdict.isVideo) {
        const shown = { code: verdict.code, message: `${ERRORS[verdict.code].message}: ${verdict.reason}` }
        this.#o.videos.rejected(u.videoId, { uploadId: u.s3UploadId, sha256: '' }, shown)
        this.#markCompleted(u.videoId)
        await this.#o.store.delete(key)
        this.#o.log.info(
          { videoId: u.videoId, code: verdict.code, reason: verdict.reason },
          'direct upload refused by the probe',
        )
        return
      }
      const { durationS, audioStreams, isVariableFrameRate } = verdict
      probed = { durationS, audioStreams, isVariableFrameRate }
    }
    // The SHA-256 of the bytes is unknown here (the origin never reads them): '' as for no digest.
    await this.#o.videos.uploaded(u.videoId, { uploadId: u.s3UploadId, sha256: '', sourceKey: key, ...probed })
    this.#markCompleted(u.videoId)
    this.#o.log.info(
      { videoId: u.videoId, bytes: u.size, parts: u.partCount },
      'direct upload complete, transcode queued',
    )
  }

  #markCompleted(videoId: string): void {
    this.#o.meta.db.prepare(`UPDATE s3_uploads SET completed_at = ? WHERE video_id = ?`).run(this.#o.now(), videoId)
  }

  /** Aborts the video's unfinished multipart upload (the video is being deleted); best effort. */
  async abortOfVideo(videoId: string): Promise<void> {
    const u = this.get(videoId)
    if (u === null) return
    if (u.completedAtMs === null) await this.#o.store.abortMultipart(sourceKey(videoId), u.s3UploadId)
    this.#o.meta.db.prepare(`DELETE FROM s3_uploads WHERE video_id = ?`).run(videoId)
  }

  /** Aborts unfinished uploads past their expiry (their parts go); returns how many went. */
  async sweep(nowMs = this.#o.now()): Promise<number> {
    const expired = (
      this.#o.meta.db
        .prepare(`SELECT * FROM s3_uploads WHERE completed_at IS NULL AND expires_at <= ? LIMIT 1000`)
        .all(nowMs) as Row[]
    ).map(toUpload)
    let removed = 0
    for (const u of expired) {
      if (this.#completing.has(u.videoId)) continue
      await this.abortOfVideo(u.videoId)
      removed++
    }
    if (removed > 0) this.#o.log.info({ removed }, 'expired direct uploads aborted')
    return removed
  }

  /** Sweep every ttl/4 (at most every minute); the timer never keeps the process up. */
  startSweeper(): void {
    const everyMs = Math.max(1000, Math.min(60_000, Math.floor(this.#o.ttlMs / 4)))
    this.#timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.#o.log.error({ err }, 'direct upload sweep failed'))
    }, everyMs)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await Promise.allSettled([...this.#completing.values()])
  }
}

export type UploadProtocol = 'tus' | 's3-multipart'
const PROTOCOLS: readonly UploadProtocol[] = ['tus', 's3-multipart']

/** The first protocol of the client's list the origin offers; tus when none is asked. */
export function uploadProtocol(raw: unknown, isDirectOffered: boolean): UploadProtocol {
  if (raw === undefined || raw === null) return 'tus'
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new VcdnError('ERR_API_BODY', 'upload must be an object')
  const asked = (raw as Record<string, unknown>)['protocols'] ?? ['tus']
  if (
    !Array.isArray(asked) ||
    asked.length === 0 ||
    asked.length > 4 ||
    !asked.every((p: unknown) => PROTOCOLS.includes(p as UploadProtocol))
  ) {
    throw new VcdnError('ERR_API_BODY', `upload.protocols must list some of ${PROTOCOLS.join(', ')}`)
  }
  for (const p of asked as UploadProtocol[]) {
    if (p === 'tus' || isDirectOffered) return p
  }
  throw new VcdnError('ERR_STORE_NOT_DIRECT')
}

/** The upload part of an answer: sizes, the first page of part URLs and where to go next. */
export async function multipartView(
  u: S3Upload,
  s3Uploads: S3UploadManager,
  offers: readonly string[],
): Promise<Record<string, unknown>> {
  return {
    protocol: 's3-multipart',
    offers,
    size: u.size,
    partSize: u.partBytes,
    partCount: u.partCount,
    expiresAtMs: u.expiresAtMs,
    urls: await s3Uploads.partUrls(u, 1, MAX_URLS_PER_ANSWER),
    partsUrl: `/v1/videos/${u.videoId}/upload/parts`,
    completeUrl: `/v1/videos/${u.videoId}/upload/complete`,
  }
}

function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, '')
}
