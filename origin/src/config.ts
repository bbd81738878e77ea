import { readFileSync } from 'node:fs'
import {
  commonSchema,
  loadConfig,
  secretProblem,
  type CommonConfig,
  type LoadOptions,
  type Schema,
} from '../../shared/config/index.js'
import {
  busConfigProblems,
  busSchema,
  controlProblems,
  controlSchema,
  type BusConfig,
  type ControlConfig,
} from '../../shared/bus/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import { sendTimeoutSchema } from '../../shared/http/index.js'
import { chunkSProblem } from './split-plan.js'

export const originSchema = {
  ...commonSchema,
  ...sendTimeoutSchema,
  dataDir: { type: 'string', isRequired: true, doc: 'SQLite metadata and uploads' },
  store: {
    kind: {
      type: 'string',
      default: 'fs',
      oneOf: ['fs', 's3'],
      doc: 'object store kind: fs (a local directory) or s3',
    },
    dir: { type: 'string', default: '', doc: 'fs store root (default <dataDir>/store)' },
    s3: {
      endpoint: { type: 'string', default: '', doc: 'S3-compatible endpoint URL ("" = AWS for the region)' },
      region: {
        type: 'string',
        default: 'us-east-1',
        doc: 'S3 region (signs requests; any value for most self-hosted servers)',
      },
      bucket: { type: 'string', default: '', doc: 'S3 bucket (required when kind is s3; must exist)' },
      accessKeyId: { type: 'string', default: '', doc: 'S3 access key id (required when kind is s3)' },
      secretAccessKey: {
        type: 'string',
        default: '',
        isSecret: true,
        doc: 'S3 secret access key (required when kind is s3)',
      },
      forcePathStyle: {
        type: 'boolean',
        default: true,
        doc: 'path-style URLs (http://host/bucket/key), as self-hosted servers expect; false for virtual-host style',
      },
      partSizeBytes: {
        type: 'integer',
        default: 8 * 1024 * 1024,
        min: 5 * 1024 * 1024,
        unit: 'bytes',
        doc: 'multipart part size (S3 needs at least 5 MiB)',
      },
      multipartThresholdBytes: {
        type: 'integer',
        default: 16 * 1024 * 1024,
        min: 5 * 1024 * 1024,
        unit: 'bytes',
        doc: 'bodies longer than this are uploaded in parts (at least partSizeBytes)',
      },
      requestTimeoutMs: {
        type: 'integer',
        default: 30_000,
        min: 1,
        unit: 'ms',
        doc: 'an S3 request idle this long fails with ERR_STORE_UNAVAILABLE instead of hanging',
      },
    },
  },
  cacheControl: {
    segment: {
      type: 'string',
      default: 'public, max-age=31536000, immutable',
      doc: 'Cache-Control of segments, init segments and thumbnails (immutable, docs/architecture.md §2)',
    },
    playlist: {
      type: 'string',
      default: 'public, max-age=60, stale-while-revalidate=30, stale-if-error=86400',
      doc: 'Cache-Control of VOD playlists and MPDs (purged on reprocess/delete)',
    },
    other: { type: 'string', default: 'public, max-age=300', doc: 'Cache-Control of anything else under /v/' },
    notFound: { type: 'string', default: 'public, max-age=10', doc: 'Cache-Control of 404s (short negative caching)' },
  },
  signingKeys: {
    type: 'map',
    default: {},
    isSecret: true,
    doc: 'playback token keys by kid (for signed URLs it hands out)',
  },
  activeKey: { type: 'string', default: '', doc: 'kid that signs playback tokens' },
  edgeBaseUrl: { type: 'string', default: '', doc: 'where playback URLs point' },
  jwt: {
    secret: { type: 'string', default: '', isSecret: true, doc: 'control-API JWT HMAC secret ("" = API off)' },
    issuer: { type: 'string', default: 'vcdn', doc: 'control-API JWT issuer' },
    audience: { type: 'string', default: 'vcdn-api', doc: 'control-API JWT audience' },
  },
  playbackTtlS: {
    type: 'integer',
    default: 3600,
    min: 60,
    unit: 's',
    doc: 'lifetime of the signed playback URLs the API hands out',
  },
  maxUploadBytes: {
    type: 'integer',
    default: 20 * 1024 ** 3,
    min: 1,
    unit: 'bytes',
    doc: 'largest source a tus upload may declare (Tus-Max-Size)',
  },
  uploadTtlMs: {
    type: 'integer',
    default: 24 * 3_600_000,
    min: 1000,
    unit: 'ms',
    doc: 'an unfinished upload untouched this long is removed (tus expiration)',
  },
  upload: {
    isProbed: {
      type: 'boolean',
      default: true,
      doc: 'probe a completed upload with ffprobe (and decode its first second) before queuing; a file that is not a decodable video, or is out of the bounds below, fails at once',
    },
    maxPixels: {
      type: 'integer',
      default: 8192 * 8192,
      min: 1,
      doc: 'largest width × height an uploaded video frame may declare (8192×8192; 8K UHD is 7680×4320)',
    },
    maxFrameRate: { type: 'integer', default: 240, min: 1, doc: 'highest frame rate an uploaded video may have' },
    maxDurationS: {
      type: 'integer',
      default: 12 * 3600,
      min: 1,
      unit: 's',
      doc: 'longest an uploaded video may last',
    },
    probeTimeoutMs: {
      type: 'integer',
      default: 30_000,
      min: 100,
      unit: 'ms',
      doc: 'each of the two probe runs (metadata, first-second decode) is killed after this; a file that takes longer is refused',
    },
  },
  jobs: {
    maxAttempts: { type: 'integer', default: 3, min: 1, doc: 'claims before a job is dead-lettered' },
    backoffBaseMs: {
      type: 'integer',
      default: 10_000,
      min: 1,
      unit: 'ms',
      doc: 'first retry delay; doubles per attempt',
    },
    backoffMaxMs: { type: 'integer', default: 600_000, min: 1, unit: 'ms', doc: 'longest retry delay' },
  },
  bus: busSchema,
  transcode: {
    splitAboveS: {
      type: 'integer',
      default: 120,
      min: 1,
      unit: 's',
      doc: 'a video longer than this (by the upload probe) is encoded as chunk jobs any transcoder may take, then stitched (docs/architecture.md §8)',
    },
    chunkS: {
      type: 'integer',
      default: 60,
      min: 4,
      unit: 's',
      doc: 'length of a chunk job; a multiple of the 4 s segment duration so chunks cut on the segment grid',
    },
  },
  purgeTimeoutMs: {
    type: 'integer',
    default: 5000,
    min: 1,
    unit: 'ms',
    doc: 'per-node timeout of the purge fan-out (with control.kind kafka: how long a purge waits for the nodes to acknowledge it)',
  },
  prewarmTimeoutMs: {
    type: 'integer',
    default: 120_000,
    min: 1,
    unit: 'ms',
    doc: 'per-node timeout of a prewarm (the node fetches every key it is sent)',
  },
  ...controlSchema,
  webhooks: {
    type: 'object[]',
    default: [],
    doc: 'receivers of video.ready, video.failed and video.deleted events, e.g. [{"url":"https://example.com/hook","secret":"<at least 32 bytes>"}] (url: http(s); secret: signs vcdn-signature, docs/architecture.md §7.5)',
  },
  webhookDelivery: {
    maxAttempts: { type: 'integer', default: 8, min: 1, max: 50, doc: 'attempts per webhook delivery before it fails' },
    backoffBaseMs: {
      type: 'integer',
      default: 1000,
      min: 10,
      max: 3_600_000,
      unit: 'ms',
      doc: 'delay before the second attempt; doubles per attempt',
    },
    backoffMaxMs: {
      type: 'integer',
      default: 300_000,
      min: 10,
      max: 86_400_000,
      unit: 'ms',
      doc: 'longest delay between attempts',
    },
    timeoutMs: {
      type: 'integer',
      default: 10_000,
      min: 100,
      max: 120_000,
      unit: 'ms',
      doc: 'an attempt without an answer this long fails',
    },
    pollEveryMs: {
      type: 'integer',
      default: 1000,
      min: 10,
      max: 60_000,
      unit: 'ms',
      doc: 'how often due deliveries are looked for',
    },
    batchSize: { type: 'integer', default: 10, min: 1, max: 100, doc: 'most webhook attempts in flight at once' },
  },
} satisfies Schema

