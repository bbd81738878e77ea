// The video lifecycle (docs/architecture.md §7.3): the one place a video's status changes. Each
// change is an event with the states it may start from (VIDEO_EVENTS); the lifecycle reads the
// row, refuses an event the status does not allow (ERR_VIDEO_STATE) and writes the new status with
// what goes with it in one SQLite transaction. An event that makes a job due records it in the
// job outbox inside that transaction (./job-outbox.ts) and hands it to the bus after the commit,
// so the status and its job commit together whichever JobBus the origin runs.
//
//   (create) ─► uploading ─uploaded─► queued ─claimed─► processing ─completed─► ready
//                                       ▲  │              │  ▲ claimed        │
//                                       │  │              │  └─(lease expired,│
//                                       │  │              │     claimed again)│
//                                       │  └──failed──┐   ├─retrying─► queued │
//                                       │             ▼   └─failed──► failed  │
//                                       └───reprocess─── failed | ready ◄─────┘
//   delete: any status → gone (with its renditions, uploads, jobs and unsent outbox rows).
//
// A video that is gone makes every event a no-op returning false: a worker or an upload that
// finishes after its video was deleted changes nothing.
import type { JobBus, JobResult } from '../../shared/bus/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { MetadataDb, Video, VideoStatus } from './db.js'
import { newId } from './ids.js'
import { JobOutbox } from './job-outbox.js'
import { openJobsTable, type JobsTable } from './job-queue.js'
import {
  JOB_KIND_AUDIO,
  JOB_KIND_CHUNK,
  JOB_KIND_STITCH,
  JOB_KIND_TRANSCODE,
  planChunks,
  SplitChunks,
  type ChunkProgress,
  type SplitSettings,
} from './split-plan.js'

export type VideoEvent = 'uploaded' | 'rejected' | 'claimed' | 'completed' | 'retrying' | 'failed' | 'reprocess'

/** Every status change: the event, the statuses it may start from, the status it ends in. */
export const VIDEO_EVENTS: Readonly<Record<VideoEvent, { from: readonly VideoStatus[]; to: VideoStatus }>> = {
  // The source is in the store; a transcode job is queued.
  uploaded: { from: ['uploading'], to: 'queued' },
  // The complete upload is not a decodable video, or is out of bounds (probed before queuing).
  rejected: { from: ['uploading'], to: 'failed' },
  // A worker leased the job; from processing when a lease expired and another worker took it.
  claimed: { from: ['queued', 'processing'], to: 'processing' },
  // The worker published every output, the master playlist last.
  completed: { from: ['processing'], to: 'ready' },
  // A retryable failure with attempts left: the job waits out its backoff.
  retrying: { from: ['processing'], to: 'queued' },
  // A non-retryable failure, attempts exhausted, or the last lease expired (the job bus decides);
  // from queued too, as the bus may expire a lease whose claim never reached this process.
  failed: { from: ['queued', 'processing'], to: 'failed' },
  // The creator asks for a new transcode of a finished video.
  reprocess: { from: ['ready', 'failed'], to: 'queued' },
}

export const VIDEO_STATUSES: readonly VideoStatus[] = ['uploading', 'queued', 'processing', 'ready', 'failed']

/** Whether `event` may happen to a video in `status`. */
export function isAllowed(event: VideoEvent, status: VideoStatus): boolean {
  return VIDEO_EVENTS[event].from.includes(status)
}

/** The status after `event`, or ERR_VIDEO_STATE naming the refused change. */
export function nextStatus(event: VideoEvent, status: VideoStatus): VideoStatus {
  if (!isAllowed(event, status)) {
    throw new VcdnError('ERR_VIDEO_STATE', `${event} is not allowed from ${status}`)
  }
  return VIDEO_EVENTS[event].to
}

/** Whether the source has audio from the upload probe's count of its audio streams (null: unknown). */
function hasAudio(audioStreams: number | null | undefined): boolean | null {
  return typeof audioStreams === 'number' ? audioStreams > 0 : null
}

/** What a video's creator sees of a failure: a code and a public message. */
export interface ShownError {
  code: string
  message: string
}

