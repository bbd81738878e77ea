// long-video: split-and-stitch across a fleet (docs/architecture.md §8). One generated source of
// `--duration` s (600) at `--height` (1080p) goes through the whole pipeline (real origin with the
// embedded queue + N `vcdn transcoder` processes from dist/, every one with ffmpegThreads 1):
// unsplit with 1 transcoder (the reference), then split into `--chunk-s` (60 s) chunks with 1, 2
// and 4 transcoders. Measured per configuration: wall time upload complete → ready, the CPU-seconds
// of every transcoder's ffmpeg/ffprobe runs (its waited-for children), and each chunk's, the audio
// job's and the stitch's own figures from the transcoders' log lines. From those the time-to-ready
// a fleet of N machines would see (lib/fleet-model.ts; bench/README.md says why wall time on this
// box is not it).
// Targets: fleet time-to-ready with 4 ≤ 0.35× the unsplit one, total CPU-s split ≤ 1.15× unsplit.
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import {
  makeClip,
  ROOT,
  startFullStack,
  waitFor,
  type FullStack,
  type TierProcess,
} from '../../shared/testing/index.js'
import { fleetTimeToReadyS } from '../lib/fleet-model.js'
import type { RunContext, ScenarioResult } from '../lib/report.js'

const CLOCK_TICKS_PER_S = 100
/** The fleet sizes of the split runs. */
const FLEET = [1, 2, 4] as const
const TARGET_FLEET_RATIO = 0.35
const TARGET_CPU_RATIO = 1.15
/**
 * How long the log lines of a ready video's jobs may take to appear: `ready` is set by the job's
 * completion call, which the transcoder logs only after the origin answered it.
 */
const LOG_LINES_TIMEOUT_MS = 30_000

interface Config {
  readonly name: string
  readonly isSplit: boolean
  readonly transcoders: number
}

/** The unsplit reference, then a split run per fleet size asked for (`--fleets`). */
function configsFor(fleets: readonly number[]): Config[] {
  return [
    { name: 'unsplit-1', isSplit: false, transcoders: 1 },
    ...fleets.map((n) => ({ name: `split-${n}`, isSplit: true, transcoders: n })),
  ]
}

/** A process's own CPU and that of the children it has waited for, in seconds (proc(5)). */
function processCpuS(pid: number): { ownS: number; childrenS: number } {
  // Fields after "(comm) ": state is [0]; utime, stime, cutime, cstime are [11]..[14].
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  const ticks = (i: number): number => Number(f[i])
  return {
    ownS: (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_S,
    childrenS: (ticks(13) + ticks(14)) / CLOCK_TICKS_PER_S,
  }
}

interface LogLine {
  msg?: string
  videoId?: string
  chunk?: number
  ms?: number
  cpuS?: number
  encodeCpuS?: number
  encodeWallS?: number
}

function logLines(t: TierProcess): LogLine[] {
  const out: LogLine[] = []
  for (const line of t.output().split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      out.push(JSON.parse(line) as LogLine)
    } catch {
      // not a log line
    }
  }
  return out
}

/** One job as the transcoder logged it: wall seconds, CPU-seconds (its own + ffmpeg's), its encode run's. */
interface JobFigures {
  jobS: number
  cpuS: number
  encodeCpuS: number
  encodeWallS: number
}

interface ConfigRun {
  config: string
  videoId: string
  transcoders: number
  /** Upload complete (the tus upload's last PATCH answered) → the video reads ready. */
  wallS: number
  /** Over the fleet: CPU of every ffmpeg/ffprobe run (waited-for children) and of the Node processes. */
  ffmpegCpuS: number
  nodeCpuS: number
  /** The transcoder each chunk ran on, and its figures. */
  chunks: (JobFigures & { index: number; worker: string })[]
  /** The audio job (split runs of a source with audio), queued before the chunks. */
  audio: (JobFigures & { worker: string }) | null
  /** The whole job (unsplit) or the stitch job. */
  job: JobFigures
  /** The split run's jobs in queue order (the audio job, then the chunks), at their CPU-seconds. */
  partCpuS: number[]
  /**
   * The fleet model's time-to-ready: unsplit, the job's CPU-seconds; split, this run's audio job and
   * chunks (in queue order, the audio first) on `transcoders` machines at their CPU-seconds, then
   * the stitch at its CPU-seconds.
   */
  modelS: number
  /** The same with the stitch at its measured wall time (an upper bound on this shared machine). */
  modelWallStitchS: number
}

