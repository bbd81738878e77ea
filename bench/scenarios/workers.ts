// workers: how hot hits scale with the edge's request threads (issue 10; docs/architecture.md
// §9.1). Four edges, each its own two-tier stack in front of one origin:
//   vcdn  `workers: 1`          pinned to core 0      nginx `worker_processes 1`  pinned to core 0
//   vcdn  `workers: 2`          pinned to cores 0-1   nginx `worker_processes 2`  pinned to cores 0-1
// loaded in alternating runs (vcdn 1, vcdn 2, nginx 1, nginx 2, …) with two objects: the ~1 KB
// playlist (wrk, keep-alive, req/s) and the 2 MB segment (the MSG_TRUNC client, bytes/s). Figures:
// each median, the scaling factor 2 ÷ 1 of each server, and vcdn ÷ nginx at each count. With
// `workers: 2` every hit is a message round trip to the coordinator (the main thread, §9.1), so
// each vcdn run also reads the CPU of every thread of the edge process from /proc: the
// coordinator's share is the serial part of the scaling (bench/README.md "Workers").
//
// On a 2-core machine the client must share the cores of a 2-worker edge, so it runs on every core
// for all four configurations (lib/pin.ts spreadLayout): the same client everywhere, and a ratio
// that says how the servers scale when the client costs what it costs (bench/README.md).
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { metric } from '../../shared/testing/index.js'
import { runLoad, type LoadClient, type LoadResult } from '../lib/load.js'
import { loadCpus, spreadLayout } from '../lib/pin.js'
import { requestHeaders } from '../lib/player-headers.js'
import {
  fmtBytes,
  fmtNum,
  ratio,
  WORKERS_STACKS,
  type RunContext,
  type ScenarioResult,
  type WorkersObject,
  type WorkersStack,
} from '../lib/report.js'
import {
  startNginxStack,
  startOrigin,
  startVcdnStack,
  warmUntilHit,
  type Stack,
  type VcdnStack,
} from '../lib/stacks.js'
import { median, round, threadCpuSeconds } from '../lib/util.js'
import { mediaPlaylist, PLAYLIST_PATH, SEGMENT_PATH, segmentBody } from './content.js'

/** The counts compared; 2 is what a 2-core machine can pin (spreadLayout refuses more). */
const COUNTS = [1, 2] as const

interface ObjectSpec {
  name: WorkersObject
  path: string
  body: Buffer
  client: LoadClient
  metric: 'reqPerSec' | 'bytesPerSec'
}

interface Edge {
  kind: WorkersStack
  workers: number
  /** `vcdn1`, `nginx2`, … (summary fields and the per-run records). */
  label: string
  stack: Stack
}

/** A measured run with, for vcdn, the CPU of its threads. */
interface WorkersRun extends LoadResult {
  label: string
  object: WorkersObject
  workers: number
  /** vcdn: the main thread (the coordinator with workers > 1, the whole server with 1), % of a core. */
  mainThreadCpuPct: number
  /** vcdn: every other thread of the edge process (request threads, libuv, V8), % of a core each, busiest first. */
  otherThreadsCpuPct: number[]
}

