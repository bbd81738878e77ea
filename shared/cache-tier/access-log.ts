// One access line per request (docs/architecture.md §10.3): tier, key (token redacted), status,
// cache outcome, upstream ms, total ms, bytes.
import type { ServeResult } from '../cache/index.js'
import type { IncomingRequest } from '../http/index.js'
import { redactPath, type Logger } from '../log/index.js'

export function logAccess(
  log: Logger,
  req: IncomingRequest,
  key: string,
  status: number,
  result: ServeResult | null,
  startedMs: number,
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
      ms: Math.round((performance.now() - startedMs) * 10) / 10,
    },
    'access',
  )
}