/** What the API says of a split video's parts (origin/src/api/videos.ts). */
interface ProcessingView {
  processing: { chunks: { total: number }; audio: object | null } | null
}

/** The completed lines of video `id`'s jobs on the fleet's logs, so far. */
function jobLines(
  fleet: readonly TierProcess[],
  id: string,
): Pick<ConfigRun, 'chunks' | 'audio'> & { job: JobFigures | null } {
  const chunks: ConfigRun['chunks'] = []
  let audio: ConfigRun['audio'] = null
  let job: JobFigures | null = null
  for (const [i, t] of fleet.entries()) {
    for (const l of logLines(t)) {
      if (l.videoId !== id || typeof l.ms !== 'number') continue
      if (typeof l.cpuS !== 'number' || typeof l.encodeCpuS !== 'number' || typeof l.encodeWallS !== 'number') continue
      const figures = { jobS: l.ms / 1000, cpuS: l.cpuS, encodeCpuS: l.encodeCpuS, encodeWallS: l.encodeWallS }
      if (l.msg === 'chunk completed' && typeof l.chunk === 'number')
        chunks.push({ index: l.chunk, worker: `w${i + 1}`, ...figures })
      else if (l.msg === 'audio completed') audio = { worker: `w${i + 1}`, ...figures }
      else if (l.msg === 'job completed') job = figures
    }
  }
  return { chunks, audio, job }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

const widthFor = (height: number): number => Math.round((height * 16) / 9 / 2) * 2

/** The source, generated once per size under .cache/bench/ (a second run reuses it). */
function longSource(durationS: number, height: number): string {
  const dir = join(ROOT, '.cache', 'bench')
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `long-video-v1-${durationS}s-${height}p.mp4`)
  if (existsSync(path)) return path
  const partial = `${path}.${process.pid}.partial.mp4`
  makeClip(partial, { width: widthFor(height), height, seconds: durationS })
  renameSync(partial, path)
  return path
}

async function runConfig(
  stack: FullStack,
  config: Config,
  source: string,
  durationS: number,
  round: number,
): Promise<ConfigRun> {
  const fleet: TierProcess[] = []
  try {
    for (let i = 0; i < config.transcoders; i++)
      fleet.push(await stack.startTranscoder({ workerId: `${config.name}-r${round}-w${i + 1}` }))
    const before = fleet.map((t) => processCpuS(t.proc.pid as number))
    const id = await stack.upload(source)
    const uploadedMs = performance.now()
    // A 1080p ladder with one thread per worker runs at a fraction of real time on a shared box.
    const v = await stack.settle(id, 600_000 + durationS * 60_000)
    const wallS = (performance.now() - uploadedMs) / 1000
    if (v.status !== 'ready') throw new Error(`${config.name}: video ended ${v.status}: ${JSON.stringify(v.error)}`)
    // Every job's line: the chunks and the audio job the API counted, and the job that made it
    // ready, which the transcoder logs after the origin answered its completion (so `ready` can be
    // read before the line is written). Then every ffmpeg run of the video has been reaped.
    const { processing } = (await stack.api<ProcessingView>('GET', `/v1/videos/${id}`)).body
    const expected = { chunks: processing?.chunks.total ?? 0, audio: processing?.audio != null ? 1 : 0 }
    const lines = await waitFor(
      () => {
        const got = jobLines(fleet, id)
        const isComplete =
          got.job !== null && got.chunks.length === expected.chunks && (got.audio === null ? 0 : 1) === expected.audio
        return isComplete ? got : null
      },
      { timeoutMs: LOG_LINES_TIMEOUT_MS, what: `${config.name}: the log line of every job of ${id}` },
    )
    const after = fleet.map((t) => processCpuS(t.proc.pid as number))
    const ffmpegCpuS = after.reduce((s, a, i) => s + a.childrenS - (before[i]?.childrenS ?? 0), 0)
    const nodeCpuS = after.reduce((s, a, i) => s + a.ownS - (before[i]?.ownS ?? 0), 0)

    const { chunks, audio } = lines
    const done = lines.job as JobFigures
    if (config.isSplit && chunks.length === 0) throw new Error(`${config.name}: the video was not split`)
    if (!config.isSplit && chunks.length > 0) throw new Error(`${config.name}: the video was split`)
    chunks.sort((a, b) => a.index - b.index)
    // The queue order: the audio job first, then the chunks by index (origin/src/videos.ts).
    const partCpuS = [...(audio === null ? [] : [audio.cpuS]), ...chunks.map((c) => c.cpuS)]
    const model = (stitchS: number): number =>
      config.isSplit ? fleetTimeToReadyS(partCpuS, config.transcoders, stitchS) : done.cpuS
    return {
      config: config.name,
      videoId: id,
      transcoders: config.transcoders,
      wallS,
      ffmpegCpuS,
      nodeCpuS,
      chunks,
      audio,
      job: done,
      partCpuS,
      modelS: model(done.cpuS),
      modelWallStitchS: model(done.jobS),
    }
  } finally {
    await Promise.all(fleet.map((t) => t.stop()))
  }
}

