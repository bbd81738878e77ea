// playlist-hit and segment-hit: a hot edge hit with the token check on, vcdn vs nginx, in
// alternating runs (vcdn, nginx, vcdn, nginx, …) after both stacks hold the object at both tiers.
import { requestHeaders } from '../lib/player-headers.js'
import { runLoad, type LoadClient, type LoadResult } from '../lib/load.js'
import { fmtBytes, fmtNum, ratio, type RunContext, type ScenarioResult } from '../lib/report.js'
import { startNginxStack, startOrigin, startVcdnStack, warmUntilHit, type Stack } from '../lib/stacks.js'
import { benchTls, negotiated, TLS_PROTOCOL, TLS_SUITE } from '../lib/tls.js'
import { median } from '../lib/util.js'
import { mediaPlaylist, PLAYLIST_PATH, SEGMENT_PATH, segmentBody } from './content.js'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

export interface HitSpec {
  scenario: string
  path: string
  body: Buffer
  metric: 'reqPerSec' | 'bytesPerSec'
  targetRatio: number
  /**
   * The target is judged on the ratio per edge core (figure ÷ the edge's CPU) instead of the raw
   * ratio: for loads whose client can saturate before the edge (HTTPS: wrk decrypts on its core).
   */
  isJudgedPerCore?: boolean
  /** The run's small-object or segment client, or one this scenario always uses. */
  client: 'small' | 'segment' | LoadClient
  /**
   * Load the edges' HTTPS listeners (one certificate for both) with a client limited to TLS 1.3 +
   * AES-128-GCM (lib/tls.ts); the warm-up checks still go over plain HTTP. wrk only.
   */
  isHttps?: boolean
}

export const playlistHit = (ctx: RunContext): Promise<ScenarioResult> =>
  hitComparison(ctx, {
    scenario: 'playlist-hit',
    path: PLAYLIST_PATH,
    body: mediaPlaylist(),
    metric: 'reqPerSec',
    targetRatio: 1.5,
    client: 'small',
  })

export const segmentHit = (ctx: RunContext): Promise<ScenarioResult> =>
  hitComparison(ctx, {
    scenario: 'segment-hit',
    path: SEGMENT_PATH,
    body: segmentBody(),
    metric: 'bytesPerSec',
    targetRatio: 2,
    client: 'segment',
  })

/**
 * segment-hit with the edge's core as the limit: the MSG_TRUNC client (lib/trunc-load.ts) costs
 * almost nothing per byte, where wrk on the other core saturates first whichever server it loads.
 */
export const segmentServerBound = (ctx: RunContext): Promise<ScenarioResult> =>
  hitComparison(ctx, {
    scenario: 'segment-server',
    path: SEGMENT_PATH,
    body: segmentBody(),
    metric: 'bytesPerSec',
    targetRatio: 2,
    client: 'trunc',
  })