export interface VideoLifecycleOptions {
  meta: MetadataDb
  /** The job bus the origin hands transcodes to; only JobBus methods are used (through the outbox). */
  bus: JobBus
  log: Logger
  now: () => number
  /** How often the outbox retries jobs the bus refused (default 5 s). */
  outboxRetryEveryMs?: number
  /**
   * Webhook events (./webhooks.ts), called inside the transaction of the change so that the event
   * commits with it: video.ready, video.failed (with its coded error), video.deleted.
   */
  onEvent?: (type: LifecycleEventType, video: Video) => void
  /** Split-and-stitch (./split-plan.ts); without it every video is one transcode job. */
  split?: SplitSettings
}

/** Progress of a split video: chunks count up to CHUNKS_SHARE (the audio job is not counted), the stitch the rest. */
const CHUNKS_SHARE = 0.9

export type LifecycleEventType = 'video.ready' | 'video.failed' | 'video.deleted'

export class VideoLifecycle {
  readonly #meta: MetadataDb
  readonly #now: () => number
  readonly #outbox: JobOutbox
  readonly #jobs: JobsTable
  readonly #onEvent: (type: LifecycleEventType, video: Video) => void
  readonly #split: SplitSettings | null
  readonly #chunks: SplitChunks
  readonly #log: Logger

