import { busConfigProblems, busSchema, type BusConfig } from '../../shared/bus/index.js'
import { loadConfig, type LoadOptions, type Schema } from '../../shared/config/index.js'
import { VcdnError } from '../../shared/errors/index.js'

// The transcoder has no public listener: only the admin one (metrics, health). It needs nothing
// but the origin's URL and a worker credential (docs/architecture.md §8).
export const transcoderSchema = {
  admin: {
    host: { type: 'string', default: '127.0.0.1', doc: 'admin listener address (metrics, health)' },
    port: { type: 'integer', default: 0, min: 0, max: 65535, doc: 'admin listener port (0 = any free port)' },
  },
  origin: { type: 'string', isRequired: true, doc: 'origin control API base URL (http://host:port)' },
  token: {
    type: 'string',
    isRequired: true,
    isSecret: true,
    doc: 'worker credential: a control-API JWT with role "worker"',
  },
  workerId: { type: 'string', default: '', doc: 'worker name in leases (default hostname-pid)' },
  workDir: { type: 'string', isRequired: true, doc: 'scratch space for sources and outputs' },
  concurrency: { type: 'integer', default: 1, min: 1, max: 16, doc: 'jobs run at once' },
  maxJobs: {
    type: 'integer',
    default: 0,
    min: 0,
    doc: 'exit after this many jobs (0 = run until stopped; batch workers)',
  },
  leaseMs: { type: 'integer', default: 30_000, min: 1_000, unit: 'ms', doc: 'job lease; renewed every leaseMs/3' },
  pollMs: { type: 'integer', default: 1_000, min: 10, unit: 'ms', doc: 'wait between empty claims' },
  preset: { type: 'string', default: 'veryfast', doc: 'x264 preset' },
  ffmpegThreads: {
    type: 'integer',
    default: 0,
    min: 0,
    max: 64,
    doc: 'threads of each encoding ffmpeg run (decoder, filters, x264); 0 = ffmpeg chooses (about one per core)',
  },
  jobTimeoutMs: { type: 'integer', default: 0, min: 0, unit: 'ms', doc: 'whole-job limit (0 = pipeline default)' },
  uploadConcurrency: { type: 'integer', default: 4, min: 1, max: 32, doc: 'outputs uploaded at once' },
  // With kafka the transcoder claims from the topics directly (one consumer group); source, outputs,
  // progress and the outcome still go to the origin over HTTP.
  bus: busSchema,
  logLevel: {
    type: 'string',
    default: 'info',
    oneOf: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'],
    doc: 'log level',
  },
  drainTimeoutMs: {
    type: 'integer',
    default: 10_000,
    min: 0,
    unit: 'ms',
    doc: 'SIGTERM: how long a running job may take to stop',
  },
} satisfies Schema

export interface TranscoderConfig {
  admin: { host: string; port: number }
  origin: string
  token: string
  workerId: string
  workDir: string
  concurrency: number
  maxJobs: number
  leaseMs: number
  pollMs: number
  preset: string
  ffmpegThreads: number
  jobTimeoutMs: number
  uploadConcurrency: number
  logLevel: string
  drainTimeoutMs: number
  bus: BusConfig
}

export function loadTranscoderConfig(opts: LoadOptions): TranscoderConfig {
  const config = loadConfig<TranscoderConfig>(transcoderSchema, opts)
  const problems = busConfigProblems(config.bus, 'bus')
  if (problems.length > 0) throw new VcdnError('ERR_CONFIG_INVALID', problems.join('; '))
  return config
}