export async function hitComparison(ctx: RunContext, spec: HitSpec): Promise<ScenarioResult> {
  const client = spec.client === 'small' ? ctx.smallClient : spec.client === 'segment' ? ctx.segmentClient : spec.client
  const headers = requestHeaders(ctx.headerSet)
  const dir = join(ctx.dir, spec.scenario)
  mkdirSync(dir, { recursive: true })
  if (spec.isHttps === true && client !== 'wrk')
    throw new Error(`${spec.scenario}: HTTPS loads need wrk, not ${client}`)
  const tls = spec.isHttps === true ? benchTls(join(dir, 'tls')) : null
  const env = tls?.clientEnv
  const origin = await startOrigin(dir)
  const stacks: Stack[] = []
  const notes: string[] = []
  try {
    await origin.store.put(spec.path.slice(1), spec.body)
    stacks.push(await startVcdnStack({ dir, upstream: origin.url, ...(tls !== null ? { tls: tls.edge } : {}) }))
    stacks.push(await startNginxStack({ dir, upstream: origin.url, ...(tls !== null ? { tls: tls.edge } : {}) }))
    // What the loads talk to: the HTTPS listener of each edge, after checking what a client
    // limited by the OpenSSL file negotiates there (and, for the record, one that is not).
    const targets = stacks.map((s): Stack => {
      if (tls === null) return s
      if (s.edgeTlsUrl === undefined) throw new Error(`${s.kind}: the edge has no HTTPS listener`)
      const got = negotiated(s.edgeTlsUrl, tls.clientEnv)
      if (got.protocol !== TLS_PROTOCOL || got.suite !== TLS_SUITE)
        throw new Error(
          `${s.kind}: the client negotiated ${got.protocol} ${got.suite}, not ${TLS_PROTOCOL} ${TLS_SUITE}`,
        )
      const free = negotiated(s.edgeTlsUrl, {})
      notes.push(
        `${s.kind}: the limited client negotiated ${got.protocol} ${got.suite}; openssl's default client ${free.protocol} ${free.suite}`,
      )
      return { ...s, edgeUrl: s.edgeTlsUrl }
    })
    const load = (s: Stack, durationS: number): Promise<LoadResult> =>
      runLoad(s, spec.path, {
        connections: ctx.connections,
        durationS,
        client,
        headers,
        ...(env !== undefined ? { env } : {}),
      })
    for (const [i, s] of stacks.entries()) {
      await warmUntilHit(s, spec.path, spec.body.length)
      await load(targets[i] as Stack, ctx.warmupS)
      await warmUntilHit(s, spec.path, spec.body.length) // still a hit at both tiers after the warm-up
    }
    const runs: LoadResult[] = []
    for (let i = 0; i < ctx.runs; i++) {
      for (const s of targets) runs.push(await load(s, ctx.durationS))
    }
    const of = (kind: string, f: (r: LoadResult) => number): number =>
      median(runs.filter((r) => r.stack === kind).map(f))
    const vcdn = of('vcdn', (r) => r[spec.metric])
    const nginx = of('nginx', (r) => r[spec.metric])
    const r = ratio(vcdn, nginx)
    // Per core of the edge's own CPU: on a 2-core machine the load generator may saturate first,
    // and then this is the comparison of the two servers' efficiency.
    const perCore = (x: LoadResult): number => (x.serverCpuPct > 0 ? x[spec.metric] / (x.serverCpuPct / 100) : 0)
    const vcdnPerCore = of('vcdn', perCore)
    const nginxPerCore = of('nginx', perCore)
    const failures = runs.reduce((n, x) => n + x.non2xx + x.errors, 0)
    const fmt = spec.metric === 'reqPerSec' ? (x: number) => `${fmtNum(x)} req/s` : (x: number) => `${fmtBytes(x)}/s`
    if (failures > 0) notes.push(`${failures} non-2xx responses or errors during the measured runs`)
    const line =
      `${spec.scenario.padEnd(13)} vcdn ${fmt(vcdn)}  nginx ${fmt(nginx)}  ratio ${r.toFixed(2)}×  ` +
      `(target ≥ ${spec.targetRatio}×${spec.isJudgedPerCore === true ? ' per edge core' : ''})  median of ${ctx.runs}` +
      `  [${client}${tls !== null ? ` over ${TLS_PROTOCOL} ${TLS_SUITE}` : ''}, ${ctx.headerSet} headers; per edge core ${ratio(vcdnPerCore, nginxPerCore).toFixed(2)}×; cpu% server/loadgen: vcdn ${of('vcdn', (x) => x.serverCpuPct)}/${of('vcdn', (x) => x.loadgenCpuPct)}` +
      ` nginx ${of('nginx', (x) => x.serverCpuPct)}/${of('nginx', (x) => x.loadgenCpuPct)}]` +
      (failures > 0 ? `  WARNING: ${failures} errors` : '')
    return {
      scenario: spec.scenario,
      line,
      summary: {
        vcdn,
        nginx,
        ratio: r,
        vcdnPerCore: Math.round(vcdnPerCore),
        nginxPerCore: Math.round(nginxPerCore),
        ratioPerCore: ratio(vcdnPerCore, nginxPerCore),
        targetRatio: spec.targetRatio,
        objectBytes: spec.body.length,
        vcdnLatencyP50Ms: of('vcdn', (x) => x.latencyP50Ms),
        nginxLatencyP50Ms: of('nginx', (x) => x.latencyP50Ms),
        vcdnServerCpuPct: of('vcdn', (x) => x.serverCpuPct),
        nginxServerCpuPct: of('nginx', (x) => x.serverCpuPct),
        vcdnLoadgenCpuPct: of('vcdn', (x) => x.loadgenCpuPct),
        nginxLoadgenCpuPct: of('nginx', (x) => x.loadgenCpuPct),
        failures,
      },
      target: `vcdn ${spec.metric}${spec.isJudgedPerCore === true ? ' per edge core' : ''} ≥ ${spec.targetRatio}× nginx`,
      isPass:
        (spec.isJudgedPerCore === true ? ratio(vcdnPerCore, nginxPerCore) : r) >= spec.targetRatio && failures === 0,
      runs,
      notes,
    }
  } finally {
    await Promise.allSettled(stacks.map((s) => s.close()))
    await origin.close()
  }
}
