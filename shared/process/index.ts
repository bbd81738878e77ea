// Process lifecycle shared by every tier's main.ts: command-line parsing, the `listening` line
// (docs/architecture.md §10.2), and SIGTERM/SIGINT draining. Only main.ts files call into this
// module.
import type { Logger } from '../log/index.js'

export interface CliArgs {
  configFile: string | undefined
  flags: Record<string, string | true>
  positional: string[]
}

/** `--config f.json --ttl 3600 --flag pos1` → { configFile, flags, positional }. */
export function parseCli(argv: readonly string[]): CliArgs {
  const flags: Record<string, string | true> = {}
  const positional: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      if (eq > 0) flags[arg.slice(2, eq)] = arg.slice(eq + 1)
      else {
        const next = argv[i + 1]
        if (next !== undefined && !next.startsWith('--')) {
          flags[arg.slice(2)] = next
          i++
        } else flags[arg.slice(2)] = true
      }
    } else positional.push(arg)
  }
  const config = flags['config']
  return { configFile: typeof config === 'string' ? config : undefined, flags, positional }
}

/** The one line tests and supervisors wait for, written synchronously so it is never reordered. */
export function announceListening(tier: string, port: number, adminPort: number, tlsPort = 0, proxyV1Port = 0): void {
  const line = {
    msg: 'listening',
    tier,
    port,
    adminPort,
    ...(tlsPort !== 0 ? { tlsPort } : {}),
    ...(proxyV1Port !== 0 ? { proxyV1Port } : {}),
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
}

/**
 * SIGTERM and SIGINT drain and exit 0; a second signal exits at once. Unhandled rejections are
 * programmer errors: log and crash so the supervisor restarts a clean process (docs/style.md
 * "Errors").
 */
export function runUntilSignalled(log: Logger, close: () => Promise<void>): void {
  let isClosing = false
  const onSignal = (signal: string): void => {
    if (isClosing) process.exit(1)
    isClosing = true
    log.info({ signal }, 'draining')
    close().then(
      () => {
        log.info({}, 'stopped')
        log.flush()
        process.exit(0)
      },
      (err: unknown) => {
        log.error({ err }, 'close failed')
        log.flush()
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection')
    log.flush()
    process.exit(1)
  })
}
