// The edge: the PoP cache players talk to (docs/architecture.md §1, §3, §4). Its front door checks
// playback tokens; a miss goes to the shield HRW picks for the object, or to the origin when none
// is healthy. Served segments and CMCD hints drive the prefetcher (§6).
import { buildCacheTier, cmcdOf, type BodyRewrite, type CacheTier } from '../../shared/cache-tier/index.js'
import { VcdnError } from '../../shared/errors/index.js'
import {
  isAppendableParam,
  PlaylistRewriteError,
  rewriteDashManifest,
  rewriteHlsPlaylist,
} from '../../shared/hls/index.js'
import { clientAddressOf, TrustedProxies, type IncomingRequest } from '../../shared/http/index.js'
import type { Logger } from '../../shared/log/index.js'
import { contentTypeFor, validatePath } from '../../shared/namespace/index.js'
import { queryToken, splitTokenPath, TOKEN_PARAM, TokenVerifier } from '../../shared/token/index.js'
import type { EdgeConfig } from './config.js'
import { FAVICON_PATH, PLAYER_SCRIPT_PATH, renderRefusal, serveLocal } from './player.js'
import { prefetchMetrics, Prefetcher, resolveKeyPath } from './prefetch.js'
import { shieldWarmer } from './prefetch-shield.js'

export interface EdgeDeps {
  log: Logger
  now?: () => number
}

/** A signed path's parts: pure functions of the path string. */
interface SignedPath {
  readonly token: string
  /** The key path, valid by the namespace's rules. */
  readonly path: string
}

const SIGNED_PATHS_MAX = 4096
const HLS_TYPE = contentTypeFor('x.m3u8')
const DASH_TYPE = contentTypeFor('x.mpd')

