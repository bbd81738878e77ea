// large-hit: plain-HTTP 2 MB hits over a working set larger than the CPU cache: LARGE_SEGMENTS
// distinct segments (different bytes), each request's path drawn from Zipf(0.9) by the MSG_TRUNC
// client (lib/trunc-client.py, seeded, the same draws for every server), so the server's core is
// the limit. Three servers in alternating runs, each pinned to the edge core:
//   vcdn  — the vcdn edge, its memory tier large enough for all of them (checked: every object in
//           memory, no miss and no eviction while measuring)
//   bare  — a bare uWebSockets.js process serving the same bytes from a Map of Buffers
//           (lib/bare-uws-process.ts): the ceiling of the server vcdn is built on
//   nginx — the nginx stack, sendfile from its cache files (in the page cache after the warm-up)
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { metric } from '../../shared/testing/index.js'
import { startBareUws } from '../lib/bare-uws.js'
import { runLoad, type LoadResult } from '../lib/load.js'
import { requestHeaders } from '../lib/player-headers.js'
import { fmtBytes, ratio, type RunContext, type ScenarioResult } from '../lib/report.js'
import { MIB, startNginxStack, startOrigin, startVcdnStack, type Stack, type VcdnStack } from '../lib/stacks.js'
import { delay, median } from '../lib/util.js'
import { LARGE_SEGMENTS, largeSegmentPath, SEGMENT_BYTES, segmentBody } from './content.js'

/** Zipf exponent of the draw (P(rank k) ∝ 1/k^0.9): over 200 objects the top 16 take ~50 %. */
const ZIPF_S = 0.9
const SEED = 1
/** vcdn's memory tier: all 200 segments (400 MiB) and their entries' overhead, with room to spare. */
const MEMORY_MAX_BYTES = 1024 * MIB
const TARGET_VS_BARE = 0.9
/** Concurrent fetches of the warm-up (each a whole 2 MB body through fetch). */
const WARM_CONCURRENCY = 4
/**
 * A fetch's last byte comes before its fill is committed (fsync, rename, index row), which a busy
 * disk makes long; the edge answers a request in that window once the commit is done (a HIT), so a
 * path is a HIT from its second fetch on. Still polled: a commit that failed fetches again.
 */
const WARM_ATTEMPTS = 40
const WARM_RETRY_MS = 100