  constructor(opts: VideoLifecycleOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('VideoLifecycle: options must be an object')
    for (const k of ['meta', 'bus', 'log', 'now'] as const) {
      if (opts[k] === undefined || opts[k] === null) throw new TypeError(`VideoLifecycle: options.${k} is required`)
    }
    this.#meta = opts.meta
    this.#log = opts.log
    this.#now = opts.now
    this.#jobs = openJobsTable(opts.meta.db)
    this.#onEvent = opts.onEvent ?? ((): void => undefined)
    this.#split = opts.split ?? null
    if (this.#split !== null) planChunks(null, this.#split) // throws on a chunk length off the grid
    this.#chunks = new SplitChunks(opts.meta.db)
    this.#outbox = new JobOutbox({
      db: opts.meta.db,
      bus: opts.bus,
      log: opts.log,
      now: opts.now,
      ...(opts.outboxRetryEveryMs !== undefined ? { retryEveryMs: opts.outboxRetryEveryMs } : {}),
    })
  }

  /** Hands the bus what a previous run committed but did not send, and starts the retry timer. */
  async start(): Promise<void> {
    await this.#outbox.start()
  }

  async close(): Promise<void> {
    await this.#outbox.close()
  }

  get(id: string): Video | null {
    return this.#meta.getVideo(id)
  }

  /** A new video, `uploading`, under a fresh id. */
  create(owner: string, title: string): Video {
    for (;;) {
      const id = newId()
      if (this.#meta.getVideo(id) !== null) continue
      return this.#meta.createVideo({ id, owner, title, nowMs: this.#now() })
    }
  }

  /**
   * The upload's bytes are in the store as `sourceKey`: the upload is done and a transcode queued.
   * `durationS` and `audioStreams` are the upload probe's (null or absent: unknown).
   */
  async uploaded(
    videoId: string,
    u: {
      uploadId: string
      sha256: string
      sourceKey: string
      durationS?: number | null
      audioStreams?: number | null
      isVariableFrameRate?: boolean
    },
  ): Promise<boolean> {
    const isMoved = this.#move(videoId, 'uploaded', (now) => {
      this.#meta.markUploadCompleted(u.uploadId, u.sha256, now)
      this.#meta.setStatus(videoId, 'queued', now, { progress: 0, error: null, sourceKey: u.sourceKey })
      const isVariableFrameRate = u.isVariableFrameRate === true
      const durationS = u.durationS ?? null
      this.#meta.setSourceProbe(videoId, { isVariableFrameRate, durationS, audioStreams: u.audioStreams ?? null })
      this.#queueTranscode(
        videoId,
        u.sourceKey,
        { durationS, hasAudio: hasAudio(u.audioStreams), isVariableFrameRate },
        {},
      )
    })
    if (isMoved) await this.#outbox.flush()
    return isMoved
  }

  /** The complete upload was refused by the probe: the video fails at once and nothing is queued. */
  rejected(videoId: string, u: { uploadId: string; sha256: string }, shown: ShownError): boolean {
    return this.#move(videoId, 'rejected', (now) => {
      this.#meta.markUploadCompleted(u.uploadId, u.sha256, now)
      this.#meta.setStatus(videoId, 'failed', now, { error: shown })
      this.#emit('video.failed', videoId)
    })
  }

  /** A new transcode of a ready or failed video; ERR_VIDEO_STATE without a source or in another status. */
  async reprocess(videoId: string): Promise<Video> {
    const isMoved = this.#move(videoId, 'reprocess', (now, video) => {
      if (video.sourceKey === null) throw new VcdnError('ERR_VIDEO_STATE', 'the video has no source')
      this.#meta.setStatus(videoId, 'queued', now, { progress: 0, error: null })
      // What the upload probe measured, as for the first transcode; for a video uploaded before it
      // was kept, the duration the last transcode measured (none after a failure: encoded whole)
      // and the audio known only from a previous split with an audio job (else the stitch encodes it).
      const hadAudioJob = this.#chunks.progress(videoId)?.audio != null
      const source = {
        durationS: video.sourceDurationS ?? video.durationS,
        hasAudio: hasAudio(video.sourceAudioStreams) ?? (hadAudioJob ? true : null),
        isVariableFrameRate: video.isSourceVariableFrameRate,
      }
      this.#queueTranscode(videoId, video.sourceKey, source, { isReprocess: true })
    })
    if (!isMoved) throw new VcdnError('ERR_VIDEO_NOT_FOUND')
    await this.#outbox.flush()
    return this.#meta.getVideo(videoId) as Video
  }

  /**
   * A worker leased the video's job. For a split video's jobs (`split`: the chunk, AUDIO_PART for
   * the audio job, and the worker; or 'stitch') the progress the chunks made is kept.
   */
  claimed(videoId: string, split?: { index: number; workerId: string } | 'stitch'): boolean {
    // A sibling chunk failed for good: this chunk has nothing left to do (false retires it).
    if (split !== undefined && this.#meta.getVideo(videoId)?.status === 'failed') return false
    return this.#move(videoId, 'claimed', (now) => {
      if (typeof split === 'object') this.#chunks.claimed(videoId, split.index, split.workerId)
      this.#meta.setStatus(videoId, 'processing', now, { ...(split === undefined ? { progress: 0 } : {}), error: null })
    })
  }

  /**
   * Chunk `index` (AUDIO_PART: the audio job) is done. When it is the last part, the stitch job is
   * queued in the same transaction (so it never starts before every part is done, and is queued
   * once). Nothing changes for a video that is gone or has failed. No status change: the video stays
   * processing (or queued while another part waits out a retry).
   */
  async chunkCompleted(videoId: string, index: number): Promise<boolean> {
    const isStitchDue = this.#meta.db.transaction((): boolean => {
      const video = this.#meta.getVideo(videoId)
      if (video === null || (video.status !== 'processing' && video.status !== 'queued')) return false
      const isLast = this.#chunks.completed(videoId, index)
      const p = this.#chunks.progress(videoId)
      if (p !== null) this.#meta.setProgress(videoId, (CHUNKS_SHARE * p.done) / p.total, this.#now())
      // The stitch reads chunk k at chunkStoreKey(videoId, k) (shared/bus), k < count, and with an
      // audio job its tracks at audioStoreKey(videoId).
      if (isLast && p !== null)
        this.#outbox.add(JOB_KIND_STITCH, videoId, {
          sourceKey: video.sourceKey,
          count: p.total,
          hasAudioJob: p.audio !== null,
        })
      return isLast
    })()
    if (isStitchDue) await this.#outbox.flush()
    return isStitchDue
  }

  /** The chunks of a split video (done / total, the workers that took them, claims per chunk); null when whole. */
  chunks(videoId: string): ChunkProgress | null {
    return this.#chunks.progress(videoId)
  }

  /** Heartbeat progress (0..1) of the stitch job: the part after the chunks. */
  stitchProgress(videoId: string, progress: number): void {
    this.progress(videoId, CHUNKS_SHARE + (1 - CHUNKS_SHARE) * progress)
  }

  /** Progress of the upload or the transcode (0..1); no status change. */
  progress(videoId: string, progress: number): void {
    this.#meta.setProgress(videoId, progress, this.#now())
  }

  /** The job completed: renditions recorded and the video ready. */
  completed(videoId: string, result: JobResult): boolean {
    return this.#move(videoId, 'completed', (now) => {
      this.#meta.markReady(videoId, result, now)
      this.#emit('video.ready', videoId)
    })
  }

  /** The job failed and will run again after its backoff; the creator sees why. */
  retrying(videoId: string, shown: ShownError): boolean {
    return this.#move(videoId, 'retrying', (now) => {
      // A split video keeps the progress of its done chunks while one chunk waits out its retry.
      const isSplit = this.#chunks.progress(videoId) !== null
      this.#meta.setStatus(videoId, 'queued', now, { ...(isSplit ? {} : { progress: 0 }), error: shown })
    })
  }

  /** The job failed for good. */
  failed(videoId: string, shown: ShownError): boolean {
    return this.#move(videoId, 'failed', (now) => {
      this.#meta.setStatus(videoId, 'failed', now, { error: shown })
      this.#emit('video.failed', videoId)
    })
  }

  /** Deletes the video with its renditions and uploads, its jobs and its jobs not yet handed to the bus. */
  delete(videoId: string): void {
    this.#meta.db.transaction(() => {
      const video = this.#meta.getVideo(videoId)
      this.#outbox.deleteOfVideo(videoId)
      this.#jobs.deleteOfVideo(videoId)
      this.#chunks.deleteOfVideo(videoId)
      this.#meta.deleteVideo(videoId)
      if (video !== null) this.#onEvent('video.deleted', video)
    })()
  }

  /**
   * One `transcode` job, or (split-and-stitch, docs/architecture.md §8) one `transcode.audio` job
   * when the source has audio, then one `transcode.chunk` job per chunk of the plan, all in the
   * caller's transaction. The audio job is queued first: queues hand jobs out in order, so it runs
   * beside the chunks instead of after them (its AAC encode was the stitch's longest step, on the
   * critical path after the last chunk). With the audio unknown (`hasAudio` null) there is no audio
   * job and the stitch encodes the source's audio itself. The stitch is queued by chunkCompleted.
   */
  #queueTranscode(
    videoId: string,
    sourceKey: string,
    source: { durationS: number | null; hasAudio: boolean | null; isVariableFrameRate: boolean },
    extra: Record<string, unknown>,
  ): void {
    const plan = this.#split === null ? null : planChunks(source.durationS, this.#split)
    // Chunks end by frame count at one rate and the stitch checks every Δpts is one frame: a source
    // whose frame rate varies is transcoded whole (docs/architecture.md §7.3).
    if (plan !== null && source.isVariableFrameRate) {
      this.#log.info({ videoId, durationS: source.durationS }, 'variable frame rate: transcoded whole, not split')
    }
    if (plan === null || source.isVariableFrameRate) {
      this.#chunks.deleteOfVideo(videoId)
      this.#outbox.add(JOB_KIND_TRANSCODE, videoId, { sourceKey, ...extra })
      return
    }
    const hasAudioJob = source.hasAudio === true
    this.#chunks.plan(videoId, plan, hasAudioJob)
    if (hasAudioJob) this.#outbox.add(JOB_KIND_AUDIO, videoId, { sourceKey, ...extra })
    for (const c of plan) {
      this.#outbox.add(JOB_KIND_CHUNK, videoId, { sourceKey, ...c, count: plan.length, ...extra })
    }
  }

  /** The video as the change left it, to the webhook hook (in the same transaction). */
  #emit(type: LifecycleEventType, videoId: string): void {
    const video = this.#meta.getVideo(videoId)
    if (video !== null) this.#onEvent(type, video)
  }

  /** One event in one transaction: read, check, write. false when the video is gone. */
  #move(videoId: string, event: VideoEvent, write: (nowMs: number, video: Video) => void): boolean {
    return this.#meta.db.transaction((): boolean => {
      const video = this.#meta.getVideo(videoId)
      if (video === null) return false
      nextStatus(event, video.status)
      write(this.#now(), video)
      return true
    })()
  }
}
