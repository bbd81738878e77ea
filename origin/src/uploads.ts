// Resumable upload storage behind the tus endpoints (api/uploads.ts). An upload's bytes live in
// `<dataDir>/uploads/<uploadId>`, appended to by PATCH requests; the metadata row's offset is the
// truth (only bytes fsync'ed before the row was updated count). Once offset == length the file is
// streamed into the store as `sources/<videoId>/source`, the video becomes `queued` and a
// `transcode` job is enqueued. Owned by the origin process; one writer per upload at a time (lock).
import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ERRORS, hasCode, isNoSpace, VcdnError } from '../../shared/errors/index.js'
import { writeAll } from '../../shared/fs/index.js'
import { sourceStoreKey } from '../../shared/namespace/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { Store } from '../../shared/store/index.js'
import type { MetadataDb, Upload } from './db.js'
import { newId } from './ids.js'
import type { UploadVerdict } from './probe-upload.js'
import type { VideoLifecycle } from './videos.js'

export interface UploadManagerOptions {
  dir: string
  meta: MetadataDb
  /** Asked for the video's status change once the source is in the store. */
  videos: VideoLifecycle
  store: Store
  log: Logger
  now: () => number
  ttlMs: number
  maxBytes: number
  /** Asked about the complete local file before it goes to the store (early rejection); none: no check. */
  probe?: ((path: string) => Promise<UploadVerdict>) | undefined
}

export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'] as const
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number]

const LOCK_WAIT_MS = 5000

export function sourceKey(videoId: string): string {
  return sourceStoreKey(videoId)
}

export class UploadManager {
  readonly #o: UploadManagerOptions
  // uploadId → the in-flight writer's completion; owned by this manager.
  readonly #locks = new Map<string, Promise<void>>()
  /** Background moves into the store, by upload id (one at a time per upload). */
  readonly #finalizing = new Map<string, Promise<void>>()
  #timer: NodeJS.Timeout | null = null

  constructor(opts: UploadManagerOptions) {
    for (const k of ['dir', 'meta', 'videos', 'store', 'log', 'now', 'ttlMs', 'maxBytes'] as const) {
      if (opts[k] === undefined || opts[k] === null) throw new TypeError(`UploadManager: options.${k} is required`)
    }
    this.#o = opts
  }