export async function longVideoScenario(ctx: RunContext): Promise<ScenarioResult> {
  const { durationS, heightPx, chunkS } = ctx.longVideo
  const fleetsRun = ctx.longVideo.fleets.map(Number)
  const configs = configsFor(fleetsRun)
  const dir = join(ctx.dir, 'long-video')
  mkdirSync(dir, { recursive: true })
  const source = longSource(durationS, heightPx)
  const transcoder = { ffmpegThreads: 1, preset: 'veryfast', logLevel: 'info' }
  // The reference is never split (splitAboveS above the duration); the split stack splits anything
  // longer than one chunk.
  const stacks = {
    unsplit: await startFullStack({
      dir: join(dir, 'unsplit'),
      transcoders: 0,
      transcoder,
      origin: { transcode: { splitAboveS: durationS + 60, chunkS } },
    }),
    split: null as FullStack | null,
  }
  const runs: ConfigRun[][] = []
  try {
    stacks.split = await startFullStack({
      dir: join(dir, 'split'),
      transcoders: 0,
      transcoder,
      origin: { transcode: { splitAboveS: 1, chunkS } },
    })
    for (let round = 0; round < ctx.runs; round++) {
      const results: ConfigRun[] = []
      for (const config of configs) {
        const stack = config.isSplit ? stacks.split : stacks.unsplit
        const r = await runConfig(stack, config, source, durationS, round)
        console.log(
          `  long-video ${config.name} run ${round + 1}: ${r.wallS.toFixed(1)} s to ready, ` +
            `${r.ffmpegCpuS.toFixed(1)} ffmpeg CPU-s, model ${r.modelS.toFixed(1)} s` +
            (r.chunks.length > 0 ? `, ${r.chunks.length} chunks` : ''),
        )
        results.push(r)
      }
      runs.push(results)
    }
  } finally {
    await Promise.all([stacks.unsplit.close(), stacks.split?.close()])
  }

  // A configuration not run (`--fleets`) has no figures: NaN.
  const of = (name: string, pick: (r: ConfigRun) => number): number => {
    const made = runs.flatMap((round) => round.filter((r) => r.config === name))
    return made.length > 0 ? median(made.map(pick)) : NaN
  }
  // The model of a fleet size not run takes the jobs of the largest split run made: a job's
  // CPU-seconds do not depend on how many transcoders ran beside it (each has -threads 1).
  const measuredFleet = Math.max(...fleetsRun)
  const modelOf = (n: number): number =>
    fleetsRun.includes(n)
      ? of(`split-${n}`, (r) => r.modelS)
      : of(`split-${measuredFleet}`, (r) => fleetTimeToReadyS(r.partCpuS, n, r.job.cpuS))
  const unsplitWallS = of('unsplit-1', (r) => r.wallS)
  const unsplitModelS = of('unsplit-1', (r) => r.modelS)
  const unsplitCpuS = of('unsplit-1', (r) => r.ffmpegCpuS)
  const unsplitEncodeCpuS = of('unsplit-1', (r) => r.job.encodeCpuS)
  const summary: Record<string, number> = {
    durationS,
    heightPx,
    chunkS,
    chunks: runs[0]?.find((r) => r.config === `split-${measuredFleet}`)?.chunks.length ?? 0,
    measuredFleet,
    unsplitWallS,
    unsplitModelS,
    unsplitCpuS,
    unsplitEncodeCpuS,
  }
  for (const n of FLEET) {
    const name = `split-${n}`
    summary[`split${n}WallS`] = of(name, (r) => r.wallS)
    summary[`split${n}FleetModelS`] = modelOf(n)
    summary[`split${n}FleetModelWallStitchS`] = of(name, (r) => r.modelWallStitchS)
    summary[`split${n}CpuS`] = of(name, (r) => r.ffmpegCpuS)
    // Chunk encodes, the audio encode and the stitch's packaging run: the encoding work alone,
    // without probes, concatenation, measurement and thumbnails.
    summary[`split${n}EncodeCpuS`] = of(
      name,
      (r) => r.chunks.reduce((s, c) => s + c.encodeCpuS, 0) + (r.audio?.encodeCpuS ?? 0) + r.job.encodeCpuS,
    )
    summary[`split${n}AudioCpuS`] = of(name, (r) => r.audio?.cpuS ?? 0)
    summary[`split${n}StitchS`] = of(name, (r) => r.job.jobS)
    summary[`split${n}StitchCpuS`] = of(name, (r) => r.job.cpuS)
  }
  const fleetRatio = (summary['split4FleetModelS'] as number) / unsplitModelS
  // The split video's CPU-seconds are the same work whatever the fleet: the largest run made.
  const cpuRatio = (summary[`split${measuredFleet}CpuS`] as number) / unsplitCpuS
  summary['fleetRatio4'] = fleetRatio
  summary['fleetRatio4WallStitch'] = (summary['split4FleetModelWallStitchS'] as number) / unsplitModelS
  summary['wallRatio4'] = (summary['split4WallS'] as number) / unsplitWallS
  summary['cpuRatio4'] = cpuRatio
  summary['encodeCpuRatio4'] = (summary[`split${measuredFleet}EncodeCpuS`] as number) / unsplitEncodeCpuS
  summary['runs'] = runs.length
  const isPass = fleetRatio <= TARGET_FLEET_RATIO && cpuRatio <= TARGET_CPU_RATIO
  const s = (x: number | undefined): string => (Number.isNaN(x ?? NaN) ? 'not run' : `${(x as number).toFixed(1)} s`)
  const line =
    `long-video    ${durationS} s ${heightPx}p, ${summary['chunks']} chunks of ${chunkS} s, ffmpeg -threads 1  ` +
    `unsplit ${s(unsplitWallS)} (model ${s(unsplitModelS)}, ${unsplitCpuS.toFixed(1)} CPU-s)  ` +
    `split wall ${FLEET.map((n) => `N=${n} ${s(summary[`split${n}WallS`])}`).join(' ')}  ` +
    `fleet model ${FLEET.map((n) => `N=${n} ${s(summary[`split${n}FleetModelS`])}`).join(' ')} (jobs of the N=${measuredFleet} run)  ` +
    `fleet(4)/unsplit ${fleetRatio.toFixed(2)}× (target ≤ ${TARGET_FLEET_RATIO}×)  ` +
    `CPU split/unsplit ${cpuRatio.toFixed(2)}× (target ≤ ${TARGET_CPU_RATIO}×)  median of ${runs.length}`
  return {
    scenario: 'long-video',
    line,
    summary,
    target: `fleet time-to-ready with 4 machines ≤ ${TARGET_FLEET_RATIO}× the unsplit one (both modelled); ffmpeg CPU-s split (4) ≤ ${TARGET_CPU_RATIO}× unsplit`,
    isPass,
    runs,
    notes: [
      'every transcoder runs with ffmpegThreads 1 (decoder, filter graph, x264), so an encode’s CPU-seconds are its time on a core of its own',
      'wall: upload complete → ready on this shared 2-core machine (4 transcoders share 2 cores: not what 4 machines see)',
      'fleet model (lib/fleet-model.ts): each job takes its CPU-seconds (the transcoder process and every ffmpeg/ffprobe run it waited for, from its log line), the audio job then the chunks in index order (the queue order) greedily onto N machines, then the stitch; the unsplit reference is its one job’s CPU-seconds the same way; *WallStitch figures take the stitch at its measured wall time instead',
      'CPU: every ffmpeg/ffprobe run of every transcoder (cutime + cstime of the transcoder processes); the Node processes are in nodeCpuS per run',
      `source: testsrc2 + sine, .cache/bench/long-video-v1-${durationS}s-${heightPx}p.mp4`,
    ],
  }
}