export interface S3StoreConfig {
  endpoint: string
  region: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  forcePathStyle: boolean
  partSizeBytes: number
  multipartThresholdBytes: number
  requestTimeoutMs: number
}

/** A shield or edge whose admin listener receives purges (static here, or POST /v1/nodes). */
/** A webhook receiver: `{ "url": "https://…", "secret": "…" }`. */
export interface WebhookEndpoint {
  url: string
  secret: string
}

export interface NodeConfig {
  id: string
  tier: 'shield' | 'edge'
  adminUrl: string
}

export interface OriginConfig extends CommonConfig {
  sendTimeoutS: number
  dataDir: string
  store: { kind: 'fs' | 's3'; dir: string; s3: S3StoreConfig }
  cacheControl: { segment: string; playlist: string; other: string; notFound: string }
  signingKeys: Record<string, string>
  activeKey: string
  edgeBaseUrl: string
  jwt: { secret: string; issuer: string; audience: string }
  playbackTtlS: number
  maxUploadBytes: number
  uploadTtlMs: number
  upload: { isProbed: boolean; maxPixels: number; maxFrameRate: number; maxDurationS: number; probeTimeoutMs: number }
  jobs: { maxAttempts: number; backoffBaseMs: number; backoffMaxMs: number }
  /** The job bus: the embedded queue, or Kafka (the origin produces; transcoders consume). */
  bus: BusConfig
  transcode: { splitAboveS: number; chunkS: number }
  purgeTimeoutMs: number
  prewarmTimeoutMs: number
  /** How purges and prewarms reach nodes: HTTP calls (node-fanout.ts) or the Kafka control topic (control-publisher.ts). */
  control: ControlConfig
  /** Webhook receivers (checked in loadOriginConfig). */
  webhooks: readonly WebhookEndpoint[]
  webhookDelivery: {
    maxAttempts: number
    backoffBaseMs: number
    backoffMaxMs: number
    timeoutMs: number
    pollEveryMs: number
    batchSize: number
  }
  /** Statically registered nodes: `[{ "id": "edge-1", "tier": "edge", "adminUrl": "http://…" }]`. */
  nodes: readonly NodeConfig[]
}