  async init(): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true })
    // Uploads that got every byte but crashed before reaching the store.
    for (const u of this.#o.meta.unfinalizedUploads()) this.#finalizeInBackground(u)
  }

  /** Sweep abandoned uploads every ttl/4 (at most every minute); the timer never keeps the process up. */
  startSweeper(): void {
    const everyMs = Math.max(1000, Math.min(60_000, Math.floor(this.#o.ttlMs / 4)))
    this.#timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.#o.log.error({ err }, 'upload sweep failed'))
    }, everyMs)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await Promise.allSettled([...this.#finalizing.values()])
  }

  #path(id: string): string {
    return join(this.#o.dir, id)
  }

  /** A new upload for a video; an unfinished earlier upload of the same video is terminated. */
  async create(videoId: string, owner: string, length: number | null, metadata: string): Promise<Upload> {
    if (length !== null && length > this.#o.maxBytes) throw new VcdnError('ERR_UPLOAD_TOO_LARGE')
    for (const old of this.#o.meta.uploadsOfVideo(videoId)) {
      if (old.completedAtMs === null) await this.terminate(old.id)
    }
    const id = newId()
    const fh = await open(this.#path(id), 'wx')
    await fh.close()
    const now = this.#o.now()
    return this.#o.meta.createUpload({
      id,
      videoId,
      owner,
      length,
      metadata,
      nowMs: now,
      expiresAtMs: now + this.#o.ttlMs,
    })
  }

  get(id: string): Upload | null {
    return this.#o.meta.getUpload(id)
  }

  /** Wait (bounded) until no PATCH is writing this upload, so the offset read next is settled. */
  async settled(id: string): Promise<void> {
    const held = this.#locks.get(id)
    if (held === undefined) return
    await Promise.race([held, new Promise((r) => setTimeout(r, LOCK_WAIT_MS).unref())])
  }

  /**
   * Append a PATCH body at `expectedOffset`. Every byte received is kept, even when the client
   * goes away mid-body (it is fsync'ed and the offset recorded before the error propagates);
   * a body with more bytes than the upload may hold is refused whole (413, nothing kept).
   */
  async append(
    id: string,
    expectedOffset: number,
    body: AsyncIterable<Uint8Array>,
    opts: { declaredLength: number | null; checksum: { algorithm: ChecksumAlgorithm; digest: Buffer } | null },
  ): Promise<Upload> {
    await this.settled(id)
    if (this.#locks.has(id)) throw new VcdnError('ERR_UPLOAD_LOCKED')
    let release!: () => void
    this.#locks.set(id, new Promise<void>((r) => (release = r)))
    try {
      return await this.#append(id, expectedOffset, body, opts)
    } finally {
      this.#locks.delete(id)
      release()
    }
  }

  async #append(
    id: string,
    expectedOffset: number,
    body: AsyncIterable<Uint8Array>,
    opts: { declaredLength: number | null; checksum: { algorithm: ChecksumAlgorithm; digest: Buffer } | null },
  ): Promise<Upload> {
    let upload = this.#o.meta.getUpload(id)
    if (upload === null) throw new VcdnError('ERR_UPLOAD_NOT_FOUND')
    if (upload.completedAtMs !== null || upload.offset !== expectedOffset) throw new VcdnError('ERR_UPLOAD_OFFSET')
    // tus creation-defer-length: the length arrives with a PATCH and may not change afterwards. It
    // is recorded with the offset below, so a refused PATCH does not fix it either.
    const isLengthDeclared = upload.length === null && opts.declaredLength !== null
    if (isLengthDeclared && opts.declaredLength !== null) {
      if (opts.declaredLength > this.#o.maxBytes || opts.declaredLength < upload.offset)
        throw new VcdnError('ERR_UPLOAD_TOO_LARGE')
      upload = { ...upload, length: opts.declaredLength }
    }
    const limit = upload.length ?? this.#o.maxBytes
    const start = upload.offset
    let offset = start
    let isOverflow = false
    const hash: Hash | null = opts.checksum === null ? null : createHash(opts.checksum.algorithm)
    // O_APPEND: every write lands at the end; the truncate first drops bytes a crash left past the
    // recorded offset (written, never acknowledged).
    const fh = await open(this.#path(id), 'a')
    let bodyError: Error | null = null
    try {
      await fh.truncate(start)
      try {
        for await (const chunk of body) {
          const room = limit - offset
          const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
          if (part.byteLength > 0) {
            await writeAll(fh, part)
            hash?.update(part)
            offset += part.byteLength
          }
          if (part.byteLength < chunk.byteLength) {
            isOverflow = true
            break
          }
        }
      } catch (err) {
        // A full disk keeps what was written (the offset below); the client resumes later (507).
        if (isNoSpace(err)) bodyError = new VcdnError('ERR_STORE_FULL', 'upload bytes', { cause: err })
        else bodyError = err instanceof Error ? err : new Error(String(err))
      }
      if (isOverflow) {
        // A PATCH that carries more than the upload may hold (past Upload-Length, or past maxBytes
        // while the length is deferred) is refused as a whole (413): keeping its first bytes would
        // complete the upload with a body the client did not mean, and the sweep would finalize
        // and transcode it.
        await fh.truncate(start)
        await fh.sync()
        throw new VcdnError('ERR_UPLOAD_TOO_LARGE', 'more bytes than the upload may hold')
      }
      if (
        hash !== null &&
        opts.checksum !== null &&
        bodyError === null &&
        !hash.digest().equals(opts.checksum.digest)
      ) {
        // tus checksum extension: a mismatching PATCH is discarded as a whole (status 460).
        await fh.truncate(start)
        await fh.sync()
        throw new VcdnError('ERR_UPLOAD_CHECKSUM')
      }
      if (hash !== null && bodyError !== null) {
        // An unfinished body cannot be verified against its checksum: keep nothing of it.
        await fh.truncate(start)
        offset = start
      }
      await fh.sync()
    } finally {
      await fh.close()
    }
    const now = this.#o.now()
    try {
      const length = upload.length
      this.#o.meta.recordUploadProgress({
        id,
        videoId: upload.videoId,
        offset,
        expiresAtMs: now + this.#o.ttlMs,
        declaredLength: isLengthDeclared ? length : null,
        videoProgress: length !== null && length > 0 ? offset / length : null,
        nowMs: now,
      })
    } catch (err) {
      // The metadata disk is full: these bytes are not acknowledged; the next PATCH starts at the
      // last recorded offset (and truncates the file back to it).
      if (isNoSpace(err)) throw new VcdnError('ERR_STORE_FULL', 'upload offset', { cause: err })
      throw err
    }
    const updated = { ...upload, offset, expiresAtMs: now + this.#o.ttlMs }
    if (bodyError !== null) throw bodyError
    if (updated.length !== null && offset === updated.length) this.#finalizeInBackground(updated)
    return updated
  }

  /** Move a complete upload into the store; a failure (full store, …) is retried by the sweeper. */
  #finalizeInBackground(upload: Upload): void {
    if (this.#finalizing.has(upload.id)) return
    const p = this.#finalize(upload).catch((err: unknown) => {
      this.#o.log.error(
        { err, uploadId: upload.id, videoId: upload.videoId },
        'moving the upload into the store failed; retried by the next sweep',
      )
    })
    this.#finalizing.set(upload.id, p)
    void p.finally(() => this.#finalizing.delete(upload.id))
  }

  /** Wait for background finalizations (tests, close). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#finalizing.values()])
  }

  async #finalize(upload: Upload): Promise<void> {
    const video = this.#o.meta.getVideo(upload.videoId)
    if (video === null) return
    // The probe's duration decides a whole or a split transcode (./split-plan.ts), its audio streams
    // whether a split has an audio job; unknown without it.
    const accepted =
      this.#o.probe === undefined
        ? { durationS: null, audioStreams: null, isVariableFrameRate: false }
        : await this.#isAccepted(upload)
    if (accepted === null) return
    const key = sourceKey(upload.videoId)
    const hash = createHash('sha256')
    async function* hashed(src: AsyncIterable<Buffer>): AsyncIterable<Uint8Array> {
      for await (const chunk of src) {
        hash.update(chunk)
        yield chunk
      }
    }
    await this.#o.store.put(key, hashed(createReadStream(this.#path(upload.id))), {
      contentType: 'application/octet-stream',
    })
    // Deleted meanwhile: nothing changes (the upload row went with the video).
    await this.#o.videos.uploaded(upload.videoId, {
      uploadId: upload.id,
      sha256: hash.digest('hex'),
      sourceKey: key,
      durationS: accepted.durationS,
      audioStreams: accepted.audioStreams,
      isVariableFrameRate: accepted.isVariableFrameRate,
    })
    await unlinkQuiet(this.#path(upload.id))
    this.#o.log.info(
      { uploadId: upload.id, videoId: upload.videoId, bytes: upload.offset },
      'upload complete, transcode queued',
    )
  }

  /** Probes the local file (uploads are always on the origin's disk, whatever the store); a refused file fails its video and goes. */
  async #isAccepted(
    upload: Upload,
  ): Promise<{ durationS: number; audioStreams: number; isVariableFrameRate: boolean } | null> {
    const path = this.#path(upload.id)
    const verdict = await (this.#o.probe as (path: string) => Promise<UploadVerdict>)(path)
    if (verdict.isVideo) {
      const { durationS, audioStreams, isVariableFrameRate } = verdict
      return { durationS, audioStreams, isVariableFrameRate }
    }
    const hash = createHash('sha256')
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
    const shown = { code: verdict.code, message: `${ERRORS[verdict.code].message}: ${verdict.reason}` }
    this.#o.videos.rejected(upload.videoId, { uploadId: upload.id, sha256: hash.digest('hex') }, shown)
    await unlinkQuiet(path)
    this.#o.log.info(
      {
        uploadId: upload.id,
        videoId: upload.videoId,
        bytes: upload.offset,
        code: verdict.code,
        reason: verdict.reason,
      },
      'upload refused by the probe, nothing queued',
    )
    return null
  }

  /** tus termination: the bytes and the row go. */
  async terminate(id: string): Promise<void> {
    await this.settled(id)
    this.#o.meta.deleteUpload(id)
    await unlinkQuiet(this.#path(id))
  }

  /**
   * Remove unfinished uploads past their expiry (returns how many went) and retry moving complete
   * ones into the store. An upload that has every byte is never expired: only the store's
   * refusal (full, down) keeps it here, and the creator's file must not be lost to that.
   */
  async sweep(nowMs = this.#o.now()): Promise<number> {
    for (const u of this.#o.meta.unfinalizedUploads()) this.#finalizeInBackground(u)
    let removed = 0
    for (const u of this.#o.meta.expiredUploads(nowMs)) {
      if (this.#locks.has(u.id)) continue // a PATCH is writing it right now
      await this.terminate(u.id)
      removed++
    }
    if (removed > 0) this.#o.log.info({ removed }, 'expired uploads removed')
    return removed
  }

  /** Files of every upload of a video (used when the video is deleted). */
  async removeFilesOfVideo(videoId: string): Promise<void> {
    for (const u of this.#o.meta.uploadsOfVideo(videoId)) await unlinkQuiet(this.#path(u.id))
  }
}

async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if (!hasCode(err, 'ENOENT')) throw err
  }
}
