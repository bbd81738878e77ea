// Load with wrk (a pinned child, the default), autocannon or the raw client (both in this process),
// with the CPU each side used during the run so a result can be read as "who was the bottleneck".
import autocannon from 'autocannon'
import type { Stack } from './stacks.js'
import { pinEdge, pinTo } from './pin.js'
import { streamLoad } from './stream-load.js'
import { runTrunc, type TruncPaths } from './trunc-load.js'
import { runWrk } from './wrk.js'
import { cpuSeconds, round } from './util.js'

type Measured = Pick<
  LoadResult,
  'reqPerSec' | 'bytesPerSec' | 'requests' | 'latencyP50Ms' | 'latencyP99Ms' | 'non2xx' | 'errors'
>

export interface LoadOptions {
  connections: number
  durationS: number
  /** wrk (C, pinned to the load-generator core), autocannon (in this process), the raw
   * byte-counting client (in this process), or the MSG_TRUNC client (pinned, lib/trunc-load.ts). */
  client: LoadClient
  /** Request headers besides Host, sent with every request (lib/player-headers.ts). */
  headers: Readonly<Record<string, string>>
  /** Environment of a load child besides this process's (wrk over HTTPS: OPENSSL_CONF). */
  env?: Readonly<Record<string, string>>
  /** trunc only: a file of client paths, one a line, drawn per request (lib/trunc-client.py). */
  paths?: TruncPaths
  /**
   * CPU lists of the edge and of a load child instead of lib/pin.ts's default layout (the workers
   * scenario: spreadLayout).
   */
  pin?: { edgeCpus: string; loadCpus: string }
  /** wrk only: its threads (-t), 1 unless given. */
  wrkThreads?: number
}

export type LoadClient = 'wrk' | 'autocannon' | 'stream' | 'trunc'
export const LOAD_CLIENTS: readonly LoadClient[] = ['wrk', 'autocannon', 'stream', 'trunc']

export interface LoadResult {
  stack: string
  reqPerSec: number
  bytesPerSec: number
  requests: number
  latencyP50Ms: number
  latencyP99Ms: number
  non2xx: number
  errors: number
  /** CPU used by the edge's processes during the run, in % of one core. */
  serverCpuPct: number
  /** CPU used by the load generator (wrk, or this process) during the run, in % of one core. */
  loadgenCpuPct: number
  client: LoadClient
}

export async function runLoad(stack: Stack, path: string, o: LoadOptions): Promise<LoadResult> {
  const pids = stack.edgePids()
  // Again: an nginx worker may have been forked after the stack was pinned.
  if (o.pin === undefined) pinEdge(pids)
  else pinTo(pids, o.pin.edgeCpus)
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0)
  const self0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  let childCpuPct: number | null = null
  let r: Measured
  if (o.client === 'wrk' || o.client === 'trunc') {
    const w = await (o.client === 'wrk' ? runWrk : runTrunc)({
      url: stack.edgeUrl + stack.sign(path),
      connections: o.connections,
      durationS: o.durationS,
      headers: o.headers,
      ...(o.env !== undefined ? { env: o.env } : {}),
      ...(o.paths !== undefined ? { paths: o.paths } : {}),
      ...(o.pin !== undefined ? { cpus: o.pin.loadCpus } : {}),
      ...(o.wrkThreads !== undefined ? { threads: o.wrkThreads } : {}),
    })
    childCpuPct = w.cpuPct
    r = w
  } else {
    r = o.client === 'stream' ? await viaStream(stack, path, o) : await viaAutocannon(stack, path, o)
  }
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu1 = pids.reduce((s, p) => s + cpuSeconds(p), 0)
  const self = process.cpuUsage(self0)
  return {
    stack: stack.kind,
    reqPerSec: r.reqPerSec,
    bytesPerSec: r.bytesPerSec,
    requests: r.requests,
    latencyP50Ms: r.latencyP50Ms,
    latencyP99Ms: r.latencyP99Ms,
    non2xx: r.non2xx,
    errors: r.errors,
    serverCpuPct: round(((cpu1 - cpu0) / wallS) * 100),
    loadgenCpuPct: childCpuPct ?? round(((self.user + self.system) / 1e6 / wallS) * 100),
    client: o.client,
  }
}

async function viaAutocannon(stack: Stack, path: string, o: LoadOptions): Promise<Measured> {
  const r = await autocannon({
    url: stack.edgeUrl + stack.sign(path),
    connections: o.connections,
    pipelining: 1,
    duration: o.durationS,
    headers: { ...o.headers },
    timeout: 10,
  })
  return {
    reqPerSec: round(r.requests.average),
    bytesPerSec: round(r.throughput.average),
    requests: r.requests.total,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  }
}

async function viaStream(stack: Stack, path: string, o: LoadOptions): Promise<Measured> {
  const r = await streamLoad({
    port: Number(new URL(stack.edgeUrl).port),
    path: stack.sign(path),
    connections: o.connections,
    durationS: o.durationS,
    headers: o.headers,
  })
  return {
    reqPerSec: r.reqPerSec,
    bytesPerSec: r.bytesPerSec,
    requests: r.requests,
    latencyP50Ms: round(r.latencyP50Ms, 1),
    latencyP99Ms: round(r.latencyP99Ms, 1),
    non2xx: r.non2xx,
    errors: r.errors,
  }
}
