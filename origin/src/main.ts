// `vcdn origin --config origin.json`: the only file of the origin with side effects at import.
import { createLogger } from '../../shared/log/index.js'
import { announceListening, parseCli, runUntilSignalled } from '../../shared/process/index.js'
import { buildOrigin } from './app.js'
import { mintToken, ROLES, type Role } from './auth.js'
import { loadOriginConfig } from './config.js'

// The config table, for `vcdn origin --help` and docs/config.md.
export { originSchema as configSchema } from './config.js'

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseCli(argv)
  const config = loadOriginConfig({ file: args.configFile })
  const log = createLogger({ tier: 'origin', level: config.logLevel })
  const origin = buildOrigin(config, { log })
  runUntilSignalled(log, () => origin.close())
  const { port, adminPort } = await origin.listen()
  announceListening('origin', port, adminPort)
}

/** `vcdn token --config origin.json --sub alice --role uploader [--ttl 3600]`: prints a control-API JWT. */
export async function tokenCommand(argv: readonly string[]): Promise<void> {
  const { configFile, flags } = parseCli(argv)
  const sub = flags['sub']
  const role = flags['role']
  const ttlS = typeof flags['ttl'] === 'string' ? Number(flags['ttl']) : 3600
  if (configFile === undefined || typeof sub !== 'string' || typeof role !== 'string') {
    throw new Error('token needs --config <origin.json> --sub <owner> --role <uploader|admin|worker> [--ttl seconds]')
  }
  if (!ROLES.includes(role as Role)) throw new Error(`--role must be one of ${ROLES.join(', ')}`)
  if (!Number.isSafeInteger(ttlS) || ttlS <= 0) throw new Error('--ttl must be a positive integer (seconds)')
  const config = loadOriginConfig({ file: configFile })
  if (config.jwt.secret === '') throw new Error(`jwt.secret is not set in ${configFile}`)
  process.stdout.write(`${mintToken({ sub, role: role as Role, ttlS }, config.jwt)}\n`)
}
