// vcdn benchmarks: vcdn vs Debian nginx as the same two-tier cache, side by side in one run.
//   node dist/bench/run.js [--scenario name[,name]] [--duration s] [--runs n] [--connections n]
//                          [--client wrk|autocannon|stream] [--segment-client wrk|stream|trunc]
//                          [--headers player|bare] [--no-pin] [--out dir] [--smoke]
//                          [--jobs n] [--workers n] (job-bus) [--segments n] [--clients n] (origin-store)
//                          [--players n] [--videos n] [--video-seconds s] [--speed x] (players)
//                          [--duration s] [--height px] [--chunk-s s] [--fleets 1,2,4] (long-video: source length, 600 s;
//                          the split runs made)
//                          [--only vcdn|nginx] [--objects small|segment|small,segment] [--wrk-threads n] (workers)
// Each scenario prints one summary line and writes bench/results/<scenario>-<stamp>.json; the run
// ends with a combined table and bench/results/summary-<stamp>.json. Exit code 0 when every
// scenario ran (targets missed are results, not failures), 1 when one could not run.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ROOT, tempDir } from '../shared/testing/index.js'
import { LOAD_CLIENTS } from './lib/load.js'
import { configurePinning } from './lib/pin.js'
import { REQUEST_HEADER_SETS } from './lib/player-headers.js'
import {
  LONG_VIDEO_FLEETS,
  stamp,
  WORKERS_OBJECTS,
  WORKERS_STACKS,
  writeResult,
  type RunContext,
  type ScenarioResult,
} from './lib/report.js'
import { edgeRss } from './scenarios/edge-rss.js'
import { playlistHit, segmentHit, segmentServerBound } from './scenarios/hit.js'
import { httpsPlaylist, httpsSegment } from './scenarios/https.js'
import { jobBusScenario } from './scenarios/job-bus.js'
import { largeHit } from './scenarios/large-hit.js'
import { longVideoScenario } from './scenarios/long-video.js'
import { missStorm } from './scenarios/miss-storm.js'
import { originStoreScenario } from './scenarios/origin-store.js'
import { playersScenario } from './scenarios/players.js'
import { transcodeScenario } from './scenarios/transcode.js'
import { workersScenario } from './scenarios/workers.js'

export const SCENARIOS: Record<string, (ctx: RunContext) => Promise<ScenarioResult>> = {
  'playlist-hit': playlistHit,
  'segment-hit': segmentHit,
  'segment-server': segmentServerBound,
  'https-segment': httpsSegment,
  'https-playlist': httpsPlaylist,
  'miss-storm': missStorm,
  'edge-rss': edgeRss,
  transcode: transcodeScenario,
  'job-bus': jobBusScenario,
  'origin-store': originStoreScenario,
  'large-hit': largeHit,
  players: playersScenario,
  'long-video': longVideoScenario,
  workers: workersScenario,
}

/**
 * Run only when named (`--scenario`): job-bus and origin-store start a Kafka broker and SeaweedFS
 * (`make test-servers`), which alone can take a minute on a busy machine, and they compare vcdn's
 * own back ends rather than vcdn with nginx; large-hit writes 200 distinct 2 MB segments and warms
 * them through three servers (~2 GB on disk, ~1.2 GB in memory); players encodes its ladders with
 * ffmpeg on first use and starts three vcdn stacks (bench/test/players.test.ts runs it small);
 * long-video transcodes a 10-minute 1080p source four times with one ffmpeg thread per worker
 * (hours on a shared 2-core machine; minutes at `--duration 150 --height 360`); workers starts
 * four stacks and loads each edge with both objects (bench/test/workers.test.ts runs it small).
 */
