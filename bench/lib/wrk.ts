// Load with Debian's wrk (C, epoll, one thread): several times cheaper per request than autocannon,
// so on these 2-core machines the server, not the client, is what saturates. It runs as a child
// pinned to the load-generator core (lib/load-child.ts) and reports through a Lua `done()` hook as
// one JSON line, so nothing depends on its human-readable output. Bounded by -d and a kill deadline.
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { runLoadChild, type ChildLoadOptions, type ChildLoadResult } from './load-child.js'
import { headerLines } from './player-headers.js'

export const WRK_BIN = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => existsSync(p)) ?? 'wrk'

// summary.errors.status counts responses that were not 2xx/3xx; latency is in microseconds.
const REPORT_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"bytes":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d,"non2xx":%d,"p50Us":%d,"p99Us":%d}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
`

let scriptPath: string | null = null
function reportScript(): string {
  if (scriptPath === null) {
    const path = join(tmpdir(), `vcdn-bench-wrk-${process.pid}.lua`)
    writeFileSync(path, REPORT_LUA)
    // One file per bench process, removed with it.
    process.once('exit', () => rmSync(path, { force: true }))
    scriptPath = path
  }
  return scriptPath
}

/** threads: wrk's -t (1 unless a scenario spreads the client over several cores). */
export async function runWrk(o: ChildLoadOptions & { threads?: number }): Promise<ChildLoadResult> {
  // wrk takes whole seconds; a smoke run's sub-second durations round up to 1 s.
  const durationS = Math.max(1, Math.round(o.durationS))
  const headerArgs = headerLines(o.headers).flatMap((line) => ['-H', line])
  const args = [`-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${durationS}s`, '--timeout', '10s', ...headerArgs]
  args.push('-s', reportScript(), o.url)
  const { report, cpuPct } = await runLoadChild({
    bin: WRK_BIN,
    args,
    durationS,
    marker: 'WRK_JSON',
    hint: 'make setup installs wrk',
    ...(o.env !== undefined ? { env: o.env } : {}),
    ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
  })
  const n = (k: string): number => report[k] ?? 0
  const wallS = n('durationUs') / 1e6
  return {
    requests: n('requests'),
    bytes: n('bytes'),
    reqPerSec: Math.round(n('requests') / wallS),
    bytesPerSec: Math.round(n('bytes') / wallS),
    latencyP50Ms: Math.round(n('p50Us') / 100) / 10,
    latencyP99Ms: Math.round(n('p99Us') / 100) / 10,
    non2xx: n('non2xx'),
    errors: n('connectErrors') + n('readErrors') + n('writeErrors') + n('timeouts'),
    cpuPct,
  }
}
