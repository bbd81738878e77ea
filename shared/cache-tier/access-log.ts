// One access line per request (docs/architecture.md §10.3): tier, key (token redacted), status,
// cache outcome, upstream ms, total ms, bytes, the client (address behind trusted proxies, user
// agent), the refusal code of a refused request and the CMCD fields a CDN uses (CTA-5004).
import type { ServeResult } from '../cache/index.js'
import { clientAddressOf, type IncomingRequest, type TrustedProxies } from '../http/index.js'
import { redactPath, type Logger } from '../log/index.js'
import { cmcdOf } from './cmcd.js'

/** Longest user agent logged: enough to tell players apart, bounded against a client's megabytes. */
const USER_AGENT_MAX_CHARS = 256

/** What one request's access line needs beyond its result, read synchronously as it arrives. */
export interface AccessLine {
  readonly startedMs: number
  readonly client: string
  readonly ua: string | null
  /** The coded error the request was answered with ('' when none). */
  code: string
  /** The request's CMCD session and player state (sid cid br bl bs su mtp ot), or null without CMCD. */
  readonly cmcd: Readonly<Record<string, string | number | boolean>> | null
}

/** Read in the handler before any await: the uWS request fields are valid only then. */
export function startAccessLine(req: IncomingRequest, proxies: TrustedProxies | null): AccessLine {
  const ua = req.header('user-agent')
  return {
    startedMs: performance.now(),
    client: clientAddressOf(req, proxies),
    ua: ua === undefined ? null : ua.slice(0, USER_AGENT_MAX_CHARS),
    code: '',
    cmcd: cmcdLogFields(req),
  }
}

/** The CMCD fields logged: not nor/nrr (the edge's prefetch reads those, docs/architecture.md §6). */
function cmcdLogFields(req: IncomingRequest): AccessLine['cmcd'] {
  const c = cmcdOf(req)
  if (c === null) return null
  const { nor: _nor, nrr: _nrr, ...logged } = c
  return Object.keys(logged).length === 0 ? null : logged
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
      ...(line.cmcd !== null ? { cmcd: line.cmcd } : {}),
    },
    'access',
  )
}
