// The worker loop: claim a job, download its source, run the pipeline while renewing the lease,
// publish the outputs in order (master playlist last), then report. A worker that dies simply stops
// renewing: its lease expires and another worker runs the job again (docs/architecture.md §7.3).
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import {
  audioStoreKey,
  chunkStoreKey,
  JOB_KIND_AUDIO,
  JOB_KIND_CHUNK,
  JOB_KIND_STITCH,
  parseAudioPayload,
  parseChunkPayload,
  parseStitchPayload,
  type ClaimedJob,
} from '../../shared/bus/index.js'
import { isVcdnError } from '../../shared/errors/index.js'
import type { Logger } from '../../shared/log/index.js'
import { encodeAudio, encodeChunk } from './chunk.js'
import type { JobSource } from './origin-client.js'
import {
  childCpuSeconds,
  isRetryableTranscodeError,
  transcode,
  type TranscodeResult,
  type X264Preset,
} from './pipeline.js'
import { stitch } from './stitch.js'

export interface WorkerOptions {
  source: JobSource
  workDir: string
  concurrency: number
  /** Stop claiming after this many jobs (0 = never). */
  maxJobs: number
  leaseMs: number
  pollMs: number
  preset: X264Preset
  /** ffmpeg threads of every encoding run (0 or absent: ffmpeg's choice). */
  ffmpegThreads?: number
  jobTimeoutMs: number
  uploadConcurrency: number
  log: Logger
  /** Called on every state change, for metrics. */
  onEvent?: (event: 'claimed' | 'completed' | 'failed' | 'lease-lost', job: ClaimedJob) => void
}

export class Worker {
  #opts: WorkerOptions
  #isStopping = false
  #loops: Promise<void>[] = []
  #running = new Map<string, AbortController>()
  #wakeIdle: (() => void)[] = []
  #claimed = 0