/**
 * The shared loader's table has no list-of-objects type, so `nodes` is taken out of the file and
 * overrides, validated here, and the rest goes through the shared loader (same precedence:
 * defaults < file < overrides < environment). Problems of both parts are reported together.
 */
export function loadOriginConfig(opts: LoadOptions): OriginConfig {
  let fromFile: Record<string, unknown> = {}
  if (opts.file !== undefined) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(opts.file, 'utf8'))
      fromFile = isObject(parsed) ? parsed : { '(root)': parsed }
    } catch (err) {
      throw new VcdnError('ERR_CONFIG_INVALID', `cannot read ${opts.file}: ${(err as Error).message}`)
    }
  }
  const overrides = opts.overrides ?? {}
  const { nodes: fileNodes, ...fileRest } = fromFile
  const { nodes: overrideNodes, ...overrideRest } = overrides
  const problems: string[] = []
  const nodes = parseNodes(overrideNodes ?? fileNodes ?? [], problems)
  let base: Omit<OriginConfig, 'nodes'> | null = null
  try {
    base = loadConfig<Omit<OriginConfig, 'nodes'>>(originSchema, {
      ...opts,
      file: undefined,
      overrides: mergeDeep(fileRest, overrideRest) as Record<string, unknown>,
    })
  } catch (err) {
    if (!(err instanceof VcdnError)) throw err
    problems.unshift(err.message.replace(/^configuration is invalid: /, ''))
  }
  if (base !== null && base.store.kind === 's3') {
    const s3 = base.store.s3
    for (const key of ['bucket', 'accessKeyId', 'secretAccessKey'] as const) {
      if (s3[key] === '') problems.push(`store.s3.${key} is required when store.kind is s3`)
    }
    if (s3.endpoint !== '' && !/^https?:\/\/[^/]+/.test(s3.endpoint))
      problems.push('store.s3.endpoint must be an http(s) URL')
    if (s3.multipartThresholdBytes < s3.partSizeBytes) {
      problems.push('store.s3.multipartThresholdBytes must be at least store.s3.partSizeBytes')
    }
  }
  if (base !== null) webhookProblems(base.webhooks, problems)
  if (base !== null) problems.push(...busConfigProblems(base.bus, 'bus'))
  const chunkProblem = base === null ? null : chunkSProblem(base.transcode.chunkS)
  if (chunkProblem !== null) problems.push(chunkProblem)
  if (base !== null) problems.push(...controlProblems(base.control))
  if (problems.length > 0 || base === null) throw new VcdnError('ERR_CONFIG_INVALID', problems.join('; '))
  return Object.freeze({ ...base, nodes })
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function mergeDeep(a: unknown, b: unknown): unknown {
  if (!isObject(a) || !isObject(b)) return b === undefined ? a : b
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? mergeDeep(a[k], v) : v
  return out
}

