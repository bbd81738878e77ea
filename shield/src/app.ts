// The shield: a mid-tier cache in front of the origin that serves edges only (docs/architecture.md
// §1, §4). Its front door is the tier secret (switched off by `requireTierSecret: false` on a
// trusted network, where a shield with `paths: ["/"]` is a reverse proxy cache in front of any
// origin); everything else is the shared cache tier.
import { buildCacheTier, TIER_SECRET_HEADER, type CacheTier } from '../../shared/cache-tier/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import { secretEquals } from '../../shared/http/index.js'
import type { Logger } from '../../shared/log/index.js'
import { validatePath } from '../../shared/namespace/index.js'
import type { ShieldConfig } from './config.js'

export interface ShieldDeps {
  log: Logger
  now?: () => number
}

export function buildShield(config: ShieldConfig, deps: ShieldDeps): Promise<CacheTier> {
  const isSecretRequired = config.requireTierSecret
  if (!isSecretRequired) {
    deps.log.warn(
      { requireTierSecret: false, paths: config.paths },
      'tier auth is off: this shield serves anyone who reaches its listener (trusted networks only)',
    )
  }
  return buildCacheTier({
    tier: 'shield',
    config,
    upstreams: config.upstreams,
    registerWith: config.upstreams[0],
    // A shield fronts the origin: writes reach it (an edge keeps them off: viewers never write).
    passUnsafeMethods: config.passUnsafeMethods,
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    // The secret first: a caller without it learns nothing about paths (docs/architecture.md §4).
    gate: (req) => {
      if (isSecretRequired && !secretEquals(req.header(TIER_SECRET_HEADER), config.tierSecret)) {
        throw new VcdnError('ERR_TIER_AUTH')
      }
      return validatePath(req.path)
    },
  })
}
