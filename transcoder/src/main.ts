// `vcdn transcoder --config transcoder.json`
import { createLogger } from '../../shared/log/index.js'
import { announceListening, parseCli, runUntilSignalled } from '../../shared/process/index.js'
import { buildTranscoder } from './app.js'
import { loadTranscoderConfig } from './config.js'

// The config table, for `vcdn transcoder --help` and docs/config.md.
export { transcoderSchema as configSchema } from './config.js'

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseCli(argv)
  const config = loadTranscoderConfig({ file: args.configFile })
  const log = createLogger({ tier: 'transcoder', level: config.logLevel })
  const transcoder = buildTranscoder(config, { log })
  runUntilSignalled(log, () => transcoder.close())
  const { port, adminPort } = await transcoder.listen()
  announceListening('transcoder', port, adminPort)
  if (config.maxJobs > 0) {
    // A batch worker: after its jobs it leaves like on SIGTERM.
    await transcoder.finished()
    process.kill(process.pid, 'SIGTERM')
  }
}
