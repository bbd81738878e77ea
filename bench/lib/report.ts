// Results: one summary line per scenario on stdout, one JSON file per scenario, one combined file.
import type { LoadClient } from './load.js'
import type { RequestHeaderSet } from './player-headers.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface ScenarioResult {
  scenario: string
  /** The one summary line printed for the scenario. */
  line: string
  /** Headline figures; every value a finite number. */
  summary: Record<string, number>
  /** The targets the figures are judged against, in words. */
  target: string
  isPass: boolean
  /** Everything measured, per run. */
  runs: unknown[]
  notes: string[]
}

/** The servers and the objects the workers scenario can load (`--only`, `--objects`). */
export const WORKERS_STACKS = ['vcdn', 'nginx'] as const
export type WorkersStack = (typeof WORKERS_STACKS)[number]
export const WORKERS_OBJECTS = ['small', 'segment'] as const
export type WorkersObject = (typeof WORKERS_OBJECTS)[number]

/** The fleet sizes of the long-video scenario's split runs. */
export const LONG_VIDEO_FLEETS = ['1', '2', '4'] as const
export type LongVideoFleet = (typeof LONG_VIDEO_FLEETS)[number]

export interface RunContext {
  /** Temp directory of this run (removed at the end). */
  dir: string
  durationS: number
  warmupS: number
  runs: number
  connections: number
  /** Load generator of the small-object loads (playlist-hit): wrk (default), autocannon, or the raw client. */
  smallClient: LoadClient
  /** Load generator of the 2 MB loads (segment-hit): wrk (default) or the raw client. */
  segmentClient: LoadClient
  /** Which request headers every load sends (lib/player-headers.ts). */
  headerSet: RequestHeaderSet
  /** job-bus: jobs per run, and the size of the no-op worker group. */
  jobs: number
  workers: number
  /** origin-store: distinct 2 MB segments in each store, and concurrent client connections. */
  segments: number
  clients: number
  /** players: simulated players, videos, each video's length, time compression, start ramp. */
  players: { players: number; videos: number; videoSeconds: number; speed: number; rampS: number }
  /**
   * long-video: the source's length and height, the chunk length of the split runs, and the fleet
   * sizes whose split runs are made (`--fleets`, all of 1, 2, 4 by default; the model covers every
   * size from the largest run made).
   */
  longVideo: { durationS: number; heightPx: number; chunkS: number; fleets: readonly LongVideoFleet[] }
  /**
   * workers: which servers and which objects it loads (`--only`, `--objects`), and wrk's threads
   * (`--wrk-threads`, 2: the client can use both cores when a 2-worker server does; one wrk thread
   * would cap those runs at one core of client). The MSG_TRUNC client is one process.
   */
  workersBench: { stacks: readonly WorkersStack[]; objects: readonly WorkersObject[]; wrkThreads: number }
  isSmoke: boolean
  outDir: string
  stamp: string
}

export function stamp(d = new Date()): string {
  return d.toISOString().replace(/[:.]/g, '-')
}

export function writeResult(ctx: RunContext, r: ScenarioResult): string {
  mkdirSync(ctx.outDir, { recursive: true })
  const file = join(ctx.outDir, `${r.scenario}-${ctx.stamp}.json`)
  const options = {
    durationS: ctx.durationS,
    warmupS: ctx.warmupS,
    runs: ctx.runs,
    connections: ctx.connections,
    smallClient: ctx.smallClient,
    segmentClient: ctx.segmentClient,
    jobs: ctx.jobs,
    workers: ctx.workers,
    segments: ctx.segments,
    clients: ctx.clients,
    players: ctx.players,
    longVideo: ctx.longVideo,
    workersBench: ctx.workersBench,
    isSmoke: ctx.isSmoke,
  }
  writeFileSync(file, JSON.stringify({ ...r, options, startedAt: ctx.stamp }, null, 2) + '\n')
  return file
}

export function fmtNum(x: number): string {
  return Math.round(x).toLocaleString('en-US').replace(/,/g, ' ')
}

export function fmtBytes(x: number): string {
  return `${(x / 1024 / 1024).toFixed(1)} MiB`
}

export function ratio(a: number, b: number): number {
  return b > 0 ? Math.round((a / b) * 100) / 100 : 0
}