  constructor(opts: WorkerOptions) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new TypeError('opts.concurrency must be ≥ 1')
    if (!(opts.leaseMs >= 1000)) throw new TypeError('opts.leaseMs must be ≥ 1000')
    this.#opts = opts
  }

  get running(): number {
    return this.#running.size
  }

  start(): void {
    for (let i = 0; i < this.#opts.concurrency; i++) this.#loops.push(this.#loop())
  }

  /** Resolves when every loop has ended (after stop(), or once maxJobs jobs have run). */
  finished(): Promise<void> {
    return Promise.all(this.#loops).then(() => undefined)
  }

  #hasQuota(): boolean {
    return this.#opts.maxJobs === 0 || this.#claimed < this.#opts.maxJobs
  }

  /** Stop claiming; running jobs get `graceMs` to finish, then they are aborted and reported. */
  async stop(graceMs: number): Promise<void> {
    this.#isStopping = true
    for (const wake of this.#wakeIdle.splice(0)) wake()
    const all = Promise.all(this.#loops)
    const timer = setTimeout(() => {
      for (const ac of this.#running.values()) ac.abort(new Error('worker is shutting down'))
    }, graceMs)
    await all
    clearTimeout(timer)
  }

  async #loop(): Promise<void> {
    while (!this.#isStopping && this.#hasQuota()) {
      let job: ClaimedJob | null = null
      try {
        job = await this.#opts.source.claim(this.#opts.leaseMs)
      } catch (err) {
        this.#opts.log.warn({ err }, 'claim failed')
      }
      if (job === null) {
        await this.#idle()
        continue
      }
      this.#claimed++
      this.#opts.onEvent?.('claimed', job)
      await this.#run(job)
    }
  }

  #idle(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.#opts.pollMs)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.#wakeIdle.push(done)
    })
  }

  async #run(job: ClaimedJob): Promise<void> {
    const { source, log } = this.#opts
    const ac = new AbortController()
    this.#running.set(job.id, ac)
    const dir = join(this.#opts.workDir, `${job.id}-${job.attempt}`)
    let progress = 0
    let isLeaseLost = false
    const heartbeat = setInterval(
      () => {
        source.heartbeat(job.id, this.#opts.leaseMs, progress).then(
          (ok) => {
            if (!ok && !isLeaseLost) {
              isLeaseLost = true
              this.#opts.onEvent?.('lease-lost', job)
              ac.abort(new Error('lease lost'))
            }
          },
          (err: unknown) => log.warn({ err, job: job.id }, 'heartbeat failed'),
        )
      },
      Math.floor(this.#opts.leaseMs / 3),
    )
    const started = Date.now()
    const startCpu = { own: process.cpuUsage(), childrenS: childCpuSeconds() }
    // The job's CPU-seconds: this process's own and its waited-for children's (ffmpeg, ffprobe);
    // exact with concurrency 1, shared between the jobs running at once otherwise.
    const jobCpuS = (): number => {
      const own = process.cpuUsage(startCpu.own)
      return Math.round(((own.user + own.system) / 1e6 + childCpuSeconds() - startCpu.childrenS) * 100) / 100
    }
    try {
      await mkdir(dir, { recursive: true })
      const sourcePath = join(dir, 'source')
      const bytes = await source.downloadSource(job.id, sourcePath, ac.signal)
      const captions = (await source.downloadCaptions?.(job.id, dir, ac.signal)) ?? []
      log.info({ job: job.id, videoId: job.videoId, attempt: job.attempt, bytes }, 'job started')
      const common = {
        sourcePath,
        workDir: dir,
        signal: ac.signal,
        preset: this.#opts.preset,
        threads: this.#opts.ffmpegThreads ?? 0,
        captions,
        ...(this.#opts.jobTimeoutMs > 0 ? { timeoutMs: this.#opts.jobTimeoutMs } : {}),
        onProgress: (fraction: number) => {
          progress = Math.round(fraction * 1000) / 1000
        },
      }
      if (job.kind === JOB_KIND_CHUNK || job.kind === JOB_KIND_AUDIO) {
        // Split-and-stitch (docs/architecture.md §8): a chunk's or the audio's mp4 goes to its fixed
        // work key (a retry overwrites it: idempotent); the stitch publishes.
        const isAudio = job.kind === JOB_KIND_AUDIO
        const chunk = isAudio ? null : parseChunkPayload(job.payload)
        if (isAudio) parseAudioPayload(job.payload)
        const out = chunk === null ? await encodeAudio(common) : await encodeChunk({ ...common, chunk })
        const key = chunk === null ? audioStoreKey(job.videoId) : chunkStoreKey(job.videoId, chunk.index)
        await source.uploadOutput(job.id, key, out.path, isAudio ? 'audio/mp4' : 'video/mp4')
        await source.complete(job.id, { durationS: null, renditions: [], thumbnails: null })
        this.#opts.onEvent?.('completed', job)
        log.info(
          {
            job: job.id,
            videoId: job.videoId,
            ...(chunk === null ? {} : { chunk: chunk.index }),
            ms: Date.now() - started,
            cpuS: jobCpuS(),
            encodeCpuS: out.encode.cpuS,
            encodeWallS: out.encode.wallS,
          },
          isAudio ? 'audio completed' : 'chunk completed',
        )
        return
      }
      const result =
        job.kind === JOB_KIND_STITCH
          ? await stitch({ ...common, videoId: job.videoId, ...(await this.#downloadParts(job, dir, ac.signal)) })
          : await transcode({ ...common, videoId: job.videoId })
      await this.#publish(job, result, ac.signal)
      await source.complete(job.id, {
        durationS: result.durationS,
        renditions: result.renditions,
        thumbnails: result.thumbnails,
      })
      this.#opts.onEvent?.('completed', job)
      log.info(
        {
          job: job.id,
          videoId: job.videoId,
          ms: Date.now() - started,
          cpuS: jobCpuS(),
          encodeCpuS: result.encode.cpuS,
          encodeWallS: result.encode.wallS,
        },
        'job completed',
      )
    } catch (err) {
      this.#opts.onEvent?.('failed', job)
      if (isLeaseLost) {
        log.warn({ job: job.id }, 'lease lost: another worker has the job')
      } else {
        // Anything the pipeline does not call permanent (ffmpeg crash, network) is worth a retry.
        const isRetryable = isRetryableTranscodeError(err)
        const code = isVcdnError(err) ? err.code : 'ERR_TRANSCODE_FFMPEG'
        const message = err instanceof Error ? err.message.slice(0, 500) : String(err)
        log.warn({ job: job.id, code, isRetryable, err }, 'job failed')
        await source
          .fail(job.id, { code, message, isRetryable })
          .catch((e: unknown) => log.error({ err: e }, 'fail report failed'))
      }
    } finally {
      clearInterval(heartbeat)
      this.#running.delete(job.id)
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** Chunks 0..count-1 of a stitch job's video and its audio job's mp4, downloaded into `dir` one after another. */
  async #downloadParts(
    job: ClaimedJob,
    dir: string,
    signal: AbortSignal,
  ): Promise<{ chunkPaths: string[]; audioPath: string | undefined }> {
    const { count, hasAudioJob } = parseStitchPayload(job.payload)
    const chunkPaths: string[] = []
    for (let k = 0; k < count; k++) {
      const path = join(dir, `chunk-${k}.mp4`)
      await this.#opts.source.downloadWork(job.id, chunkStoreKey(job.videoId, k), path, signal)
      chunkPaths.push(path)
    }
    if (!hasAudioJob) return { chunkPaths, audioPath: undefined }
    const audioPath = join(dir, 'audio.mp4')
    await this.#opts.source.downloadWork(job.id, audioStoreKey(job.videoId), audioPath, signal)
    return { chunkPaths, audioPath }
  }

  /** Upload in the pipeline's order, several at a time, but the master playlist strictly last. */
  async #publish(job: ClaimedJob, result: TranscodeResult, signal: AbortSignal): Promise<void> {
    const outputs = [...result.outputs]
    const last = outputs.pop()
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < outputs.length) {
        signal.throwIfAborted()
        const o = outputs[next++]!
        await this.#opts.source.uploadOutput(job.id, o.key, o.path, o.contentType)
      }
    }
    await Promise.all(Array.from({ length: this.#opts.uploadConcurrency }, lane))
    if (last !== undefined) {
      signal.throwIfAborted()
      await this.#opts.source.uploadOutput(job.id, last.key, last.path, last.contentType)
    }
  }
}
