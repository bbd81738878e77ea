// One registry of operational error codes (STYLE.md "Errors"). Every code maps to an HTTP status
// and a public message; responses carry only these, never internals. shared/errors/README.md
// documents every code, and a test ties the two together.

export const ERRORS = {
  ERR_CONFIG_INVALID: { status: 500, message: 'configuration is invalid' },
  ERR_REQUEST_PATH: { status: 400, message: 'malformed or forbidden request path' },
  ERR_REQUEST_METHOD: { status: 405, message: 'method not allowed' },
  ERR_REQUEST_RANGE: { status: 416, message: 'range not satisfiable' },
  ERR_NOT_FOUND: { status: 404, message: 'not found' },
  ERR_PURGE_BODY: { status: 400, message: 'purge body must be JSON {"prefix":"/v/…/"} or {"key":"/v/…"}' },
  ERR_TIER_AUTH: { status: 401, message: 'missing or wrong tier secret' },
  ERR_TOKEN_MISSING: { status: 403, message: 'playback token required' },
  ERR_TOKEN_MALFORMED: { status: 403, message: 'playback token is malformed' },
  ERR_TOKEN_SIGNATURE: { status: 403, message: 'playback token signature is invalid' },
  ERR_TOKEN_KEY: { status: 403, message: 'playback token names an unknown key' },
  ERR_TOKEN_EXPIRED: { status: 403, message: 'playback token has expired' },
  ERR_TOKEN_SCOPE: { status: 403, message: 'playback token does not cover this path' },
  ERR_TOKEN_IP: { status: 403, message: 'playback token is bound to another client address' },
  ERR_UPSTREAM_CONNECT: { status: 502, message: 'upstream unreachable' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timed out' },
  ERR_UPSTREAM_STATUS: { status: 502, message: 'upstream answered with an error' },
  ERR_UPSTREAM_BODY: { status: 502, message: 'upstream body was truncated or malformed' },
  ERR_UPSTREAM_NONE: { status: 502, message: 'no healthy upstream' },
  ERR_CACHE_PURGED: { status: 503, message: 'object was purged during the fill' },
  ERR_STORE_IO: { status: 500, message: 'storage failure' },
  ERR_STORE_NOT_FOUND: { status: 404, message: 'object not found in store' },
  ERR_STORE_KEY: { status: 400, message: 'invalid store key' },
  ERR_SHUTTING_DOWN: { status: 503, message: 'server is shutting down' },
  ERR_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

export class VcdnError extends Error {
  readonly code: ErrorCode
  readonly status: number

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry = ERRORS[code]
    super(detail ? `${entry.message}: ${detail}` : entry.message, options)
    this.name = 'VcdnError'
    this.code = code
    this.status = entry.status
  }
}

export function isVcdnError(err: unknown): err is VcdnError {
  return err instanceof VcdnError
}

/** The JSON body a tier answers with: the code and the public message only (never `cause`). */
export function errorBody(code: ErrorCode): string {
  return JSON.stringify({ error: { code, message: ERRORS[code].message } })
}

/** Map anything thrown to a registered code; unknown errors become ERR_INTERNAL. */
export function toCode(err: unknown): ErrorCode {
  return isVcdnError(err) ? err.code : 'ERR_INTERNAL'
}
