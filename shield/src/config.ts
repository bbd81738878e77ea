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

export const shieldSchema = {
  ...commonSchema,
  ...cacheTierSchema,
  ...sendTimeoutSchema,
  upstreams: {
    type: 'string[]',
    isRequired: true,
    min: 1,
    doc: 'origin content servers (http://host:port), HRW-hashed',
  },
  requireTierSecret: {
    type: 'boolean',
    default: true,
    doc: 'refuse requests without the tier secret (401); false only on a trusted network, e.g. a shield in front of any origin',
  },
  passUnsafeMethods: {
    type: 'boolean',
    default: true,
    doc: 'POST, PUT, DELETE, … go to the origin (never stored; a success invalidates the target, RFC 9111 §4.4); false answers 405',
  },
  ...tlsSchema,
  cors: {
    origins: {
      type: 'string[]',
      default: [],
      doc: 'origins whose pages may read responses (CORS; viewers meet edges, so none by default): ["*"] or a list of https://host[:port]',
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

export interface ShieldConfig extends CommonConfig, CacheTierConfig {
  sendTimeoutS: number
  upstreams: string[]
  requireTierSecret: boolean
  passUnsafeMethods: boolean
  logLevel: string
  tls: TlsConfig
  cors: CorsOptions
  trustedProxies: string[]
  proxyProtocol: boolean
  proxyProtocolV1: { host: string; port?: number | undefined }
}

export function loadShieldConfig(opts: LoadOptions): ShieldConfig {
  const config = loadConfig<ShieldConfig>(shieldSchema, opts)
  const problems = cacheTierProblems(config)
  if (problems.length > 0) throw new VcdnError('ERR_CONFIG_INVALID', problems.join('; '))
  return config
}
