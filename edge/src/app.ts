// The edge: the PoP cache players talk to (DESIGN §1, §3, §4). Its front door checks playback
// tokens; a miss goes to the shield HRW picks for the object, or to the origin when none is healthy.
import { buildCacheTier, validateKey, type CacheTier } from '../../shared/cache-tier/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import { splitTokenPath, TokenVerifier } from '../../shared/token/index.js'
import { normalizeKey } from '../../shared/cache/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { EdgeConfig } from './config.js'
import { isPlayerPage, PLAYER_SCRIPT_PATH, sendPlayerPage, sendPlayerScript } from './player.js'

export interface EdgeDeps {
  log: Logger
  now?: () => number
}

export function buildEdge(config: EdgeConfig, deps: EdgeDeps): Promise<CacheTier> {
  const verifier = new TokenVerifier({
    keys: config.signingKeys,
    memoMax: config.tokenMemoMax,
    ...(deps.now ? { now: deps.now } : {}),
  })
  const hasShields = config.shields.length > 0
  const origin = config.origin !== '' ? config.origin : undefined
  return buildCacheTier({
    tier: 'edge',
    config,
    upstreams: hasShields ? config.shields : [origin as string],
    fallback: hasShields && config.originFallback ? origin : undefined,
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    gate: (req, res) => {
      if (req.path === PLAYER_SCRIPT_PATH && req.method === 'GET') return { status: sendPlayerScript(res) }
      const split = splitTokenPath(req.path)
      if (split === null) {
        if (config.requireToken) {
          // Bad paths are 400 before anything else, including the token check (DESIGN §5).
          normalizeKey(req.path)
          throw new VcdnError('ERR_TOKEN_MISSING')
        }
        return { path: req.path }
      }
      // Normalise first so the token's ACL prefix is compared with a canonical path.
      const path = validateKey(split.path)
      // The request itself: its peer address is read only if the token is bound to one.
      verifier.verify(split.token, path, req)
      if (isPlayerPage(path) && req.method === 'GET') return { status: sendPlayerPage(res, path) }
      return { path, isKey: true }
    },
  })
}
