import {
  commonSchema,
  loadConfig,
  type CommonConfig,
  type LoadOptions,
  type Schema,
} from '../../shared/config/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import { sendTimeoutSchema } from '../../shared/http/index.js'
import { cacheTierSchema, pathsProblems, queryProblems, type CacheTierConfig } from '../../shared/cache-tier/index.js'

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
} satisfies Schema

export interface ShieldConfig extends CommonConfig, CacheTierConfig {
  sendTimeoutS: number
  upstreams: string[]
  requireTierSecret: boolean
  passUnsafeMethods: boolean
  logLevel: string
}

export function loadShieldConfig(opts: LoadOptions): ShieldConfig {
  const config = loadConfig<ShieldConfig>(shieldSchema, opts)
  const problems = [...pathsProblems(config.paths), ...queryProblems(config.cache)]
  if (problems.length > 0) throw new VcdnError('ERR_CONFIG_INVALID', problems.join('; '))
  return config
}
