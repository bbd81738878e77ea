// The playback token (docs/architecture.md §3) and its wire format.
//
//   token   = payload "." signature
//   payload = base64url(JSON {"exp":…, "acl":…, "kid":…, ["ip":…], ["sid":…]})   (RFC 4648 §5, no padding)
//   signature = base64url(HMAC-SHA256(keys[kid], payload))                       (RFC 2104)
//
// The MAC covers the payload exactly as transmitted (the base64url text), so there is no
// canonicalisation step that signer and verifier could disagree on. Both parts use only
// [A-Za-z0-9_-] and the separator is '.', so a token is one URL path segment (RFC 3986 §3.3).
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { VcdnError } from '../errors/index.js'
import { isValidPath } from '../namespace/index.js'
import { normaliseIp } from './ip.js'

export interface TokenPayload {
  /** Expiry, epoch seconds. */
  exp: number
  /** Path prefix the token grants, e.g. '/v/abc/'. */
  acl: string
  /** Names the signing key. */
  kid: string
  /** Client address the token is bound to. */
  ip?: string
  /** Opaque session id (analytics, concurrent-stream limits). */
  sid?: string
}

/** Longest token accepted; a real one is ~150 chars. Bounds the work done on garbage. */
export const MAX_TOKEN_CHARS = 1024
export const SIGNATURE_CHARS = 43 // base64url of 32 bytes, unpadded
const KID = /^[A-Za-z0-9_-]{1,32}$/
const SID = /^[A-Za-z0-9._-]{1,128}$/
const B64URL = /^[A-Za-z0-9_-]+$/
const MAX_ACL_CHARS = 512

export function isValidKid(kid: string): boolean {
  return KID.test(kid)
}

export function keyObjects(keys: Record<string, string>, where: string): Map<string, KeyObject> {
  if (keys === null || typeof keys !== 'object') throw new TypeError(`${where} must be an object of kid → secret`)
  const out = new Map<string, KeyObject>()
  for (const [kid, secret] of Object.entries(keys)) {
    if (!KID.test(kid)) throw new TypeError(`${where}: key id ${JSON.stringify(kid)} must match ${KID.source}`)
    if (typeof secret !== 'string' || secret.length === 0)
      throw new TypeError(`${where}.${kid} must be a non-empty string`)
    out.set(kid, createSecretKey(Buffer.from(secret, 'utf8')))
  }
  // No keys is allowed: an edge that does not require tokens may have none, and then refuses
  // every token it is shown (ERR_TOKEN_KEY) while serving unsigned paths.
  return out
}

export function mac(key: KeyObject, payloadB64: string): string {
  return createHmac('sha256', key).update(payloadB64).digest('base64url')
}

export function signToken(p: TokenPayload, keys: Record<string, string>): string {
  if (!Number.isSafeInteger(p.exp) || p.exp <= 0)
    throw new TypeError('signToken: p.exp must be a positive integer (epoch s)')
  // The ACL is compared with key paths (docs/architecture.md §2), so it must be one itself.
  if (typeof p.acl !== 'string' || !isValidPath(p.acl) || p.acl.length > MAX_ACL_CHARS) {
    throw new TypeError('signToken: p.acl must be a valid absolute key path prefix')
  }
  if (typeof p.kid !== 'string' || !KID.test(p.kid)) throw new TypeError(`signToken: p.kid must match ${KID.source}`)
  const secret = keys[p.kid]
  if (typeof secret !== 'string' || secret.length === 0) throw new VcdnError('ERR_TOKEN_KEY', `no signing key ${p.kid}`)
  const payload: TokenPayload = { exp: p.exp, acl: p.acl, kid: p.kid }
  if (p.ip !== undefined) {
    if (isIP(p.ip) === 0) throw new TypeError('signToken: p.ip must be an IPv4 or IPv6 address')
    payload.ip = normaliseIp(p.ip)
  }
  if (p.sid !== undefined) {
    if (!SID.test(p.sid)) throw new TypeError(`signToken: p.sid must match ${SID.source}`)
    payload.sid = p.sid
  }
  const payloadB64 = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url')
  return `${payloadB64}.${mac(createSecretKey(Buffer.from(secret, 'utf8')), payloadB64)}`
}

/** Split and decode without checking the signature. Throws ERR_TOKEN_MALFORMED. */
export function parseToken(token: string): { payloadB64: string; signature: string; payload: TokenPayload } {
  const dot = token.indexOf('.')
  if (dot <= 0 || token.length - dot - 1 !== SIGNATURE_CHARS) throw malformed('shape')
  const payloadB64 = token.slice(0, dot)
  const signature = token.slice(dot + 1)
  if (!B64URL.test(payloadB64) || !B64URL.test(signature)) throw malformed('alphabet')
  let raw: unknown
  try {
    raw = JSON.parse(Buffer.from(payloadB64, 'base64url').toString('utf8'))
  } catch (err) {
    throw new VcdnError('ERR_TOKEN_MALFORMED', 'payload is not JSON', { cause: err })
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw malformed('payload')
  const o = raw as Record<string, unknown>
  const { exp, acl, kid, ip, sid } = o
  if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp <= 0) throw malformed('exp')
  if (typeof acl !== 'string' || acl.length === 0 || acl.length > MAX_ACL_CHARS || acl.charCodeAt(0) !== 47)
    throw malformed('acl')
  if (typeof kid !== 'string' || !KID.test(kid)) throw malformed('kid')
  if (ip !== undefined && (typeof ip !== 'string' || isIP(ip) === 0)) throw malformed('ip')
  if (sid !== undefined && (typeof sid !== 'string' || !SID.test(sid))) throw malformed('sid')
  const payload: TokenPayload = { exp, acl, kid }
  if (typeof ip === 'string') payload.ip = normaliseIp(ip)
  if (typeof sid === 'string') payload.sid = sid
  return { payloadB64, signature, payload }
}

function malformed(what: string): VcdnError {
  return new VcdnError('ERR_TOKEN_MALFORMED', what)
}
