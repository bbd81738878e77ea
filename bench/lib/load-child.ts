// A load generator that runs as its own process (wrk, the MSG_TRUNC client), pinned to the
// load-generator cores (lib/pin.ts), reporting one `<MARKER> {json}` line on stdout. Its CPU is
// sampled from /proc while it runs. Bounded: the child stops itself after its duration; a hung one
// is killed (the pid is ours) 30 s later.
import { spawn } from 'node:child_process'
import { loadCpus } from './pin.js'
import { cpuSeconds } from './util.js'

/** What the load children (wrk, the MSG_TRUNC client) are asked to do. */
export interface ChildLoadOptions {
  url: string
  connections: number
  durationS: number
  /** Request headers besides Host. */
  headers: Readonly<Record<string, string>>
  /** Environment of the child besides this process's (OPENSSL_CONF of the HTTPS loads). */
  env?: Readonly<Record<string, string>>
  /** CPU list of the child instead of the load-generator cores (the workers scenario: every core). */
  cpus?: string
}

/** What a load child measured. */
export interface ChildLoadResult {
  requests: number
  bytes: number
  reqPerSec: number
  bytesPerSec: number
  latencyP50Ms: number
  latencyP99Ms: number
  non2xx: number
  errors: number
  /** CPU the child used, in % of one core (sampled from /proc while it ran). */
  cpuPct: number
}

interface LoadChildReport {
  report: Record<string, number>
  /** CPU the child used, in % of one core. */
  cpuPct: number
}

export function runLoadChild(o: {
  bin: string
  args: string[]
  durationS: number
  marker: string
  /** What to tell the operator when the binary is missing. */
  hint: string
  env?: Readonly<Record<string, string>>
  cpus?: string
}): Promise<LoadChildReport> {
  const cpus = o.cpus ?? loadCpus()
  const [cmd, argv] = cpus === null ? [o.bin, o.args] : ['taskset', ['-c', cpus, o.bin, ...o.args]]
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } })
    let out = ''
    let err = ''
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()))
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()))
    const deadline = setTimeout(() => proc.kill('SIGKILL'), (o.durationS + 30) * 1000)
    // The last sample misses < 250 ms of the child's CPU.
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
      reject(new Error(`cannot run ${o.bin}: ${e.message} (${o.hint})`))
    })
    proc.once('exit', (code, signal) => {
      clearTimeout(deadline)
      clearInterval(sampler)
      const line = new RegExp(`^${o.marker} (.*)$`, 'm').exec(out)?.[1]
      if (code !== 0 || line === undefined) {
        reject(new Error(`${o.bin} exited with ${code ?? signal}: ${err || out}`))
        return
      }
      resolve({
        report: JSON.parse(line) as Record<string, number>,
        cpuPct: cpuWallS > 0 ? Math.round((cpuS / cpuWallS) * 100) : 0,
      })
    })
  })
}