export async function largeHit(ctx: RunContext): Promise<ScenarioResult> {
  const headers = requestHeaders(ctx.headerSet)
  const dir = join(ctx.dir, 'large-hit')
  mkdirSync(dir, { recursive: true })
  const paths = Array.from({ length: LARGE_SEGMENTS }, (_, i) => largeSegmentPath(i + 1))
  const origin = await startOrigin(dir)
  const stacks: Stack[] = []
  try {
    // One body at a time: the bench process never holds the whole working set.
    for (const [i, p] of paths.entries()) await origin.store.put(p.slice(1), segmentBody(SEGMENT_BYTES, i + 1))
    const vcdn = await startVcdnStack({ dir, upstream: origin.url, memoryMaxBytes: MEMORY_MAX_BYTES })
    stacks.push(vcdn)
    stacks.push(await startBareUws(LARGE_SEGMENTS))
    stacks.push(await startNginxStack({ dir, upstream: origin.url }))

    // Every object a hit at the caching edges (the bare server has them from the start).
    const first = segmentBody(SEGMENT_BYTES, 1)
    for (const s of stacks) await warmAll(s, paths, first)
    // Entries cost a few hundred bytes besides their body: one segment short would be below this.
    const memoryBytes = await metric(vcdn.edge.adminUrl, 'vcdn_edge_cache_memory_bytes')
    if (memoryBytes < LARGE_SEGMENTS * SEGMENT_BYTES)
      throw new Error(`vcdn: ${memoryBytes} B in the memory tier, less than the ${LARGE_SEGMENTS} segments`)

    const pathsFile = (s: Stack): string => {
      const file = join(dir, `paths-${s.kind}.txt`)
      writeFileSync(file, paths.map((p) => s.sign(p)).join('\n') + '\n')
      return file
    }
    const files = new Map(stacks.map((s) => [s, pathsFile(s)]))
    const load = (s: Stack, durationS: number): Promise<LoadResult> =>
      runLoad(s, paths[0] as string, {
        connections: ctx.connections,
        durationS,
        client: 'trunc',
        headers,
        paths: { file: files.get(s) as string, zipf: ZIPF_S, seed: SEED },
      })
    for (const s of stacks) await load(s, ctx.warmupS)

    const before = await engineCounts(vcdn)
    const runs: LoadResult[] = []
    for (let i = 0; i < ctx.runs; i++) for (const s of stacks) runs.push(await load(s, ctx.durationS))
    const after = await engineCounts(vcdn)
    const vcdnRequests = runs.filter((r) => r.stack === 'vcdn').reduce((n, r) => n + r.requests, 0)
    const misses = after.misses - before.misses
    const evictions = after.evictions - before.evictions
    const hits = after.hits - before.hits

    const of = (kind: string, f: (r: LoadResult) => number): number =>
      median(runs.filter((r) => r.stack === kind).map(f))
    const perCore = (x: LoadResult): number => (x.serverCpuPct > 0 ? x.bytesPerSec / (x.serverCpuPct / 100) : 0)
    const fig = (kind: string): { bytes: number; perCore: number; cpu: number; loadgen: number } => ({
      bytes: of(kind, (r) => r.bytesPerSec),
      perCore: of(kind, perCore),
      cpu: of(kind, (r) => r.serverCpuPct),
      loadgen: of(kind, (r) => r.loadgenCpuPct),
    })
    const v = fig('vcdn')
    const b = fig('bare')
    const n = fig('nginx')
    const vsBare = ratio(v.bytes, b.bytes)
    const vsNginx = ratio(v.bytes, n.bytes)
    const failures = runs.reduce((x, r) => x + r.non2xx + r.errors, 0)
    const notes: string[] = []
    if (failures > 0) notes.push(`${failures} non-2xx responses or errors during the measured runs`)
    if (misses !== 0 || evictions !== 0)
      notes.push(`vcdn's edge missed ${misses} and evicted ${evictions} times while measuring: not all memory hits`)
    const line =
      `large-hit     vcdn ${fmtBytes(v.bytes)}/s  bare uWS ${fmtBytes(b.bytes)}/s  nginx ${fmtBytes(n.bytes)}/s  ` +
      `vcdn÷bare ${vsBare.toFixed(2)}× (target ≥ ${TARGET_VS_BARE}×)  vcdn÷nginx ${vsNginx.toFixed(2)}×  median of ${ctx.runs}` +
      `  [trunc, ${LARGE_SEGMENTS} × 2 MB, Zipf(${ZIPF_S}), ${ctx.headerSet} headers; per core vcdn÷bare ` +
      `${ratio(v.perCore, b.perCore).toFixed(2)}× vcdn÷nginx ${ratio(v.perCore, n.perCore).toFixed(2)}×; ` +
      `cpu% server/loadgen: vcdn ${v.cpu}/${v.loadgen} bare ${b.cpu}/${b.loadgen} nginx ${n.cpu}/${n.loadgen}; ` +
      `vcdn hits ${hits} for ${vcdnRequests} responses, misses ${misses}, evictions ${evictions}]` +
      (failures > 0 ? `  WARNING: ${failures} errors` : '') +
      (misses !== 0 || evictions !== 0 ? `  WARNING: vcdn misses ${misses}, evictions ${evictions}` : '')
    return {
      scenario: 'large-hit',
      line,
      summary: {
        vcdn: v.bytes,
        bare: b.bytes,
        nginx: n.bytes,
        ratioVsBare: vsBare,
        ratioVsNginx: vsNginx,
        vcdnPerCore: Math.round(v.perCore),
        barePerCore: Math.round(b.perCore),
        nginxPerCore: Math.round(n.perCore),
        ratioPerCoreVsBare: ratio(v.perCore, b.perCore),
        ratioPerCoreVsNginx: ratio(v.perCore, n.perCore),
        targetRatioVsBare: TARGET_VS_BARE,
        segments: LARGE_SEGMENTS,
        zipfS: ZIPF_S,
        vcdnServerCpuPct: v.cpu,
        bareServerCpuPct: b.cpu,
        nginxServerCpuPct: n.cpu,
        vcdnLoadgenCpuPct: v.loadgen,
        bareLoadgenCpuPct: b.loadgen,
        nginxLoadgenCpuPct: n.loadgen,
        vcdnMemoryBytes: memoryBytes,
        vcdnHitsDuringRuns: hits,
        vcdnRequestsDuringRuns: vcdnRequests,
        vcdnMissesDuringRuns: misses,
        vcdnEvictionsDuringRuns: evictions,
        failures,
      },
      target: `vcdn bytes/s ≥ ${TARGET_VS_BARE}× a bare uWebSockets.js server's; every vcdn request a memory hit`,
      isPass: vsBare >= TARGET_VS_BARE && failures === 0 && misses === 0 && evictions === 0,
      runs,
      notes,
    }
  } finally {
    await Promise.allSettled(stacks.map((s) => s.close()))
    await origin.close()
  }
}

/**
 * Fetch every path through the edge until the edge answers it from cache (vcdn: a disk hit is
 * promoted into the memory tier, so a second HIT is from memory), WARM_CONCURRENCY at a time.
 * The bare server has no cache: one fetch each checks it serves every path whole. The first
 * path's bytes are compared with `first`: all three serve the same content.
 */
async function warmAll(s: Stack, paths: readonly string[], first: Buffer): Promise<void> {
  const queue = [...paths]
  const one = async (path: string): Promise<void> => {
    let last = ''
    let hits = 0
    for (let attempt = 0; attempt < WARM_ATTEMPTS; attempt++) {
      const res = await fetch(s.edgeUrl + s.sign(path))
      const body = Buffer.from(await res.arrayBuffer())
      const bytes = body.length
      const status = s.edgeStatus(res.headers)
      last = `${res.status} ${status} (${bytes} B)`
      if (res.status !== 200 || bytes !== SEGMENT_BYTES) break
      if (path === paths[0] && !body.equals(first))
        throw new Error(`${s.kind}: ${path} has other bytes than its segment`)
      if (s.kind === 'bare') return
      if (status === 'HIT') {
        if (++hits === 2) return
      } else await delay(WARM_RETRY_MS)
    }
    // vcdn's edge logs why it did not store (warnings and errors only: the bench tiers are quiet).
    const log = 'edge' in s ? `\n${(s as VcdnStack).edge.output().slice(-2000)}` : ''
    throw new Error(`${s.kind}: ${path} not a hit after ${WARM_ATTEMPTS} fetches: ${last}${log}`)
  }
  const worker = async (): Promise<void> => {
    for (let path = queue.shift(); path !== undefined; path = queue.shift()) await one(path)
  }
  await Promise.all(Array.from({ length: WARM_CONCURRENCY }, worker))
}

async function engineCounts(s: VcdnStack): Promise<{ hits: number; misses: number; evictions: number }> {
  const m = (name: string): Promise<number> => metric(s.edge.adminUrl, `vcdn_edge_${name}`)
  return {
    hits: await m('cache_hits_total'),
    misses: await m('cache_misses_total'),
    evictions: await m('cache_evictions_total'),
  }
}
