import { hostname } from 'node:os'
import { mkdirSync } from 'node:fs'
import { createAdminServer } from '../../shared/http/index.js'
import type { Logger } from '../../shared/log/index.js'
import { createMetrics } from '../../shared/metrics/index.js'
import type { TranscoderConfig } from './config.js'
import { KafkaJobSource } from './kafka-source.js'
import { HttpJobSource, type JobSource } from './origin-client.js'
import type { X264Preset } from './pipeline.js'
import { Worker } from './worker.js'

export interface TranscoderDeps {
  log: Logger
  source?: JobSource
}

export interface Transcoder {
  listen(): Promise<{ port: number; adminPort: number }>
  /** Resolves when the worker stops claiming for good (maxJobs reached, or closed). */
  finished(): Promise<void>
  close(): Promise<void>
}

const transcoderMetrics = {
  jobs_total: { type: 'counter', help: 'job events', labels: ['event'] },
} as const

export function buildTranscoder(config: TranscoderConfig, deps: TranscoderDeps): Transcoder {
  mkdirSync(config.workDir, { recursive: true })
  const workerId = config.workerId !== '' ? config.workerId : `${hostname()}-${process.pid}`
  // bus.kind kafka: jobs come from the Kafka group; the origin is still reached over HTTP for the rest.
  const kafkaSource =
    deps.source === undefined && config.bus.kind === 'kafka'
      ? new KafkaJobSource({
          origin: config.origin,
          token: config.token,
          workerId,
          kafka: config.bus.kafka,
          log: deps.log,
        })
      : null
  const source =
    deps.source ?? kafkaSource ?? new HttpJobSource({ origin: config.origin, token: config.token, workerId })
  const metrics = createMetrics('vcdn_transcoder', transcoderMetrics)
  const worker = new Worker({
    source,
    workDir: config.workDir,
    concurrency: config.concurrency,
    maxJobs: config.maxJobs,
    leaseMs: config.leaseMs,
    pollMs: config.pollMs,
    preset: config.preset as X264Preset,
    ffmpegThreads: config.ffmpegThreads,
    jobTimeoutMs: config.jobTimeoutMs,
    uploadConcurrency: config.uploadConcurrency,
    log: deps.log,
    onEvent: (event) => metrics.m.jobs_total.inc({ event }),
  })
  let isReady = false
  const admin = createAdminServer({
    host: config.admin.host,
    port: config.admin.port,
    tierSecret: '',
    metricsText: () => metrics.text(),
    metricsContentType: metrics.contentType,
    isReady: () => isReady,
  })
  return {
    async listen() {
      // Kafka that does not answer stops the start with ERR_JOB_BUS_UNAVAILABLE.
      await kafkaSource?.connect()
      const adminPort = await admin.listen()
      worker.start()
      isReady = true
      // No public listener: the admin port is the one to watch.
      return { port: adminPort, adminPort }
    },
    finished: () => worker.finished(),
    async close() {
      isReady = false
      await worker.stop(config.drainTimeoutMs)
      await source.close()
      await admin.drain(0)
    },
  }
}