export async function buildEdge(config: EdgeConfig, deps: EdgeDeps): Promise<CacheTier> {
  const verifier = new TokenVerifier({
    keys: config.signingKeys,
    memoMax: config.tokenMemoMax,
    ...(deps.now ? { now: deps.now } : {}),
  })
  // The hot path's one memo: signed path → its token and validated key path, remembered once the
  // token verified, so a player's repeated requests skip the split, the path check and the hashing
  // of fresh substrings. The token is still verified on every request (expiry, scope, client
  // address: docs/architecture.md §3). Bounded: cleared when full. Owned by this edge.
  const signedPaths = new Map<string, SignedPath>()
  const isTokenRequired = config.requireToken
  // Behind trusted proxies an IP-bound token is checked against the X-Forwarded-For client
  // (docs/architecture.md §3). The gate runs synchronously, so one slot serves every request; the
  // verifier reads its address only for a token bound to one.
  const proxies = TrustedProxies.from(config.trustedProxies)
  const behindProxy = {
    req: null as IncomingRequest | null,
    get remoteAddress(): string {
      return this.req === null ? '' : clientAddressOf(this.req, proxies)
    },
  }
  const clientOf = (req: IncomingRequest): { readonly remoteAddress: string } => {
    if (proxies === null) return req
    behindProxy.req = req
    return behindProxy
  }

  /** The key path of a signed (or, without requireToken, plain) path, or a coded refusal (thrown). */
  const keyPathOf = (raw: string, req: IncomingRequest): string => {
    const known = signedPaths.get(raw)
    if (known !== undefined) {
      verifier.verify(known.token, known.path, clientOf(req))
      return known.path
    }
    const split = splitTokenPath(raw)
    if (split === null) {
      // hls.js for the player page (a public library) and the favicon: no token needed.
      const isRead = req.method === 'GET' || req.method === 'HEAD'
      if ((raw === PLAYER_SCRIPT_PATH || raw === FAVICON_PATH) && isRead) return raw
      // Bad paths are 400 before anything, the token check included (docs/architecture.md §2).
      const path = validatePath(raw)
      // A player that cannot carry a path token sends `?token=` (docs/architecture.md §3): the
      // same checks; the cache key drops the parameter (shared/cache normalize-key.ts).
      const fromQuery = req.query === '' ? null : queryToken(req.query)
      if (fromQuery !== null) verifier.verify(fromQuery.token, path, clientOf(req))
      else if (isTokenRequired) throw new VcdnError('ERR_TOKEN_MISSING')
      return path
    }
    // Validate first so the token's ACL prefix is compared with a key path.
    const path = validatePath(split.path)
    // The request itself: its peer address is read only if the token is bound to one.
    verifier.verify(split.token, path, clientOf(req))
    if (signedPaths.size >= SIGNED_PATHS_MAX) signedPaths.clear()
    signedPaths.set(raw, { token: split.token, path })
    return path
  }

  /**
   * Playlists served under a query token carry it on every URI of this host, or the player's next
   * request (a relative reference takes its own query, RFC 3986 §5.2.2) would have none. Under a
   * path token the relative URIs inherit it and nothing is rewritten. The token is appended as the
   * client sent it, byte for byte.
   */
  const rewriteFor = (key: string, req: IncomingRequest): BodyRewrite | null => {
    if (req.query === '' || req.path.startsWith('/t/')) return null
    const q = key.indexOf('?')
    const type = contentTypeFor(q === -1 ? key : key.slice(0, q))
    const isHls = type === HLS_TYPE
    if (!isHls && type !== DASH_TYPE) return null
    const found = queryToken(req.query)
    if (found === null) return null
    const param = `${TOKEN_PARAM}=${found.raw}`
    // A verified token decodes to [A-Za-z0-9._-], so its raw form is those or %XX: appendable.
    if (!isAppendableParam(param)) throw new VcdnError('ERR_TOKEN_MALFORMED', 'characters')
    const host = req.header('host') ?? null
    return (body) => {
      const text = body.toString('utf8')
      try {
        return Buffer.from(isHls ? rewriteHlsPlaylist(text, param, host) : rewriteDashManifest(text, param, host))
      } catch (err) {
        if (err instanceof PlaylistRewriteError)
          throw new VcdnError('ERR_PLAYLIST_INVALID', err.message, { cause: err })
        throw err
      }
    }
  }

  // Set once the tier is built (the prefetcher drives its engine); null when prefetch is off, and in
  // a worker thread: the prefetcher runs where the engine is, and the tier sends it the keys served
  // and the hints (docs/architecture.md §6, §9.1).
  let prefetcher: Prefetcher | null = null
  let hintTo: CacheTier | null = null
  const isCmcdPrefetch = config.prefetch.cmcd

  /**
   * CMCD `nor` (CTA-5004): the next object, relative to this request's path, so under the same
   * token. It passes the same checks as a request for it would (path rules, token scope, client
   * address), or it is not prefetched; a bad hint never fails the request carrying it.
   */
  const noteCmcd = (req: IncomingRequest): void => {
    // CTA-5004 puts nor in CMCD-Request; most requests carry neither it nor the query key.
    if (req.header('cmcd-request') === undefined && !req.query.includes('CMCD=')) return
    const nor = cmcdOf(req)?.nor
    if (nor === undefined || hintTo === null) return
    const raw = resolveKeyPath(nor, req.path)
    if (raw === null) return
    try {
      hintTo.hint(keyPathOf(raw, req))
    } catch {
      // outside the token's scope, or no token: not prefetched
    }
  }

  /** The front door: the key path of a request, or a coded refusal (thrown). */
  const gate = (req: IncomingRequest): string => {
    const path = keyPathOf(req.path, req)
    if (isCmcdPrefetch && req.method === 'GET') noteCmcd(req)
    return path
  }

  const hasShields = config.shields.length > 0
  const origin = config.origin !== '' ? config.origin : undefined
  const isPrefetching = config.prefetch.segments > 0 || isCmcdPrefetch
  const tier = await buildCacheTier({
    tier: 'edge',
    config,
    upstreams: hasShields ? config.shields : [origin as string],
    fallback: hasShields && config.originFallback ? origin : undefined,
    registerWith: origin,
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    gate,
    serveLocal,
    rewriteFor,
    // A browser opening the player page with a refused token gets a page for people.
    renderRefusal,
    ...(isPrefetching
      ? {
          onServed: (key, result) => prefetcher?.served(key, result),
          onHint: (key) => prefetcher?.hint(key),
        }
      : {}),
    metrics: prefetchMetrics(() => prefetcher?.counters ?? null),
  })
  if (!isPrefetching) return tier
  hintTo = tier
  if (tier.local === null) return tier
  prefetcher = new Prefetcher({
    // mode 'shield': the HRW-chosen shield fills what a player asks next (prefetch-shield.ts).
    engine:
      config.prefetch.mode === 'shield' && hasShields
        ? shieldWarmer(tier.local.engine, tier.local.upstreams)
        : tier.local.engine,
    segments: config.prefetch.segments,
    concurrency: config.prefetch.concurrency,
    failureBackoffMs: config.prefetch.failureBackoffMs,
    paths: config.paths,
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
  })
  const running = prefetcher
  return {
    engine: tier.engine,
    local: tier.local,
    listen: () => tier.listen(),
    reloadTls: () => tier.reloadTls(),
    hint: (key) => tier.hint(key),
    close: () => {
      running.close()
      return tier.close()
    },
  }
}
