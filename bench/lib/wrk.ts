// Load with Debian's wrk (C, epoll, one thread): several times cheaper per request than autocannon,
// so on these 2-core machines the server, not the client, is what saturates. It runs as a child
// pinned to the load-generator core (lib/pin.ts) and reports through a Lua `done()` hook as one
// JSON line, so nothing depends on its human-readable output. Bounded by -d and a kill deadline.
import { spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { loadCpus } from './pin.js'
import { cpuSeconds } from './util.js'

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
    scriptPath = join(tmpdir(), `vcdn-bench-wrk-${process.pid}.lua`)
    writeFileSync(scriptPath, REPORT_LUA)
  }
  return scriptPath
}

export interface WrkOptions {
  url: string
  connections: number
  durationS: number
}

export interface WrkResult {
  requests: number
  bytes: number
  reqPerSec: number
  bytesPerSec: number
  latencyP50Ms: number
  latencyP99Ms: number
  non2xx: number
  errors: number
  /** CPU the wrk process used, in % of one core (sampled from /proc while it ran). */
  cpuPct: number
}

export function runWrk(o: WrkOptions): Promise<WrkResult> {
  // wrk takes whole seconds; a smoke run's sub-second durations round up to 1 s.
  const durationS = Math.max(1, Math.round(o.durationS))
  const args = ['-t1', `-c${o.connections}`, `-d${durationS}s`, '--timeout', '10s', '-s', reportScript(), o.url]
  const cpus = loadCpus()
  const [cmd, argv] = cpus === null ? [WRK_BIN, args] : ['taskset', ['-c', cpus, WRK_BIN, ...args]]
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()))
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()))
    // wrk stops itself after -d; this only guards against a hung child (the pid is ours).
    const deadline = setTimeout(() => proc.kill('SIGKILL'), (durationS + 30) * 1000)
    // The child's CPU, sampled from /proc while it runs (the last sample misses < 250 ms of it).
    const t0 = process.hrtime.bigint()
    let cpuS = 0
    let cpuWallS = 0
    const sampler = setInterval(() => {
      if (proc.pid === undefined) return
      const c = cpuSeconds(proc.pid)
      if (c > 0) {
        cpuS = c
        cpuWallS = Number(process.hrtime.bigint() - t0) / 1e9
      }
    }, 250)
    proc.once('error', (e) => {
      clearTimeout(deadline)
      clearInterval(sampler)
      reject(new Error(`cannot run ${WRK_BIN}: ${e.message} (make setup installs wrk)`))
    })
    proc.once('exit', (code, signal) => {
      clearTimeout(deadline)
      clearInterval(sampler)
      const line = /^WRK_JSON (.*)$/m.exec(out)?.[1]
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk exited with ${code ?? signal}: ${err || out}`))
        return
      }
      const j = JSON.parse(line) as Record<string, number>
      const n = (k: string): number => j[k] ?? 0
      const wallS = n('durationUs') / 1e6
      resolve({
        requests: n('requests'),
        bytes: n('bytes'),
        reqPerSec: Math.round(n('requests') / wallS),
        bytesPerSec: Math.round(n('bytes') / wallS),
        latencyP50Ms: Math.round(n('p50Us') / 100) / 10,
        latencyP99Ms: Math.round(n('p99Us') / 100) / 10,
        non2xx: n('non2xx'),
        errors: n('connectErrors') + n('readErrors') + n('writeErrors') + n('timeouts'),
        cpuPct: cpuWallS > 0 ? Math.round((cpuS / cpuWallS) * 100) : 0,
      })
    })
  })
}
