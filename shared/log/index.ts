// pino JSON logs to stdout. main.ts builds the one logger and passes it down (docs/style.md).
import { pino, destination, stdTimeFunctions, type Logger } from 'pino'

export type { Logger }

/** Secrets never reach logs: the tier secret header, auth headers, and tokens in paths or queries. */
const REDACT = [
  'tierSecret',
  'headers["x-vcdn-tier"]',
  'headers.authorization',
  'config.tierSecret',
  'config.signingKeys',
  'config.jwt.secret',
]

export function createLogger(opts: { tier: string; level?: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { tier: opts.tier, pid: process.pid },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: stdTimeFunctions.epochTime,
    },
    opts.destination ?? destination({ dest: 1, sync: false }),
  )
}

/** `/t/<token>/v/...` → `/t/<first 8 chars>…/v/...`; `token=` query values likewise. */
export function redactPath(path: string): string {
  return path.replace(/^\/t\/([^/]{0,8})[^/]*/, '/t/$1…').replace(/([?&]token=)([^&]{0,8})[^&]*/, '$1$2…')
}
