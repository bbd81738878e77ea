import {
  commonSchema,
  loadConfig,
  type CommonConfig,
  type LoadOptions,
  type Schema,
} from '../../shared/config/index.js'
import { cacheTierSchema, type CacheTierConfig } from '../../shared/cache-tier/index.js'

export const shieldSchema = {
  ...commonSchema,
  ...cacheTierSchema,
  upstreams: {
    type: 'string[]',
    isRequired: true,
    min: 1,
    doc: 'origin content servers (http://host:port), HRW-hashed',
  },
} satisfies Schema

export interface ShieldConfig extends CommonConfig, CacheTierConfig {
  upstreams: string[]
  logLevel: string
}

export function loadShieldConfig(opts: LoadOptions): ShieldConfig {
  return loadConfig<ShieldConfig>(shieldSchema, opts)
}
