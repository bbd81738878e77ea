// `vcdn origin --config origin.json`: the only file of the origin with side effects at import.
import { createLogger } from '../../shared/log/index.js'
import { announceListening, parseCli, runUntilSignalled } from '../../shared/process/index.js'
import { buildOrigin } from './app.js'
import { loadOriginConfig } from './config.js'

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseCli(argv)
  const config = loadOriginConfig({ file: args.configFile })
  const log = createLogger({ tier: 'origin', level: config.logLevel })
  const origin = buildOrigin(config, { log })
  runUntilSignalled(log, () => origin.close())
  const { port, adminPort } = await origin.listen()
  announceListening('origin', port, adminPort)
}
