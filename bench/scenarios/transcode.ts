// transcode: the same generated source (60 s of 1080p30; 4 s of 360p with --smoke) through
// `vcdn transcoder` (claim → download → probe → ONE ffmpeg → measure → thumbnails → validate →
// upload → complete) versus the equivalent single ffmpeg command run by hand (the same argv the
// transcoder builds, from its own builder). Both run under a wrapper that reports wall time, the
// CPU seconds of every process it waited for (getrusage RUSAGE_CHILDREN) and the peak RSS of the
// largest one. Target: vcdn's overhead ≤ 5 % wall and ≤ 5 % CPU.
import { execFile, execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { makeClip, startFullStack, VCDN_BIN } from '../../shared/testing/index.js'
import { buildFfmpegArgs } from '../../transcoder/src/ffmpeg-args.js'
import { buildLadder } from '../../transcoder/src/ladder.js'
import { probe } from '../../transcoder/src/probe.js'
import type { RunContext, ScenarioResult } from '../lib/report.js'

const run = promisify(execFile)

// python3's resource module gives RUSAGE_CHILDREN, which Node does not expose.
const RUSAGE_PY = `
import json, resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
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

async function measured(argv: string[]): Promise<Usage> {
  const { stdout } = await run('python3', ['-c', RUSAGE_PY, ...argv], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout.trim()) as Usage
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
  const runs: { vcdn: Usage; ffmpeg: Usage }[] = []
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
          logLevel: 'warn',
        }),
      )
      const vcdn = await measured([process.execPath, VCDN_BIN, 'transcoder', '--config', config])
      const v = await stack.settle(id, 60_000)
      if (v.status !== 'ready') throw new Error(`vcdn transcode ended ${v.status}: ${JSON.stringify(v.error)}`)
      runs.push({ vcdn, ffmpeg })
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
  const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`
  const isPass = wallOverhead <= 0.05 && cpuOverhead <= 0.05
  const line =
    `transcode     ${size.seconds} s ${size.height}p → ${ladder.map((r) => r.name).join('/')}+audio  ` +
    `vcdn ${wallV.toFixed(1)} s wall ${cpuV.toFixed(1)} CPU-s  ffmpeg ${wallF.toFixed(1)} s wall ${cpuF.toFixed(1)} CPU-s  ` +
    `overhead wall ${pct(wallOverhead)} CPU ${pct(cpuOverhead)}  peak RSS vcdn ${(median(runs.map((r) => r.vcdn.peakRssKiB)) / 1024).toFixed(0)} MiB ` +
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
      vcdnPeakRssKiB: median(runs.map((r) => r.vcdn.peakRssKiB)),
      ffmpegPeakRssKiB: median(runs.map((r) => r.ffmpeg.peakRssKiB)),
      runs: runs.length,
    },
    target: 'vcdn overhead ≤ 5% wall and ≤ 5% CPU over plain ffmpeg',
    isPass,
    runs,
    notes: [
      'vcdn side: the whole worker process tree (node + ffprobe + ffmpeg), including source download and output upload over loopback',
      'peak RSS is of the largest single process (ffmpeg in both cases)',
    ],
  }
}