const ON_REQUEST = new Set(['job-bus', 'origin-store', 'large-hit', 'players', 'long-video', 'workers'])

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${value}`)
  return n
}

/** Comma-separated values each one of `choices`, in the order of `choices`; all of them when absent. */
function someOf<T extends string>(name: string, v: string | undefined, choices: readonly T[]): T[] {
  if (v === undefined) return [...choices]
  const got = v.split(',').filter((x) => x !== '')
  for (const x of got)
    if (!choices.some((c) => c === x))
      throw new Error(`--${name} takes ${choices.join(', ')} (comma-separated), got ${x}`)
  if (got.length === 0) throw new Error(`--${name} names none of ${choices.join(', ')}`)
  return choices.filter((c) => got.includes(c))
}

/** A value of one of `choices`, or `fallback` when the option is absent. */
function oneOf<T extends string>(name: string, v: string | undefined, choices: readonly T[], fallback: T): T {
  if (v === undefined) return fallback
  const c = choices.find((x) => x === v)
  if (c === undefined) throw new Error(`--${name} must be one of ${choices.join(', ')}, got ${v}`)
  return c
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true },
      duration: { type: 'string' },
      runs: { type: 'string' },
      connections: { type: 'string' },
      out: { type: 'string' },
      client: { type: 'string' },
      'segment-client': { type: 'string' },
      headers: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      jobs: { type: 'string' },
      workers: { type: 'string' },
      segments: { type: 'string' },
      clients: { type: 'string' },
      players: { type: 'string' },
      videos: { type: 'string' },
      'video-seconds': { type: 'string' },
      speed: { type: 'string' },
      height: { type: 'string' },
      'chunk-s': { type: 'string' },
      fleets: { type: 'string' },
      only: { type: 'string' },
      objects: { type: 'string' },
      'wrk-threads': { type: 'string' },
    },
    strict: true,
  })
  const isSmoke = values.smoke === true
  const names = (values.scenario ?? Object.keys(SCENARIOS).filter((n) => !ON_REQUEST.has(n)))
    .flatMap((s) => s.split(','))
    .filter((s) => s !== '')
  for (const n of names)
    if (!(n in SCENARIOS)) throw new Error(`unknown scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`)
  const tmp = tempDir('vcdn-bench-')
  const ctx: RunContext = {
    dir: tmp.dir,
    durationS: positive('duration', values.duration, isSmoke ? 1 : 10),
    warmupS: isSmoke ? 0.5 : 3,
    runs: Math.round(positive('runs', values.runs, isSmoke ? 1 : 3)),
    connections: Math.round(positive('connections', values.connections, 100)),
    smallClient: oneOf('client', values.client, LOAD_CLIENTS, 'wrk'),
    segmentClient: oneOf('segment-client', values['segment-client'], LOAD_CLIENTS, 'wrk'),
    headerSet: oneOf('headers', values.headers, REQUEST_HEADER_SETS, 'player'),
    jobs: Math.round(positive('jobs', values.jobs, isSmoke ? 200 : 10_000)),
    workers: Math.round(positive('workers', values.workers, 2)),
    segments: Math.round(positive('segments', values.segments, isSmoke ? 8 : 64)),
    clients: Math.round(positive('clients', values.clients, isSmoke ? 4 : 16)),
    players: {
      players: Math.round(positive('players', values.players, isSmoke ? 10 : 200)),
      videos: Math.round(positive('videos', values.videos, isSmoke ? 5 : 50)),
      videoSeconds: Math.round(positive('video-seconds', values['video-seconds'], 20)),
      speed: positive('speed', values.speed, 4),
      // The players start evenly over the run's duration.
      rampS: positive('duration', values.duration, isSmoke ? 1 : 10),
    },
    longVideo: {
      // --duration is the source's length here (the other scenarios' seconds per load run).
      durationS: Math.round(positive('duration', values.duration, isSmoke ? 130 : 600)),
      heightPx: Math.round(positive('height', values.height, isSmoke ? 240 : 1080)),
      chunkS: Math.round(positive('chunk-s', values['chunk-s'], 60)),
      fleets: someOf('fleets', values.fleets, LONG_VIDEO_FLEETS),
    },
    workersBench: {
      stacks: someOf('only', values.only, WORKERS_STACKS),
      objects: someOf('objects', values.objects, WORKERS_OBJECTS),
      wrkThreads: Math.round(positive('wrk-threads', values['wrk-threads'], 2)),
    },
    isSmoke,
    outDir: values.out ?? join(ROOT, 'bench', 'results'),
    stamp: stamp(),
  }
  const pinning = configurePinning(values['no-pin'] !== true)
  console.log(
    `vcdn bench: ${names.join(', ')}; ${ctx.runs} run(s) of ${ctx.durationS} s per stack, ${ctx.connections} connections` +
      `; clients ${ctx.smallClient}/${ctx.segmentClient}; ${ctx.headerSet} request headers` +
      (pinning === null
        ? '; not pinned'
        : `; pinned: edge on cpu ${pinning.edgeCpus}, load generator + shields + origin on cpu ${pinning.otherCpus}`) +
      (isSmoke ? ' (smoke)' : ''),
  )
  const results: ScenarioResult[] = []
  const errors: string[] = []
  try {
    for (const name of names) {
      const fn = SCENARIOS[name] as (ctx: RunContext) => Promise<ScenarioResult>
      try {
        const loadBefore = loadavg()[0] ?? 0
        const r = await fn(ctx)
        // Shared 2-core machines: what else ran is part of the result.
        r.summary['loadavg1Before'] = Math.round(loadBefore * 100) / 100
        r.summary['loadavg1After'] = Math.round((loadavg()[0] ?? 0) * 100) / 100
        writeResult(ctx, r)
        results.push(r)
        console.log(r.line)
      } catch (err) {
        const msg = err instanceof Error ? (err.stack ?? err.message) : String(err)
        errors.push(`${name}: ${msg}`)
        console.log(`${name.padEnd(13)} ERROR ${msg.split('\n')[0] ?? ''}`)
        console.error(msg)
      }
    }
  } finally {
    tmp.remove()
  }
  mkdirSync(ctx.outDir, { recursive: true })
  const summaryFile = join(ctx.outDir, `summary-${ctx.stamp}.json`)
  writeFileSync(
    summaryFile,
    JSON.stringify(
      {
        startedAt: ctx.stamp,
        options: {
          durationS: ctx.durationS,
          runs: ctx.runs,
          connections: ctx.connections,
          clients: { small: ctx.smallClient, segment: ctx.segmentClient },
          headers: ctx.headerSet,
          pinning,
          isSmoke,
        },
        scenarios: Object.fromEntries(
          results.map((r) => [r.scenario, { line: r.line, isPass: r.isPass, target: r.target, summary: r.summary }]),
        ),
        errors,
      },
      null,
      2,
    ) + '\n',
  )
  console.log('\nsummary')
  for (const r of results) console.log(`  ${r.isPass ? 'meets ' : 'MISSES'}  ${r.line}`)
  for (const e of errors) console.log(`  ERROR   ${e.split('\n')[0] ?? ''}`)
  console.log(
    `load average (1 min) now ${(loadavg()[0] ?? 0).toFixed(2)} on ${cpus().length} cores (shared machine: noise)`,
  )
  console.log(`results in ${ctx.outDir} (summary-${ctx.stamp}.json)`)
  return errors.length > 0 ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(2)
  },
)