export async function workersScenario(ctx: RunContext): Promise<ScenarioResult> {
  const dir = join(ctx.dir, 'workers')
  mkdirSync(dir, { recursive: true })
  const headers = requestHeaders(ctx.headerSet)
  const objects: ObjectSpec[] = [
    { name: 'small', path: PLAYLIST_PATH, body: mediaPlaylist(), client: 'wrk', metric: 'reqPerSec' },
    { name: 'segment', path: SEGMENT_PATH, body: segmentBody(), client: 'trunc', metric: 'bytesPerSec' },
  ].filter((o): o is ObjectSpec => ctx.workersBench.objects.includes(o.name as WorkersObject))
  const origin = await startOrigin(dir)
  const edges: Edge[] = []
  try {
    for (const o of objects) await origin.store.put(o.path.slice(1), o.body)
    for (const kind of WORKERS_STACKS.filter((k) => ctx.workersBench.stacks.includes(k)))
      for (const workers of COUNTS) {
        // Each stack its own directory: the tiers' caches and nginx's temp files never meet.
        const at = join(dir, `${kind}${workers}`)
        mkdirSync(at, { recursive: true })
        const stack =
          kind === 'vcdn'
            ? await startVcdnStack({ dir: at, upstream: origin.url, workers })
            : await startNginxStack({ dir: at, upstream: origin.url, edgeWorkers: workers })
        edges.push({ kind, workers, label: `${kind}${workers}`, stack })
        await checkWorkers(edges.at(-1) as Edge)
      }

    const load = async (e: Edge, o: ObjectSpec, durationS: number): Promise<WorkersRun> => {
      const pin = spreadLayout(e.workers)
      const pid = 'edge' in e.stack ? (e.stack as VcdnStack).edge.proc.pid : undefined
      const before = pid === undefined ? new Map<number, number>() : threadCpuSeconds(pid)
      const t0 = process.hrtime.bigint()
      const r = await runLoad(e.stack, o.path, {
        connections: ctx.connections,
        durationS,
        client: o.client,
        headers,
        wrkThreads: ctx.workersBench.wrkThreads,
        ...(pin !== null ? { pin } : {}),
      })
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9
      const after = pid === undefined ? new Map<number, number>() : threadCpuSeconds(pid)
      const pct = (tid: number): number => round((((after.get(tid) ?? 0) - (before.get(tid) ?? 0)) / wallS) * 100)
      const others = [...after.keys()].filter((tid) => tid !== pid).map(pct)
      return {
        ...r,
        label: e.label,
        object: o.name,
        workers: e.workers,
        mainThreadCpuPct: pid === undefined ? 0 : pct(pid),
        otherThreadsCpuPct: others.sort((a, b) => b - a),
      }
    }

    for (const e of edges) for (const o of objects) await warmUntilHit(e.stack, o.path, o.body.length)
    for (const e of edges) for (const o of objects) await load(e, o, ctx.warmupS)
    for (const e of edges) for (const o of objects) await warmUntilHit(e.stack, o.path, o.body.length)

    const missesBefore = await vcdnMisses(edges)
    const runs: WorkersRun[] = []
    for (const o of objects)
      for (let i = 0; i < ctx.runs; i++) for (const e of edges) runs.push(await load(e, o, ctx.durationS))
    const misses = (await vcdnMisses(edges)) - missesBefore
    return report(ctx, objects, edges, runs, misses)
  } finally {
    await Promise.allSettled(edges.map((e) => e.stack.close()))
    await origin.close()
  }
}

/** The edge really runs `workers` request threads / worker processes: otherwise nothing here means anything. */
async function checkWorkers(e: Edge): Promise<void> {
  const got =
    e.kind === 'vcdn'
      ? await metric((e.stack as VcdnStack).edge.adminUrl, 'vcdn_edge_workers')
      : // The master's children also include the cache manager and loader.
        e.stack.edgePids().filter((pid) => processTitle(pid).startsWith('nginx: worker process')).length
  if (got !== e.workers) throw new Error(`${e.label}: ${got} request threads or worker processes, not ${e.workers}`)
}

function processTitle(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return ''
  }
}

async function vcdnMisses(edges: readonly Edge[]): Promise<number> {
  let n = 0
  for (const e of edges)
    if (e.kind === 'vcdn') n += await metric((e.stack as VcdnStack).edge.adminUrl, 'vcdn_edge_cache_misses_total')
  return n
}

