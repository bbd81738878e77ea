// playlist-hit and segment-hit: a hot edge hit with the token check on, vcdn vs nginx, in
// alternating runs (vcdn, nginx, vcdn, nginx, …) after both stacks hold the object at both tiers.
import { requestHeaders } from '../lib/player-headers.js'
import { runLoad, type LoadClient, type LoadResult } from '../lib/load.js'
import { fmtBytes, fmtNum, ratio, type RunContext, type ScenarioResult } from '../lib/report.js'
import { startNginxStack, startOrigin, startVcdnStack, warmUntilHit, type Stack } from '../lib/stacks.js'
import { median } from '../lib/util.js'
import { mediaPlaylist, PLAYLIST_PATH, SEGMENT_PATH, segmentBody } from './content.js'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

interface HitSpec {
  scenario: string
  path: string
  body: Buffer
  metric: 'reqPerSec' | 'bytesPerSec'
  targetRatio: number
  /** The run's small-object or segment client, or one this scenario always uses. */
  client: 'small' | 'segment' | LoadClient
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

async function hitComparison(ctx: RunContext, spec: HitSpec): Promise<ScenarioResult> {
  const client = spec.client === 'small' ? ctx.smallClient : spec.client === 'segment' ? ctx.segmentClient : spec.client
  const headers = requestHeaders(ctx.headerSet)
  const dir = join(ctx.dir, spec.scenario)
  mkdirSync(dir, { recursive: true })
  const origin = await startOrigin(dir)
  const stacks: Stack[] = []
  try {
    await origin.store.put(spec.path.slice(1), spec.body)
    stacks.push(await startVcdnStack({ dir, upstream: origin.url }))
    stacks.push(await startNginxStack({ dir, upstream: origin.url }))
    for (const s of stacks) {
      await warmUntilHit(s, spec.path, spec.body.length)
      await runLoad(s, spec.path, { connections: ctx.connections, durationS: ctx.warmupS, client, headers })
      await warmUntilHit(s, spec.path, spec.body.length) // still a hit at both tiers after the warm-up
    }
    const runs: LoadResult[] = []
    for (let i = 0; i < ctx.runs; i++) {
      for (const s of stacks)
        runs.push(
          await runLoad(s, spec.path, { connections: ctx.connections, durationS: ctx.durationS, client, headers }),
        )
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
    const notes: string[] = []
    if (failures > 0) notes.push(`${failures} non-2xx responses or errors during the measured runs`)
    const line =
      `${spec.scenario.padEnd(13)} vcdn ${fmt(vcdn)}  nginx ${fmt(nginx)}  ratio ${r.toFixed(2)}×  ` +
      `(target ≥ ${spec.targetRatio}×)  median of ${ctx.runs}` +
      `  [${client}, ${ctx.headerSet} headers; per edge core ${ratio(vcdnPerCore, nginxPerCore).toFixed(2)}×; cpu% server/loadgen: vcdn ${of('vcdn', (x) => x.serverCpuPct)}/${of('vcdn', (x) => x.loadgenCpuPct)}` +
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
      target: `vcdn ${spec.metric} ≥ ${spec.targetRatio}× nginx`,
      isPass: r >= spec.targetRatio && failures === 0,
      runs,
      notes,
    }
  } finally {
    await Promise.allSettled(stacks.map((s) => s.close()))
    await origin.close()
  }
}
