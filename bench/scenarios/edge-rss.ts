// edge-rss: the vcdn edge's resident memory while it serves hot hits. The memory tier is first
// filled past its budget (memoryMaxBytes) with distinct 2 MB segments, then the playlist and the
// segment hot-hit loads run; VmRSS of the edge process is sampled throughout. Target: the peak
// stays below memoryMaxBytes + 150 MB (the budget is a bound on the process, not just the LRU).
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { requestHeaders } from '../lib/player-headers.js'
import { runLoad, type LoadResult } from '../lib/load.js'
import { fmtBytes, ratio, type RunContext, type ScenarioResult } from '../lib/report.js'
import { MEMORY_MAX_BYTES, MIB, startOrigin, startVcdnStack, warmUntilHit, type VcdnStack } from '../lib/stacks.js'
import { rssBytes } from '../lib/util.js'
import { mediaPlaylist, PLAYLIST_PATH, SEGMENT_BYTES, SEGMENT_PATH, segmentBody } from './content.js'

const HEADROOM_BYTES = 150 * MIB
const SAMPLE_EVERY_MS = 100
const FILL_CONCURRENCY = 4

export async function edgeRss(ctx: RunContext): Promise<ScenarioResult> {
  const dir = join(ctx.dir, 'edge-rss')
  mkdirSync(dir, { recursive: true })
  const origin = await startOrigin(dir)
  let stack: VcdnStack | null = null
  const samples: { atMs: number; phase: string; rssBytes: number }[] = []
  let timer: NodeJS.Timeout | null = null
  try {
    const playlist = mediaPlaylist()
    const segment = segmentBody()
    await origin.store.put(PLAYLIST_PATH.slice(1), playlist)
    await origin.store.put(SEGMENT_PATH.slice(1), segment)
    // 125 % of the memory budget in distinct segments (a few in smoke mode: it checks the plumbing).
    const fillCount = ctx.isSmoke ? 8 : Math.ceil((MEMORY_MAX_BYTES * 1.25) / SEGMENT_BYTES)
    const fillPaths = Array.from(
      { length: fillCount },
      (_, i) => `/v/rss/720p/seg_${String(i + 1).padStart(5, '0')}.m4s`,
    )
    for (const [i, p] of fillPaths.entries()) await origin.store.put(p.slice(1), segmentBody(SEGMENT_BYTES, 100 + i))

    stack = await startVcdnStack({ dir, upstream: origin.url, memoryMaxBytes: MEMORY_MAX_BYTES })
    const pid = stack.edge.proc.pid
    if (pid === undefined) throw new Error('edge has no pid')
    const t0 = Date.now()
    let phase = 'idle'
    const sample = (): void => {
      samples.push({ atMs: Date.now() - t0, phase, rssBytes: rssBytes(pid) })
    }
    sample()
    timer = setInterval(sample, SAMPLE_EVERY_MS)

    phase = 'fill'
    const s = stack
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < fillPaths.length) {
        const p = fillPaths[next++] as string
        const res = await fetch(s.edgeUrl + s.sign(p))
        const got = (await res.arrayBuffer()).byteLength
        if (res.status !== 200 || got !== SEGMENT_BYTES) throw new Error(`fill ${p}: ${res.status}, ${got} bytes`)
      }
    }
    await Promise.all(Array.from({ length: FILL_CONCURRENCY }, worker))
    sample()
    const memoryTierBytes = await memoryTierGauge(stack.edge.adminUrl)

    phase = 'warm'
    await warmUntilHit(stack, PLAYLIST_PATH, playlist.length)
    await warmUntilHit(stack, SEGMENT_PATH, segment.length)

    const loads: LoadResult[] = []
    const headers = requestHeaders(ctx.headerSet)
    for (const [name, path, client] of [
      ['playlist-hit', PLAYLIST_PATH, ctx.smallClient],
      ['segment-hit', SEGMENT_PATH, ctx.segmentClient],
    ] as const) {
      phase = name
      loads.push(
        await runLoad(stack, path, { connections: ctx.connections, durationS: ctx.durationS, client, headers }),
      )
      sample()
    }
    clearInterval(timer)
    timer = null

    const peak = Math.max(...samples.map((x) => x.rssBytes))
    const peakOf = (ph: string): number => Math.max(0, ...samples.filter((x) => x.phase === ph).map((x) => x.rssBytes))
    const limit = MEMORY_MAX_BYTES + HEADROOM_BYTES
    const failures = loads.reduce((n, l) => n + l.non2xx + l.errors, 0)
    const summary = {
      peakRssBytes: peak,
      limitBytes: limit,
      memoryMaxBytes: MEMORY_MAX_BYTES,
      ratioToLimit: ratio(peak, limit),
      idleRssBytes: samples[0]?.rssBytes ?? 0,
      afterFillRssBytes: peakOf('fill'),
      playlistPeakRssBytes: peakOf('playlist-hit'),
      segmentPeakRssBytes: peakOf('segment-hit'),
      memoryTierBytesAfterFill: memoryTierBytes,
      filledObjects: fillCount,
      samples: samples.length,
      failures,
    }
    const line =
      `${'edge-rss'.padEnd(13)} vcdn peak RSS ${fmtBytes(peak)}  limit ${fmtBytes(limit)} ` +
      `(memoryMaxBytes ${fmtBytes(MEMORY_MAX_BYTES)} + 150 MiB)  ratio ${summary.ratioToLimit.toFixed(2)}  (target < 1)  ` +
      `[idle ${fmtBytes(summary.idleRssBytes)}, filled ${fmtBytes(summary.afterFillRssBytes)}, ` +
      `playlist ${fmtBytes(summary.playlistPeakRssBytes)}, segment ${fmtBytes(summary.segmentPeakRssBytes)}]` +
      (failures > 0 ? `  WARNING: ${failures} errors` : '')
    return {
      scenario: 'edge-rss',
      line,
      summary,
      target: 'peak VmRSS of the edge < cache.memoryMaxBytes + 150 MiB',
      isPass: peak < limit && failures === 0,
      runs: [{ loads, samples }],
      notes: [],
    }
  } finally {
    if (timer) clearInterval(timer)
    await stack?.close()
    await origin.close()
  }
}

/** The edge's own count of bytes in its memory tier (the *cache_memory_bytes gauge); 0 if absent. */
async function memoryTierGauge(adminUrl: string): Promise<number> {
  try {
    const text = await (await fetch(`${adminUrl}/metrics`)).text()
    const m = /^\S*cache_memory_bytes(?:\{[^}]*\})?\s+(\S+)/m.exec(text)
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}
