// transcode: the same generated source (60 s of 1080p30; 4 s of 360p with --smoke) through
// `vcdn transcoder` (claim → download → probe → ONE ffmpeg → measure → thumbnails → validate →
// upload → complete) versus the equivalent single ffmpeg command run by hand (the same argv the
// transcoder builds, from its own builder). Both run under a wrapper that reports wall time, the
// CPU seconds of every process it waited for (getrusage RUSAGE_CHILDREN) and the peak RSS of the
// largest one. Target: vcdn's overhead ≤ 5 % wall and ≤ 5 % CPU.
import { execFile, execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { makeClip, startFullStack, VCDN_BIN } from '../../shared/testing/index.js'
import { buildFfmpegArgs } from '../../transcoder/src/ffmpeg-args.js'
import { buildLadder } from '../../transcoder/src/ladder.js'
import { probe } from '../../transcoder/src/probe.js'
import type { RunContext, ScenarioResult } from '../lib/report.js'

const run = promisify(execFile)

// python3's resource module gives RUSAGE_CHILDREN, which Node does not expose. argv[1] is a file
// for the child's stdout (the transcoder's JSON log), '-' to drop it.
const RUSAGE_PY = `
import json, resource, subprocess, sys, time
out = subprocess.DEVNULL if sys.argv[1] == '-' else open(sys.argv[1], 'wb')
t0 = time.monotonic()
rc = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wallS": wall, "cpuS": ru.ru_utime + ru.ru_stime, "peakRssKiB": ru.ru_maxrss}))
`

interface Usage {
  rc: number
  wallS: number
  cpuS: number
  peakRssKiB: number
}

async function measured(argv: string[], stdoutFile = '-'): Promise<Usage> {
  const { stdout } = await run('python3', ['-c', RUSAGE_PY, stdoutFile, ...argv], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout.trim()) as Usage
}

/** The transcoder's own account of its ladder ffmpeg run, from its `job completed` log line. */
function encodeOf(logFile: string): { cpuS: number; wallS: number } {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"job completed"')) continue
    const o = JSON.parse(line) as { encodeCpuS?: number; encodeWallS?: number }
    if (typeof o.encodeCpuS === 'number' && typeof o.encodeWallS === 'number')
      return { cpuS: o.encodeCpuS, wallS: o.encodeWallS }
  }
  throw new Error(`no "job completed" line with encode figures in ${logFile}`)
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

export async function transcodeScenario(ctx: RunContext): Promise<ScenarioResult> {
  const dir = join(ctx.dir, 'transcode')
  mkdirSync(dir, { recursive: true })
  const size = ctx.isSmoke ? { width: 640, height: 360, seconds: 4 } : { width: 1920, height: 1080, seconds: 60 }
  const source = makeClip(join(dir, 'source.mp4'), size)
  const info = await probe(source, {})
  const ladder = buildLadder(info)
  const stack = await startFullStack({ dir: join(dir, 'stack'), transcoders: 0 })
  const runs: { vcdn: Usage; ffmpeg: Usage; vcdnEncode: { cpuS: number; wallS: number } }[] = []
  try {
    for (let i = 0; i < (ctx.isSmoke ? 1 : Math.max(1, Math.min(ctx.runs, 3))); i++) {
      // by hand: the argv vcdn's transcoder builds, into a scratch dir
      const out = join(dir, `by-hand-${i}`)
      mkdirSync(out, { recursive: true })
      const argv = buildFfmpegArgs({
        sourcePath: source,
        outDir: out,
        renditions: ladder,
        fps: info.fps,
        videoStreamIndex: info.videoStreamIndex,
        audioStreamIndex: info.audioStreamIndex,
        preset: 'veryfast',
      })
      const ffmpeg = await measured(['ffmpeg', ...argv])
      if (ffmpeg.rc !== 0) throw new Error(`ffmpeg by hand exited ${ffmpeg.rc}`)
      execFileSync('rm', ['-rf', out])

      // vcdn: upload through the API, then one batch worker that exits after the job
      const id = await stack.upload(source)
      const config = join(dir, `transcoder-${i}.json`)
      writeFileSync(
        config,
        JSON.stringify({
          origin: stack.origin.url,
          token: stack.workerToken,
          workDir: join(dir, `work-${i}`),
          maxJobs: 1,
          pollMs: 50,
          preset: 'veryfast',
          logLevel: 'info',
        }),
      )
      const log = join(dir, `transcoder-${i}.log`)
      const vcdn = await measured([process.execPath, VCDN_BIN, 'transcoder', '--config', config], log)
      const v = await stack.settle(id, 60_000)
      if (v.status !== 'ready') throw new Error(`vcdn transcode ended ${v.status}: ${JSON.stringify(v.error)}`)
      runs.push({ vcdn, ffmpeg, vcdnEncode: encodeOf(log) })
    }
  } finally {
    await stack.close()
  }
  const wallV = median(runs.map((r) => r.vcdn.wallS))
  const wallF = median(runs.map((r) => r.ffmpeg.wallS))
  const cpuV = median(runs.map((r) => r.vcdn.cpuS))
  const cpuF = median(runs.map((r) => r.ffmpeg.cpuS))
  const wallOverhead = wallV / wallF - 1
  const cpuOverhead = cpuV / cpuF - 1
  // x264's own CPU time moves by ±10 % between runs on a shared 2-core box, more than the overhead
  // being measured. So the verdict uses what vcdn spends beyond its own ladder ffmpeg run (the
  // same argv as by hand) in the same process tree and the same run: total − encode, over encode.
  const ownWall = median(runs.map((r) => r.vcdn.wallS / r.vcdnEncode.wallS - 1))
  const ownCpu = median(runs.map((r) => r.vcdn.cpuS / r.vcdnEncode.cpuS - 1))
  const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`
  const isPass = ownWall <= 0.05 && ownCpu <= 0.05
  const line =
    `transcode     ${size.seconds} s ${size.height}p → ${ladder.map((r) => r.name).join('/')}+audio  ` +
    `vcdn ${wallV.toFixed(1)} s wall ${cpuV.toFixed(1)} CPU-s  ffmpeg ${wallF.toFixed(1)} s wall ${cpuF.toFixed(1)} CPU-s  ` +
    `overhead wall ${pct(wallOverhead)} CPU ${pct(cpuOverhead)}  beyond its own encode: wall ${pct(ownWall)} CPU ${pct(ownCpu)}  peak RSS vcdn ${(median(runs.map((r) => r.vcdn.peakRssKiB)) / 1024).toFixed(0)} MiB ` +
    `ffmpeg ${(median(runs.map((r) => r.ffmpeg.peakRssKiB)) / 1024).toFixed(0)} MiB  (target ≤ +5% wall and CPU)  median of ${runs.length}`
  return {
    scenario: 'transcode',
    line,
    summary: {
      vcdnWallS: wallV,
      ffmpegWallS: wallF,
      vcdnCpuS: cpuV,
      ffmpegCpuS: cpuF,
      wallOverhead,
      cpuOverhead,
      ownWallOverhead: ownWall,
      ownCpuOverhead: ownCpu,
      vcdnPeakRssKiB: median(runs.map((r) => r.vcdn.peakRssKiB)),
      ffmpegPeakRssKiB: median(runs.map((r) => r.ffmpeg.peakRssKiB)),
      runs: runs.length,
    },
    target: 'vcdn overhead ≤ 5% wall and ≤ 5% CPU over plain ffmpeg (judged beyond its own encode, same run)',
    isPass,
    runs,
    notes: [
      'vcdn side: the whole worker process tree (node + ffprobe + ffmpeg), including source download and output upload over loopback',
      'peak RSS is of the largest single process (ffmpeg in both cases)',
      'beyond its own encode: the transcoder times its ladder ffmpeg run (wall, and CPU of waited-for children from /proc/self/stat) and logs it; total minus that is vcdn overhead, free of run-to-run x264 noise',
    ],
  }
}
