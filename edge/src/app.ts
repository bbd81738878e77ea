// The edge: the PoP cache players talk to (docs/architecture.md §1, §3, §4). Its front door checks
// playback tokens; a miss goes to the shield HRW picks for the object, or to the origin when none
// is healthy.
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

interface GateMemo {
  readonly token: string
  /** Returned to the tier as is (never mutated by it). */
  readonly result: { readonly path: string; readonly isKey: true }
  readonly isPlayerPage: boolean
}

const GATE_MEMO_MAX = 4096

export function buildEdge(config: EdgeConfig, deps: EdgeDeps): Promise<CacheTier> {
  const verifier = new TokenVerifier({
    keys: config.signingKeys,
    memoMax: config.tokenMemoMax,
    ...(deps.now ? { now: deps.now } : {}),
  })
  // Signed path → its split and normalised parts (pure functions of the path string), remembered
  // once its token verified, so a player's repeated requests skip the split, the key check and the
  // hashing of fresh substrings. The token is still verified on every request (expiry, scope,
  // client address: docs/architecture.md §3). Bounded: cleared when full. Owned by this edge.
  const gateMemo = new Map<string, GateMemo>()
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
      const memo = gateMemo.get(req.path)
      if (memo !== undefined) {
        verifier.verify(memo.token, memo.result.path, req)
        if (memo.isPlayerPage && req.method === 'GET') return { status: sendPlayerPage(res, memo.result.path) }
        return memo.result
      }
      const split = splitTokenPath(req.path)
      if (split === null) {
        if (config.requireToken) {
          // Bad paths are 400 before anything, the token check included (docs/architecture.md §2).
          normalizeKey(req.path)
          throw new VcdnError('ERR_TOKEN_MISSING')
        }
        return { path: req.path }
      }
      // Normalise first so the token's ACL prefix is compared with a canonical path.
      const path = validateKey(split.path)
      // The request itself: its peer address is read only if the token is bound to one.
      verifier.verify(split.token, path, req)
      const entry: GateMemo = { token: split.token, result: { path, isKey: true }, isPlayerPage: isPlayerPage(path) }
      if (gateMemo.size >= GATE_MEMO_MAX) gateMemo.clear()
      gateMemo.set(req.path, entry)
      if (entry.isPlayerPage && req.method === 'GET') return { status: sendPlayerPage(res, path) }
      return entry.result
    },
  })
}
