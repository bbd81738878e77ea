// `vcdn edge --config edge.json`
import { isTierWorker } from '../../shared/cache-tier/index.js'
import { createLogger } from '../../shared/log/index.js'
import { announceListening, parseCli, runUntilSignalled } from '../../shared/process/index.js'
import { buildEdge } from './app.js'
import { loadEdgeConfig } from './config.js'

// The config table, for `vcdn edge --help` and docs/config.md.
export { edgeSchema as configSchema } from './config.js'

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseCli(argv)
  const config = loadEdgeConfig({ file: args.configFile })
  const log = createLogger({ tier: 'edge', level: config.logLevel })
  const edge = await buildEdge(config, { log })
  if (isTierWorker()) {
    // A worker thread (`workers` > 1): it serves until its coordinator closes it; signals, the
    // listening line and the admin listener are the coordinator's (docs/architecture.md §12).
    await edge.listen()
    return
  }
  runUntilSignalled(log, () => edge.close())
  // SIGHUP re-reads the certificate files (an ACME renewal); a bad file is logged, never fatal.
  process.on('SIGHUP', () => {
    edge.reloadTls().catch((err: unknown) => log.error({ err }, 'tls reload failed'))
  })
  const { port, adminPort, tlsPort, proxyV1Port } = await edge.listen()
  announceListening('edge', port, adminPort, tlsPort, proxyV1Port)
}