function report(
  ctx: RunContext,
  objects: readonly ObjectSpec[],
  edges: readonly Edge[],
  runs: readonly WorkersRun[],
  misses: number,
): ScenarioResult {
  const summary: Record<string, number> = {}
  const parts: string[] = []
  const cpuParts: string[] = []
  for (const o of objects) {
    const of = (label: string, f: (r: WorkersRun) => number): number =>
      median(runs.filter((r) => r.object === o.name && r.label === label).map(f))
    const fmt = o.metric === 'reqPerSec' ? (x: number) => `${fmtNum(x)} req/s` : (x: number) => `${fmtBytes(x)}/s`
    const field = (label: string, what = ''): string => `${o.name}${label[0]?.toUpperCase()}${label.slice(1)}${what}`
    for (const e of edges) {
      summary[field(e.label)] = of(e.label, (r) => r[o.metric])
      summary[field(e.label, 'ServerCpuPct')] = of(e.label, (r) => r.serverCpuPct)
      summary[field(e.label, 'LoadgenCpuPct')] = of(e.label, (r) => r.loadgenCpuPct)
      // Server CPU per request (µs): what a core more buys, whatever share of the cores the client took.
      summary[field(e.label, 'ServerUsPerRequest')] = of(e.label, (r) =>
        r.reqPerSec > 0 ? round((r.serverCpuPct / 100 / r.reqPerSec) * 1e6, 1) : 0,
      )
    }
    const kinds = WORKERS_STACKS.filter((k) => edges.some((e) => e.kind === k))
    const scaling: string[] = []
    for (const k of kinds) {
      const one = summary[field(`${k}1`)] ?? 0
      const two = summary[field(`${k}2`)] ?? 0
      summary[field(k, 'Scaling')] = ratio(two, one)
      // Figure per server CPU, 2 ÷ 1: 1.0 when the second thread costs nothing more per request.
      const perCpu = (n: number): number => {
        const cpu = summary[field(`${k}${n}`, 'ServerCpuPct')] ?? 0
        return cpu > 0 ? (summary[field(`${k}${n}`)] ?? 0) / cpu : 0
      }
      summary[field(k, 'ScalingPerServerCpu')] = ratio(perCpu(2), perCpu(1))
      scaling.push(`${k} ${fmt(one)} → ${fmt(two)} (${ratio(two, one).toFixed(2)}×)`)
    }
    if (kinds.length === 2)
      for (const n of COUNTS)
        summary[field(`vcdnPerNginx${n}`)] = ratio(summary[field(`vcdn${n}`)] ?? 0, summary[field(`nginx${n}`)] ?? 0)
    if (kinds.includes('vcdn')) {
      // The coordinator's thread: Amdahl's serial part. Its CPU per request, and the figure at
      // which it would be at 100 % of its core if nothing else limited first.
      const coord = of('vcdn2', (r) => r.mainThreadCpuPct)
      const total = summary[field('vcdn2', 'ServerCpuPct')] ?? 0
      const figure = summary[field('vcdn2')] ?? 0
      summary[field('vcdn2', 'CoordinatorCpuPct')] = coord
      summary[field('vcdn2', 'CoordinatorShare')] = ratio(coord, total)
      summary[field('vcdn2', 'CoordinatorUsPerRequest')] = of('vcdn2', (r) =>
        r.reqPerSec > 0 ? round((r.mainThreadCpuPct / 100 / r.reqPerSec) * 1e6, 1) : 0,
      )
      summary[field('vcdn2', 'CoordinatorBound')] = coord > 0 ? Math.round((figure * 100) / coord) : 0
      summary[field('vcdn2', 'BusiestWorkerCpuPct')] = of('vcdn2', (r) => r.otherThreadsCpuPct[0] ?? 0)
      summary[field('vcdn2', 'SecondWorkerCpuPct')] = of('vcdn2', (r) => r.otherThreadsCpuPct[1] ?? 0)
      cpuParts.push(
        `${o.name}: coordinator ${coord} % of a core (${Math.round(ratio(coord, total) * 100)} % of vcdn2's ${total} %), ` +
          `${summary[field('vcdn2', 'CoordinatorUsPerRequest')]} µs/req`,
      )
    }
    const vs =
      kinds.length === 2
        ? `  vcdn÷nginx ${COUNTS.map((n) => `${n}: ${(summary[field(`vcdnPerNginx${n}`)] ?? 0).toFixed(2)}×`).join(' ')}`
        : ''
    parts.push(`${o.name}: ${scaling.join('  ')}${vs}`)
  }
  const failures = runs.reduce((n, r) => n + r.non2xx + r.errors, 0)
  summary['failures'] = failures
  summary['vcdnMissesDuringRuns'] = misses
  const notes: string[] = []
  if (failures > 0) notes.push(`${failures} non-2xx responses or errors during the measured runs`)
  if (misses > 0) notes.push(`vcdn's edges missed ${misses} times while measuring: not all hits`)
  const layout = loadCpus() === null ? 'not pinned' : 'edges on cpu 0 / 0-1, clients on every cpu'
  const line =
    `workers       ${parts.join('  |  ')}  median of ${ctx.runs}` +
    `  [wrk -t${ctx.workersBench.wrkThreads} / trunc, ${ctx.connections} connections, ${layout}` +
    (cpuParts.length > 0 ? `; ${cpuParts.join('; ')}` : '') +
    ']' +
    (failures > 0 ? `  WARNING: ${failures} errors` : '') +
    (misses > 0 ? `  WARNING: vcdn misses ${misses}` : '')
  return {
    scenario: 'workers',
    line,
    summary,
    target: 'none: figures for issue 10 (scaling factors); every response a 2xx hit',
    isPass: failures === 0 && misses === 0,
    runs: [...runs],
    notes,
  }
}
