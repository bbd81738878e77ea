import { isVideoDir, MASTER_PLAYLIST } from '../namespace/index.js'
import { signToken } from './format.js'

export interface SignedPathOptions {
  /** ACL prefix the token grants, e.g. '/v/abc/'; must start and end with '/'. */
  prefix: string
  /** Content path to link to; default `prefix + 'master.m3u8'`. Must lie under `prefix`. */
  path?: string
  ttlS: number
  kid: string
  keys: Record<string, string>
  ip?: string
  sid?: string
  nowMs: number
  /** Allow an ACL other than one video directory (`/`, `/v/`, …): such a token opens every video under it. */
  isBroadAllowed?: boolean
}

/** True when `acl` is one whole video directory, `/v/{id}/`: what a playback token should grant. */
export function isVideoDirAcl(acl: string): boolean {
  return isVideoDir(acl)
}

/**
 * '/t/{token}/v/abc/master.m3u8'. The token is the first path segment, so every relative URI in
 * the playlists (RFC 8216 §4.1 resolves them against the playlist URI) carries it along.
 */
export function signedPath(p: SignedPathOptions): string {
  if (typeof p.prefix !== 'string' || !p.prefix.startsWith('/') || !p.prefix.endsWith('/')) {
    throw new TypeError("signedPath: p.prefix must start and end with '/'")
  }
  // A token's ACL is normally one video (`/v/{id}/`); `/` or `/v/` would open every video, so a
  // broader (or other) prefix is refused unless the caller asks for it explicitly.
  if (!isVideoDirAcl(p.prefix) && p.isBroadAllowed !== true) {
    throw new TypeError(
      `signedPath: p.prefix ${JSON.stringify(p.prefix)} is not a whole video directory /v/<id>/ (a broader ACL needs isBroadAllowed)`,
    )
  }
  const path = p.path ?? p.prefix + MASTER_PLAYLIST
  if (!path.startsWith(p.prefix)) throw new TypeError('signedPath: p.path must lie under p.prefix')
  if (!Number.isSafeInteger(p.ttlS) || p.ttlS <= 0) throw new TypeError('signedPath: p.ttlS must be a positive integer')
  if (!Number.isFinite(p.nowMs)) throw new TypeError('signedPath: p.nowMs must be epoch ms')
  const token = signToken(
    {
      exp: Math.floor(p.nowMs / 1000) + p.ttlS,
      acl: p.prefix,
      kid: p.kid,
      ...(p.ip !== undefined ? { ip: p.ip } : {}),
      ...(p.sid !== undefined ? { sid: p.sid } : {}),
    },
    p.keys,
  )
  return `/t/${token}${path}`
}

/** '/t/TOKEN/v/…' → { token, path: '/v/…' }; null when the path carries no token segment. */
export function splitTokenPath(rawPath: string): { token: string; path: string } | null {
  if (!rawPath.startsWith('/t/')) return null
  const slash = rawPath.indexOf('/', 3)
  if (slash <= 3) return null
  return { token: rawPath.slice(3, slash), path: rawPath.slice(slash) }
}
