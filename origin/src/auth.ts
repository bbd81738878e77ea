// Control-API authentication (docs/architecture.md §7.2): `Authorization: Bearer <JWT>`, HS256 only
// (an explicit algorithm list, so neither `none` nor an RS/HS confusion can pass), issuer and
// audience checked. The one home of jsonwebtoken.
import jwt from 'jsonwebtoken'
import { VcdnError } from '../../shared/errors/index.js'

export type Role = 'uploader' | 'admin' | 'worker'
export const ROLES: readonly Role[] = ['uploader', 'admin', 'worker']

export interface JwtConfig {
  secret: string
  issuer: string
  audience: string
}

export interface Principal {
  /** The owner id (JWT `sub`). */
  sub: string
  role: Role
}

const ALGORITHMS: jwt.Algorithm[] = ['HS256']
// Clock skew tolerated on exp/nbf between the minting host and the origin.
const CLOCK_TOLERANCE_S = 5

export function mintToken(claims: { sub: string; role: Role; ttlS: number }, cfg: JwtConfig): string {
  if (typeof cfg.secret !== 'string' || cfg.secret === '') throw new TypeError('mintToken: cfg.secret must be set')
  if (typeof claims.sub !== 'string' || claims.sub === '')
    throw new TypeError('mintToken: claims.sub must be a non-empty string')
  if (!ROLES.includes(claims.role)) throw new TypeError(`mintToken: claims.role must be one of ${ROLES.join(', ')}`)
  if (!Number.isSafeInteger(claims.ttlS) || claims.ttlS <= 0)
    throw new TypeError('mintToken: claims.ttlS must be a positive integer')
  return jwt.sign({ role: claims.role }, cfg.secret, {
    algorithm: 'HS256',
    subject: claims.sub,
    issuer: cfg.issuer,
    audience: cfg.audience,
    expiresIn: claims.ttlS,
  })
}

/**
 * The principal of an `Authorization` header value. Throws ERR_AUTH_MISSING | ERR_AUTH_EXPIRED |
 * ERR_AUTH_INVALID (401); the message never contains the token. `nowMs` is the injected clock.
 */
export function authenticate(header: string | undefined, cfg: JwtConfig, nowMs: number): Principal {
  if (header === undefined || header === '') throw new VcdnError('ERR_AUTH_MISSING')
  const m = /^Bearer\s+([A-Za-z0-9._-]+)\s*$/i.exec(header)
  if (m === null) throw new VcdnError('ERR_AUTH_INVALID', 'not a bearer token')
  let claims: jwt.JwtPayload | string
  try {
    claims = jwt.verify(m[1] as string, cfg.secret, {
      algorithms: ALGORITHMS,
      issuer: cfg.issuer,
      audience: cfg.audience,
      clockTimestamp: Math.floor(nowMs / 1000),
      clockTolerance: CLOCK_TOLERANCE_S,
    })
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError) throw new VcdnError('ERR_AUTH_EXPIRED', undefined, { cause: err })
    throw new VcdnError('ERR_AUTH_INVALID', undefined, { cause: err })
  }
  if (typeof claims === 'string') throw new VcdnError('ERR_AUTH_INVALID', 'payload is not an object')
  // A token without exp would be valid forever: refuse it.
  if (typeof claims.exp !== 'number') throw new VcdnError('ERR_AUTH_INVALID', 'no exp')
  const role = claims['role'] as unknown
  if (typeof claims.sub !== 'string' || claims.sub === '' || !ROLES.includes(role as Role)) {
    throw new VcdnError('ERR_AUTH_INVALID', 'sub or role missing')
  }
  return { sub: claims.sub, role: role as Role }
}

/** 403 ERR_AUTH_ROLE unless the principal has one of the roles. */
export function requireRole(p: Principal, roles: readonly Role[]): void {
  if (!roles.includes(p.role)) throw new VcdnError('ERR_AUTH_ROLE')
}

/** Owners touch only their own videos; admins any (403 ERR_AUTH_OWNER). */
export function requireOwner(p: Principal, owner: string): void {
  if (p.role !== 'admin' && p.sub !== owner) throw new VcdnError('ERR_AUTH_OWNER')
}
