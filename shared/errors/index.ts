// One registry of operational error codes (docs/style.md "Errors"). Every code maps to an HTTP
// status and a public message; responses carry only these, never internals. shared/errors/README.md
// documents every code, and a test ties the two together.

export const ERRORS = {
  ERR_CONFIG_INVALID: { status: 500, message: 'configuration is invalid' },
  // Start-up failures (a node exits with these; the status is never sent to a client).
  ERR_LISTEN_IN_USE: { status: 500, message: 'listen address is already in use by another process' },
  ERR_LISTEN_FAILED: { status: 500, message: 'cannot listen on the configured address' },
  ERR_TLS_CERT: { status: 500, message: 'TLS certificate or key cannot be read, parsed or paired' },
  ERR_REQUEST_PATH: { status: 400, message: 'malformed or forbidden request path' },
  ERR_REQUEST_METHOD: { status: 405, message: 'method not allowed' },
  ERR_REQUEST_RANGE: { status: 416, message: 'range not satisfiable' },
  ERR_NOT_FOUND: { status: 404, message: 'not found' },
  ERR_PURGE_BODY: { status: 400, message: 'purge body must be JSON {"prefix":"/v/…/"} or {"key":"/v/…"}' },
  ERR_PREWARM_BODY: {
    status: 400,
    message: 'prewarm body must be JSON {"keys":["/v/…", …]} with at most 10000 valid content paths',
  },
  // Control events over Kafka (docs/architecture.md §9): the broker did not answer a publish or connect in time.
  ERR_CONTROL_UNAVAILABLE: { status: 503, message: 'control-event topic is unavailable' },
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
  // A playlist served under a query token is rewritten in memory (docs/architecture.md §3).
  ERR_PLAYLIST_TOO_LARGE: { status: 502, message: 'playlist is too large to rewrite' },
  ERR_PLAYLIST_INVALID: { status: 502, message: 'playlist cannot be parsed for rewriting' },
  ERR_CACHE_PURGED: { status: 503, message: 'object was purged during the fill' },
  ERR_STORE_IO: { status: 500, message: 'storage failure' },
  // RFC 4918 §11.5 507 Insufficient Storage: the request may succeed once space is freed.
  ERR_STORE_FULL: { status: 507, message: 'storage is full' },
  ERR_STORE_NOT_FOUND: { status: 404, message: 'object not found in store' },
  ERR_STORE_KEY: { status: 400, message: 'invalid store key' },
  // The S3 store: the object store refused or is out of reach. 503 (not 500): the request may
  // succeed once the operator fixes the store, and caches may serve stale (RFC 5861 §4).
  ERR_STORE_AUTH: { status: 503, message: 'object store refused the credentials' },
  ERR_STORE_BUCKET: { status: 503, message: 'object store bucket does not exist' },
  ERR_STORE_UNAVAILABLE: { status: 503, message: 'object store unreachable or timed out' },
  // Presigned (direct-to-store) requests exist only with the S3 store (docs/architecture.md §7.2).
  ERR_STORE_NOT_DIRECT: { status: 404, message: 'the object store takes no direct (presigned) requests' },
  ERR_STORE_MULTIPART: {
    status: 409,
    message: 'the multipart upload is gone from the object store or the parts do not match it',
  },
  ERR_SHUTTING_DOWN: { status: 503, message: 'server is shutting down' },
  ERR_INTERNAL: { status: 500, message: 'internal error' },
  ERR_TRANSCODE_NOT_VIDEO: { status: 422, message: 'source is not a decodable video' },
  ERR_TRANSCODE_CORRUPT: { status: 422, message: 'source is corrupt or truncated' },
  ERR_TRANSCODE_FFMPEG: { status: 500, message: 'ffmpeg failed' },
  ERR_TRANSCODE_TIMEOUT: { status: 504, message: 'transcode timed out' },
  ERR_TRANSCODE_ABORTED: { status: 503, message: 'transcode was aborted' },
  ERR_TRANSCODE_INVALID_OUTPUT: { status: 500, message: 'transcoder output failed validation' },
  ERR_API_BODY: { status: 400, message: 'request body is not valid JSON of the documented shape' },
  ERR_API_BODY_TOO_LARGE: { status: 413, message: 'request body is too large' },
  ERR_API_CURSOR: { status: 400, message: 'pagination cursor is invalid' },
  ERR_API_DISABLED: { status: 503, message: 'control API is disabled: no jwt.secret configured' },
  ERR_AUTH_MISSING: { status: 401, message: 'bearer token required' },
  ERR_AUTH_INVALID: { status: 401, message: 'bearer token is invalid' },
  ERR_AUTH_EXPIRED: { status: 401, message: 'bearer token has expired' },
  ERR_AUTH_ROLE: { status: 403, message: 'role not allowed for this operation' },
  ERR_AUTH_OWNER: { status: 403, message: 'resource belongs to another owner' },
  ERR_VIDEO_NOT_FOUND: { status: 404, message: 'video not found' },
  ERR_VIDEO_STATE: { status: 409, message: 'video is not in a state that allows this' },
  ERR_CAPTION_INVALID: { status: 400, message: 'caption file is not valid WebVTT or SRT' },
  ERR_UPLOAD_NOT_FOUND: { status: 404, message: 'upload not found' },
  ERR_UPLOAD_VERSION: { status: 412, message: 'Tus-Resumable: 1.0.0 required' },
  ERR_UPLOAD_LENGTH: { status: 400, message: 'Upload-Length is missing or invalid' },
  ERR_UPLOAD_METADATA: { status: 400, message: 'Upload-Metadata must carry the videoId of one of your videos' },
  ERR_UPLOAD_OFFSET: { status: 409, message: 'Upload-Offset does not match the current offset' },
  ERR_UPLOAD_TOO_LARGE: { status: 413, message: 'upload exceeds the allowed size' },
  ERR_UPLOAD_CONTENT_TYPE: { status: 415, message: 'PATCH needs Content-Type: application/offset+octet-stream' },
  ERR_UPLOAD_LOCKED: { status: 423, message: 'upload is being written by another request' },
  ERR_UPLOAD_CHECKSUM_ALGORITHM: { status: 400, message: 'unsupported Upload-Checksum algorithm' },
  ERR_UPLOAD_CHECKSUM: { status: 460, message: 'Upload-Checksum does not match the received bytes' },
  ERR_UPLOAD_EXPIRED: { status: 410, message: 'upload has expired' },
  // Early rejection at the end of an upload (docs/architecture.md §7): the video becomes failed.
  ERR_UPLOAD_NOT_VIDEO: { status: 422, message: 'the uploaded file is not a decodable video' },
  ERR_UPLOAD_TOO_LARGE_FRAME: { status: 422, message: 'the uploaded video frame is larger than allowed' },
  ERR_UPLOAD_TOO_HIGH_RATE: { status: 422, message: 'the uploaded video frame rate is higher than allowed' },
  ERR_UPLOAD_TOO_LONG: { status: 422, message: 'the uploaded video is longer than allowed' },
  // ffprobe or ffmpeg could not run on the origin; the upload stays and the sweeper retries.
  ERR_UPLOAD_PROBE: { status: 503, message: 'the upload could not be probed' },
  ERR_JOB_NOT_FOUND: { status: 404, message: 'job not found' },
  ERR_JOB_LEASE_LOST: { status: 409, message: 'job lease is held by another worker or has ended' },
  // Recorded as a job's (and its video's) error when the last attempt's worker stopped
  // heartbeating; 503 like ERR_TRANSCODE_ABORTED: another worker may succeed on a retry.
  ERR_JOB_LEASE_EXPIRED: { status: 503, message: 'job lease expired: the worker stopped heartbeating' },
  ERR_JOB_OUTPUT_KEY: { status: 400, message: 'output key must be a valid key under v/<videoId>/' },
  ERR_JOB_BUS_UNAVAILABLE: { status: 503, message: 'job bus is unavailable' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

/**
 * Registered codes that no code path uses today, each with why it stays registered. A test scans
 * the source: every registered code is used somewhere or listed here, no listed code is used (then
 * it is no longer reserved), and every `ERR_…` string the source uses is registered.
 */
export const RESERVED_CODES: Readonly<Partial<Record<ErrorCode, string>>> = {
  ERR_CACHE_PURGED:
    'a purge during a fill never fails it: the fill leaves the fill map, is not stored, and its readers finish (docs/architecture.md §5.7); kept for a purge that must cut its readers',
  ERR_STORE_NOT_FOUND:
    'the store answers a missing key with null (Store.head/get) and each caller answers its own 404 (ERR_NOT_FOUND, ERR_VIDEO_NOT_FOUND); kept for a store call that cannot answer null',
  ERR_UPLOAD_EXPIRED:
    'an expired upload is removed with its record (uploadTtlMs), so a later request gets ERR_UPLOAD_NOT_FOUND (404, which tus 1.0 Expiration allows beside 410); 410 needs a tombstone the origin does not keep',
}

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

/** True when `err` carries this `code` (a Node system error such as ENOENT, a SQLite error, …). */
export function hasCode(err: unknown, code: string): boolean {
  return err !== null && typeof err === 'object' && 'code' in err && err.code === code
}

/** A filesystem or SQLite error that means "no space left" (full disk or quota). */
export function isNoSpace(err: unknown): boolean {
  return hasCode(err, 'ENOSPC') || hasCode(err, 'EDQUOT') || hasCode(err, 'SQLITE_FULL')
}

/** Map anything thrown to a registered code; unknown errors become ERR_INTERNAL. */
export function toCode(err: unknown): ErrorCode {
  return isVcdnError(err) ? err.code : 'ERR_INTERNAL'
}
