// One access line per request (docs/architecture.md §10.3): tier, key (token redacted), status,
// cache outcome, upstream ms, total ms, bytes, the client (address behind trusted proxies, user
// agent) and the refusal code of a refused request.
import type { ServeResult } from '../cache/index.js'
import { clientAddressOf, type IncomingRequest, type TrustedProxies } from '../http/index.js'
import { redactPath, type Logger } from '../log/index.js'

/** Longest user agent logged: enough to tell players apart, bounded against a client's megabytes. */
const USER_AGENT_MAX_CHARS = 256

/** What one request's access line needs beyond its result, read synchronously as it arrives. */
export interface AccessLine {
  readonly startedMs: number
  readonly client: string
  readonly ua: string | null
  /** The coded error the request was answered with ('' when none). */
  code: string
}

/** Read in the handler before any await: the uWS request fields are valid only then. */
export function startAccessLine(req: IncomingRequest, proxies: TrustedProxies | null): AccessLine {
  const ua = req.header('user-agent')
  return {
    startedMs: performance.now(),
    client: clientAddressOf(req, proxies),
    ua: ua === undefined ? null : ua.slice(0, USER_AGENT_MAX_CHARS),
    code: '',
  }
}

export function logAccess(
  log: Logger,
  req: IncomingRequest,
  key: string,
  status: number,
  result: ServeResult | null,
  line: AccessLine,
): void {
  log.info(
    {
      access: true,
      method: req.method,
      key: redactPath(key),
      status,
      cache: result?.outcome ?? 'NONE',
      bytes: result?.bytes ?? 0,
      upstreamMs: result?.upstreamMs ?? null,
      ms: Math.round((performance.now() - line.startedMs) * 10) / 10,
      client: line.client,
      ua: line.ua,
      ...(line.code !== '' ? { code: line.code } : {}),
    },
    'access',
  )
}