function parseNodes(raw: unknown, problems: string[]): readonly NodeConfig[] {
  if (!Array.isArray(raw)) {
    problems.push('nodes must be an array of {id, tier, adminUrl}')
    return []
  }
  const out: NodeConfig[] = []
  raw.forEach((n: unknown, i) => {
    const at = `nodes[${i}]`
    if (!isObject(n)) {
      problems.push(`${at} must be an object`)
      return
    }
    for (const k of Object.keys(n))
      if (k !== 'id' && k !== 'tier' && k !== 'adminUrl') problems.push(`${at}.${k} is not a known key`)
    const { id, tier, adminUrl } = n
    if (typeof id !== 'string' || id === '') problems.push(`${at}.id must be a non-empty string`)
    if (tier !== 'shield' && tier !== 'edge') problems.push(`${at}.tier must be one of shield, edge`)
    if (typeof adminUrl !== 'string' || !/^https?:\/\/[^/]+/.test(adminUrl))
      problems.push(`${at}.adminUrl must be an http(s) URL`)
    if (typeof id === 'string' && id !== '' && (tier === 'shield' || tier === 'edge') && typeof adminUrl === 'string') {
      out.push(Object.freeze({ id, tier, adminUrl: adminUrl.replace(/\/+$/, '') }))
    }
  })
  return Object.freeze(out)
}

/** Each webhook: an http(s) url and a secret as strong as the other config secrets. */
function webhookProblems(raw: readonly unknown[], problems: string[]): void {
  raw.forEach((w: unknown, i) => {
    const at = `webhooks[${i}]`
    if (!isObject(w)) return // the loader reported it
    for (const k of Object.keys(w)) if (k !== 'url' && k !== 'secret') problems.push(`${at}.${k} is not a known key`)
    if (typeof w['url'] !== 'string' || !/^https?:\/\/[^/]+/.test(w['url']))
      problems.push(`${at}.url must be an http(s) URL`)
    if (typeof w['secret'] !== 'string') problems.push(`${at}.secret must be a string`)
    else {
      const problem = secretProblem(w['secret'], `${at}.secret`)
      if (problem !== null) problems.push(problem)
    }
  })
}
