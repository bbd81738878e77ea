import {
  commonSchema,
  loadConfig,
  type CommonConfig,
  type LoadOptions,
  type Schema,
} from '../../shared/config/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import {
  DEFAULT_CORS_MAX_AGE_S,
  sendTimeoutSchema,
  tlsSchema,
  type CorsOptions,
  type TlsConfig,
} from '../../shared/http/index.js'
import { cacheTierProblems, cacheTierSchema, type CacheTierConfig } from '../../shared/cache-tier/index.js'

export const edgeSchema = {
  ...commonSchema,
  ...cacheTierSchema,
  ...sendTimeoutSchema,
  shields: { type: 'string[]', default: [], doc: 'shield base URLs (http://host:port), picked per object by HRW' },
  origin: { type: 'string', default: '', doc: 'origin content server, used when no shield is healthy' },
  originFallback: { type: 'boolean', default: true, doc: 'go to the origin when no shield is healthy' },
  signingKeys: {
    type: 'map',
    default: {},
    isSecret: true,
    doc: 'playback token keys by kid (rotation: several may be active)',
  },
  requireToken: { type: 'boolean', default: true, doc: 'refuse /v/... without a valid playback token' },
  tokenMemoMax: { type: 'integer', default: 10_000, min: 0, doc: 'verified tokens remembered until expiry' },
  prefetch: {
    segments: { type: 'integer', default: 2, min: 0, max: 16, doc: 'segments fetched ahead of a player' },
    concurrency: {
      type: 'integer',
      default: 8,
      min: 1,
      max: 256,
      doc: 'prefetches running at once over all players (the rest wait in a bounded queue)',
    },
    failureBackoffMs: {
      type: 'integer',
      default: 5000,
      min: 0,
      max: 600_000,
      unit: 'ms',
      doc: 'after a failed prefetch, how long no new prefetch is issued',
    },
    cmcd: {
      type: 'boolean',
      default: true,
      doc: "prefetch the next object a player names in CMCD (nor), within its token's scope",
    },
    mode: {
      type: 'string',
      default: 'edge',
      oneOf: ['edge', 'shield'],
      doc: 'edge: the edge fills prefetched objects itself; shield: it asks the HRW-chosen shield to fill them (HEAD) and keeps none (without shields: edge)',
    },
  },
  ...tlsSchema,
  cors: {
    origins: {
      type: 'string[]',
      default: ['*'],
      doc: 'origins whose pages may read media and errors (CORS): ["*"] for any, a list of https://host[:port] echoed with Vary: Origin, [] for no CORS fields',
    },
    maxAgeS: {
      type: 'integer',
      default: DEFAULT_CORS_MAX_AGE_S,
      min: 0,
      unit: 's',
      doc: 'how long a browser may reuse a preflight answer (Access-Control-Max-Age)',
    },
  },
} satisfies Schema

export interface EdgeConfig extends CommonConfig, CacheTierConfig {
  sendTimeoutS: number
  shields: string[]
  origin: string
  originFallback: boolean
  signingKeys: Record<string, string>
  requireToken: boolean
  tokenMemoMax: number
  prefetch: { segments: number; concurrency: number; failureBackoffMs: number; cmcd: boolean; mode: 'edge' | 'shield' }
  tls: TlsConfig
  cors: CorsOptions
  trustedProxies: string[]
  proxyProtocol: boolean
  proxyProtocolV1: { host: string; port?: number | undefined }
}

export function loadEdgeConfig(opts: LoadOptions): EdgeConfig {
  const config = loadConfig<EdgeConfig>(edgeSchema, opts)
  const problems = cacheTierProblems(config)
  if (config.shields.length === 0 && config.origin === '') problems.push('shields or origin must be set')
  if (config.requireToken && Object.keys(config.signingKeys).length === 0) {
    problems.push('signingKeys must name at least one key when requireToken is true')
  }
  if (problems.length > 0) throw new VcdnError('ERR_CONFIG_INVALID', problems.join('; '))
  return config
}
