import { VcdnError } from '../errors/index.js'
import { MAX_TOKEN_CHARS } from './format.js'

/** The query parameter a player that cannot use a path token carries it in (`?token=`). */
export const TOKEN_PARAM = 'token'

/** A playback token found in a query string. */
export interface QueryToken {
  /** The token to verify: the parameter's value, percent-decoded (RFC 3986 §2.1). */
  readonly token: string
  /**
   * The value exactly as the client sent it, still percent-encoded: what the edge appends to the
   * URIs of a playlist it rewrites, so the player sends back the same bytes it was given.
   */
  readonly raw: string
}

/**
 * The first `token` parameter of a raw query string (`a=1&token=…`), or null when there is none.
 * Names are compared decoded, as the cache key's filter compares them (shared/cache
 * normalize-key.ts), so `tok%65n=…` is a token here exactly when the key drops it. Throws
 * ERR_TOKEN_MALFORMED for a value that is too long or not valid percent-encoding.
 */
export function queryToken(rawQuery: string): QueryToken | null {
  if (rawQuery.length === 0 || !rawQuery.includes('=')) return null
  for (const param of rawQuery.split('&')) {
    const eq = param.indexOf('=')
    if (eq === -1 || decodeName(param.slice(0, eq)) !== TOKEN_PARAM) continue
    const raw = param.slice(eq + 1)
    if (raw.length === 0) throw new VcdnError('ERR_TOKEN_MALFORMED', 'empty')
    if (raw.length > 3 * MAX_TOKEN_CHARS) throw new VcdnError('ERR_TOKEN_MALFORMED', 'length')
    let token: string
    try {
      token = raw.includes('%') ? decodeURIComponent(raw) : raw
    } catch (err) {
      throw new VcdnError('ERR_TOKEN_MALFORMED', 'percent-encoding', { cause: err })
    }
    return { token, raw }
  }
  return null
}

function decodeName(raw: string): string {
  if (!raw.includes('%') && !raw.includes('+')) return raw
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '))
  } catch {
    return raw
  }
}
