// `vcdn shield --config shield.json`
import { isTierWorker } from '../../shared/cache-tier/index.js'
import { createLogger } from '../../shared/log/index.js'
import { announceListening, parseCli, runUntilSignalled } from '../../shared/process/index.js'
import { buildShield } from './app.js'
import { loadShieldConfig } from './config.js'

// The config table, for `vcdn shield --help` and docs/config.md.
export { shieldSchema as configSchema } from './config.js'

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseCli(argv)
  const config = loadShieldConfig({ file: args.configFile })
  const log = createLogger({ tier: 'shield', level: config.logLevel })
  const shield = await buildShield(config, { log })
  if (isTierWorker()) {
    // A worker thread (`workers` > 1): it serves until its coordinator closes it; signals, the
    // listening line and the admin listener are the coordinator's (docs/architecture.md §12).
    await shield.listen()
    return
  }
  runUntilSignalled(log, () => shield.close())
  // SIGHUP re-reads the certificate files (an ACME renewal); a bad file is logged, never fatal.
  process.on('SIGHUP', () => {
    shield.reloadTls().catch((err: unknown) => log.error({ err }, 'tls reload failed'))
  })
  const { port, adminPort, tlsPort, proxyV1Port } = await shield.listen()
  announceListening('shield', port, adminPort, tlsPort, proxyV1Port)
}
