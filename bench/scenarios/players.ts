// players: N simulated HLS players (vcdn loadtest's player: master → variant → init → segments at
// real-time pace ÷ speed, ABR by measured throughput) start videos drawn from a Zipf(0.9)
// popularity over M real tiny ladders (lib/ladders.ts), through 2 vcdn edges and 1 shield in front
// of a vcdn origin, once per prefetch mode: off, playlist prefetch only, playlist + CMCD prefetch
// (the players send CMCD nor), and playlist prefetch into the shield (prefetch.mode shield: the
// edge asks the HRW-chosen shield to fill, and keeps nothing). Each mode gets fresh caches and
// plays three waves of other draws on the same caches: `cold` (caches empty), `warm`, and
// `steady` (by then the draws have touched nearly the whole catalogue: the steady state; in the
// warm wave, the Zipf tail still brings videos nobody played yet).
//
// Measured per mode: the edge hit ratio and TTFB p50/p99 of hits and misses as the players saw
// them (X-Cache of segment requests), the shield's hit ratio (its counters), origin requests (the
// shield's upstream requests) per player segment request, and the edges' prefetch counters.
// Targets (docs/architecture.md §6): steady-state origin requests ≤ 1 % of segment requests (the
// origin requests that are not an object's first fetch: see steadyOrigin); with edge
// prefetch, cold miss TTFB p99 at least 2× lower than without; prefetch wasted ≤ 10 % of issued.
import { setMaxListeners } from 'node:events'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Histogram } from '../../cli/loadtest/histogram.js'
import { LoadHttp, type Fetched } from '../../cli/loadtest/http.js'
import { Players, sleep } from '../../cli/loadtest/players.js'
import { Recorder } from '../../cli/loadtest/stats.js'
import { metric, startTier, type TierProcess } from '../../shared/testing/index.js'
import { signedPath } from '../../shared/token/index.js'
import { ensureLadders, type Ladder } from '../lib/ladders.js'
import { pinEdge, pinOther } from '../lib/pin.js'
import { ratio, type RunContext, type ScenarioResult } from '../lib/report.js'
import { startOrigin, TIER_SECRET, VCDN_KEYS, MIB, type Origin } from '../lib/stacks.js'
import { round } from '../lib/util.js'

export const PLAYER_MODES = ['off', 'playlist', 'cmcd', 'shield'] as const
type Mode = (typeof PLAYER_MODES)[number]

const EDGES = 2
const ZIPF_S = 0.9
const TOKEN_TTL_S = 6 * 3600
const REQUEST_TIMEOUT_MS = 10_000
/** After the last player's start and its video's (compressed) length, how long a wave may still run. */
const WAVE_GRACE_MS = 60_000
const WAVES = ['cold', 'warm', 'steady'] as const
type Wave = (typeof WAVES)[number]

/** The edge's prefetch config of each mode (edge/src/config.ts prefetch.*). */
const PREFETCH: Record<Mode, { segments: number; cmcd: boolean; mode: 'edge' | 'shield' }> = {
  off: { segments: 0, cmcd: false, mode: 'edge' },
  playlist: { segments: 2, cmcd: false, mode: 'edge' },
  cmcd: { segments: 2, cmcd: true, mode: 'edge' },
  shield: { segments: 2, cmcd: false, mode: 'shield' },
}
/** The modes judged against the targets (shield prefetch leaves the edge missing by design). */
const JUDGED: readonly Mode[] = ['playlist', 'cmcd']

/** Players, videos, each video's length (s), time compression (4: a 2 s segment every 0.5 s), start ramp (s). */
export type PlayersOptions = RunContext['players']

/** Segment TTFB by the edge's X-Cache, as the players saw it. */
class MeasuringHttp extends LoadHttp {
  readonly hit = new Histogram()
  readonly miss = new Histogram()
  /** Every segment request, hit or miss: what the player waits for. */
  readonly all = new Histogram()

  override async get(url: URL, isText: boolean, extraHeaders?: Readonly<Record<string, string>>): Promise<Fetched> {
    const r = await super.get(url, isText, extraHeaders)
    if (url.pathname.endsWith('.m4s') && r.status === 200) {
      ;(r.headers['x-cache'] === 'HIT' ? this.hit : this.miss).record(r.ttfbMs)
      this.all.record(r.ttfbMs)
    }
    return r
  }
}

interface WaveResult {
  mode: Mode
  wave: Wave
  segmentRequests: number
  edgeHits: number
  edgeHitRatio: number
  shieldHitRatio: number
  originRequests: number
  originPerSegment: number
  /** Origin requests for an object the origin had served before in this mode (not a first fetch). */
  originRefetches: number
  originRefetchPerSegment: number
  hitTtfbP50Ms: number
  hitTtfbP99Ms: number
  missTtfbP50Ms: number
  missTtfbP99Ms: number
  /** Over every segment request: prefetch turns the misses it can foresee into hits. */
  segmentTtfbP99Ms: number
  prefetchIssued: number
  prefetchUsed: number
  prefetchWasted: number
  playerErrors: number
  playersFailed: number
  lateSegments: number
  abrUp: number
  abrDown: number
  elapsedS: number
}

const capitalised = (s: string): string => `${s[0]?.toUpperCase() ?? ''}${s.slice(1)}`

/** A seeded PRNG (mulberry32): the same draws in every mode, so the modes see the same players. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` video indexes drawn from Zipf(s) over `m` videos (index 0 the most popular). */
export function zipfDraws(n: number, m: number, s: number, seed: number): number[] {
  const cdf: number[] = []
  let sum = 0
  for (let k = 1; k <= m; k++) cdf.push((sum += 1 / k ** s))
  const next = random(seed)
  const draws: number[] = []
  for (let i = 0; i < n; i++) {
    const x = next() * sum
    let lo = 0
    let hi = m - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    draws.push(lo)
  }
  return draws
}

const sumOf = async (urls: readonly string[], name: string): Promise<number> => {
  let n = 0
  for (const url of urls) n += await metric(url, name)
  return n
}

async function startTiers(
  dir: string,
  originUrl: string,
  mode: Mode,
): Promise<{ shield: TierProcess; edges: TierProcess[] }> {
  const quiet = { accessLog: false, logLevel: 'warn' }
  const cache = (name: string): Record<string, unknown> => ({
    dir: join(dir, `${mode}-${name}`),
    maxBytes: 4 * 1024 * MIB,
    memoryMaxBytes: 256 * MIB,
  })
  const shield = await startTier(
    'shield',
    { tierSecret: TIER_SECRET, upstreams: [originUrl], cache: cache('shield'), ...quiet },
    { dir },
  )
  const edges: TierProcess[] = []
  try {
    for (let i = 0; i < EDGES; i++) {
      edges.push(
        await startTier(
          'edge',
          {
            tierSecret: TIER_SECRET,
            shields: [shield.url],
            origin: originUrl,
            signingKeys: VCDN_KEYS,
            requireToken: true,
            cache: cache(`edge${i}`),
            prefetch: PREFETCH[mode],
            ...quiet,
          },
          { dir },
        ),
      )
    }
  } catch (err) {
    await Promise.allSettled([shield.stop(), ...edges.map((e) => e.stop())])
    throw err
  }
  pinOther(shield.proc.pid === undefined ? [] : [shield.proc.pid])
  pinEdge(edges.flatMap((e) => (e.proc.pid === undefined ? [] : [e.proc.pid])))
  return { shield, edges }
}

/**
 * Origin access lines in `log` (GET or HEAD answered 2xx/304): how many name a key already in
 * `fetched`, which then holds every key of them. A first fetch of an object is a miss no cache
 * avoids; a second one is what the tier could have answered.
 */
function countRefetches(log: string, fetched: Set<string>): number {
  let n = 0
  for (const line of log.split('\n')) {
    if (!line.includes('"access":true')) continue
    let a: { method?: string; key?: string; status?: number }
    try {
      a = JSON.parse(line) as typeof a
    } catch {
      continue
    }
    if ((a.method !== 'GET' && a.method !== 'HEAD') || a.key === undefined || a.status === undefined) continue
    if (!(a.status >= 200 && a.status < 300) && a.status !== 304) continue
    if (fetched.has(a.key)) n++
    else fetched.add(a.key)
  }
  return n
}

async function runWave(
  o: PlayersOptions,
  ladders: readonly Ladder[],
  tiers: { shield: TierProcess; edges: TierProcess[] },
  mode: Mode,
  wave: Wave,
  seed: number,
  origin: Origin,
  fetched: Set<string>,
): Promise<WaveResult> {
  const logFrom = origin.output().length
  const { shield, edges } = tiers
  const edgeAdmins = edges.map((e) => e.adminUrl)
  const before = {
    hits: await metric(shield.adminUrl, 'vcdn_shield_cache_hits_total'),
    misses: await metric(shield.adminUrl, 'vcdn_shield_cache_misses_total'),
    origin: await metric(shield.adminUrl, 'vcdn_shield_upstream_requests_total'),
    issued: await sumOf(edgeAdmins, 'vcdn_edge_prefetch_issued_total'),
    used: await sumOf(edgeAdmins, 'vcdn_edge_prefetch_used_total'),
    wasted: await sumOf(edgeAdmins, 'vcdn_edge_prefetch_wasted_total'),
  }
  const http = new MeasuringHttp({
    timeoutMs: REQUEST_TIMEOUT_MS,
    connections: Math.max(8, Math.ceil(o.players / EDGES)),
    headers: { 'user-agent': 'vcdn-bench-players', accept: '*/*' },
  })
  const recorder = new Recorder()
  const stop = new AbortController()
  // Every player waits for its start on this signal: hundreds of listeners is the design, not a
  // leak (Node warns past 10).
  setMaxListeners(0, stop.signal)
  const rampMs = o.rampS * 1000
  const deadline = setTimeout(() => stop.abort(), rampMs + (o.videoSeconds * 1000) / o.speed + WAVE_GRACE_MS)
  const draws = zipfDraws(o.players, ladders.length, ZIPF_S, seed)
  const t0 = performance.now()
  let runErrors = 0
  try {
    await Promise.all(
      draws.map(async (video, i) => {
        const startMs = (i * rampMs) / o.players
        await sleep(startMs, stop.signal)
        if (stop.signal.aborted) return
        const id = (ladders[video] as Ladder).id
        const edge = edges[i % EDGES] as TierProcess
        const path = `/v/${id}/master.m3u8`
        const signed = signedPath({
          prefix: `/v/${id}/`,
          path,
          ttlS: TOKEN_TTL_S,
          kid: 'k1',
          keys: VCDN_KEYS,
          nowMs: Date.now(),
        })
        const player = new Players({
          masterUrl: new URL(edge.url + signed),
          players: 1,
          rampMs: 0,
          speed: o.speed,
          isLoop: false,
          retries: 2,
          http,
          recorder,
          stop: stop.signal,
          isCmcd: mode === 'cmcd',
        })
        // A player whose master failed is counted, not fatal: the others go on.
        await player.run().catch(() => {
          runErrors++
        })
      }),
    )
  } finally {
    clearTimeout(deadline)
    await http.close()
  }
  const elapsedS = (performance.now() - t0) / 1000
  const hits = (await metric(shield.adminUrl, 'vcdn_shield_cache_hits_total')) - before.hits
  const misses = (await metric(shield.adminUrl, 'vcdn_shield_cache_misses_total')) - before.misses
  const originRequests = (await metric(shield.adminUrl, 'vcdn_shield_upstream_requests_total')) - before.origin
  const originRefetches = countRefetches(origin.output().slice(logFrom), fetched)
  const segmentRequests = http.hit.count + http.miss.count
  const p = recorder.players
  return {
    mode,
    wave,
    segmentRequests,
    edgeHits: http.hit.count,
    edgeHitRatio: ratio(http.hit.count, segmentRequests),
    shieldHitRatio: ratio(hits, hits + misses),
    originRequests,
    originPerSegment: round(segmentRequests > 0 ? originRequests / segmentRequests : 0, 4),
    originRefetches,
    originRefetchPerSegment: round(segmentRequests > 0 ? originRefetches / segmentRequests : 0, 4),
    hitTtfbP50Ms: round(http.hit.percentileMs(50), 2),
    hitTtfbP99Ms: round(http.hit.percentileMs(99), 2),
    missTtfbP50Ms: round(http.miss.percentileMs(50), 2),
    missTtfbP99Ms: round(http.miss.percentileMs(99), 2),
    segmentTtfbP99Ms: round(http.all.percentileMs(99), 2),
    prefetchIssued: (await sumOf(edgeAdmins, 'vcdn_edge_prefetch_issued_total')) - before.issued,
    prefetchUsed: (await sumOf(edgeAdmins, 'vcdn_edge_prefetch_used_total')) - before.used,
    prefetchWasted: (await sumOf(edgeAdmins, 'vcdn_edge_prefetch_wasted_total')) - before.wasted,
    playerErrors: recorder.errors + runErrors,
    playersFailed: p.failed + runErrors,
    lateSegments: p.lateSegments,
    abrUp: p.abrUp,
    abrDown: p.abrDown,
    elapsedS: round(elapsedS, 1),
  }
}

export async function playersScenario(ctx: RunContext): Promise<ScenarioResult> {
  const o: PlayersOptions = ctx.players
  const dir = join(ctx.dir, 'players')
  mkdirSync(dir, { recursive: true })
  const ladders = await ensureLadders(o.videos, o.videoSeconds, (line) => console.log(line))
  const origin = await startOrigin(dir, { isAccessLogged: true })
  const results: WaveResult[] = []
  try {
    for (const ladder of ladders) {
      for (const [file, body] of ladder.files) await origin.store.put(`v/${ladder.id}/${file}`, body)
    }
    for (const mode of PLAYER_MODES) {
      const tiers = await startTiers(dir, origin.url, mode)
      // Each mode starts with empty caches: what its origin has served so far, by key.
      const fetched = new Set<string>()
      try {
        // The same draws per wave in every mode; each wave draws other players.
        for (const [w, wave] of WAVES.entries()) {
          results.push(await runWave(o, ladders, tiers, mode, wave, 1 + w, origin, fetched))
        }
      } finally {
        await Promise.allSettled([tiers.shield.stop(), ...tiers.edges.map((e) => e.stop())])
      }
    }
  } finally {
    await origin.close()
  }
  const of = (mode: Mode, wave: Wave): WaveResult =>
    results.find((r) => r.mode === mode && r.wave === wave) as WaveResult
  const summary: Record<string, number> = {
    players: o.players,
    videos: o.videos,
    videoSeconds: o.videoSeconds,
    speed: o.speed,
  }
  const FIELDS = [
    'segmentRequests',
    'edgeHitRatio',
    'shieldHitRatio',
    'originPerSegment',
    'originRefetchPerSegment',
    'hitTtfbP50Ms',
    'hitTtfbP99Ms',
    'missTtfbP50Ms',
    'missTtfbP99Ms',
    'segmentTtfbP99Ms',
    'prefetchIssued',
    'prefetchUsed',
    'prefetchWasted',
    'playerErrors',
  ] as const
  for (const mode of PLAYER_MODES) {
    for (const wave of WAVES) {
      const r = of(mode, wave)
      for (const f of FIELDS) summary[`${mode}${capitalised(wave)}${capitalised(f)}`] = r[f]
    }
  }
  // Judged: the steady state's origin share, the cold miss tail with and without prefetch, and
  // prefetches wasted (a prefetch not yet used when the run ends is neither used nor wasted).
  const offMissP99 = of('off', 'cold').missTtfbP99Ms
  const missP99Gain = (mode: Mode): number => ratio(offMissP99, of(mode, 'cold').missTtfbP99Ms)
  const wastedShare = (mode: Mode): number => {
    const issued = WAVES.reduce((n, wave) => n + of(mode, wave).prefetchIssued, 0)
    const wasted = WAVES.reduce((n, wave) => n + of(mode, wave).prefetchWasted, 0)
    return issued > 0 ? round(wasted / issued, 4) : 0
  }
  // The steady state's origin share: a fully warm catalogue leaves the origin only the requests a
  // cache could have answered (refetches); draws that still bring an object nobody asked for are
  // first fetches, which no cache avoids. The worst of the warm and steady waves.
  const steadyOrigin = (mode: Mode): number =>
    Math.max(of(mode, 'warm').originRefetchPerSegment, of(mode, 'steady').originRefetchPerSegment)
  summary['playlistSteadyOriginShare'] = steadyOrigin('playlist')
  summary['cmcdSteadyOriginShare'] = steadyOrigin('cmcd')
  // The player's wait over all its segment requests, with and without prefetch (cold wave).
  const segmentP99Gain = (mode: Mode): number =>
    ratio(of('off', 'cold').segmentTtfbP99Ms, of(mode, 'cold').segmentTtfbP99Ms)
  summary['playlistSegmentP99Gain'] = segmentP99Gain('playlist')
  summary['cmcdSegmentP99Gain'] = segmentP99Gain('cmcd')
  summary['shieldSegmentP99Gain'] = segmentP99Gain('shield')
  summary['playlistMissP99Gain'] = missP99Gain('playlist')
  summary['cmcdMissP99Gain'] = missP99Gain('cmcd')
  summary['shieldMissP99Gain'] = missP99Gain('shield')
  summary['playlistWastedShare'] = wastedShare('playlist')
  summary['cmcdWastedShare'] = wastedShare('cmcd')
  const errors = results.reduce((n, r) => n + r.playerErrors, 0)
  summary['playerErrors'] = errors
  const isPass =
    JUDGED.every((m) => steadyOrigin(m) <= 0.01 && missP99Gain(m) >= 2 && wastedShare(m) <= 0.1) && errors === 0
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  const part = (mode: Mode): string => {
    const c = of(mode, 'cold')
    const all = WAVES.map((wave) => of(mode, wave))
    return (
      `${mode}: edge hit ${all.map((r) => pct(r.edgeHitRatio)).join('/')} shield hit ${pct(c.shieldHitRatio)}` +
      ` origin/seg ${all.map((r) => pct(r.originPerSegment)).join('/')}` +
      ` (refetches ${all.map((r) => pct(r.originRefetchPerSegment)).join('/')})` +
      ` miss p50/p99 ${c.missTtfbP50Ms}/${c.missTtfbP99Ms} ms hit p50/p99 ${c.hitTtfbP50Ms}/${c.hitTtfbP99Ms} ms`
    )
  }
  const line =
    `${'players'.padEnd(13)} ${o.players} players × ${o.videos} videos (cold/warm/steady)  ` +
    PLAYER_MODES.map(part).join('  |  ') +
    `  miss p99 gain playlist ${summary['playlistMissP99Gain']}× cmcd ${summary['cmcdMissP99Gain']}×` +
    ` shield ${summary['shieldMissP99Gain']}×` +
    `  segment p99 gain playlist ${summary['playlistSegmentP99Gain']}× cmcd ${summary['cmcdSegmentP99Gain']}×` +
    ` shield ${summary['shieldSegmentP99Gain']}×` +
    `  wasted ${pct(wastedShare('playlist'))}/${pct(wastedShare('cmcd'))}` +
    (errors > 0 ? `  WARNING: ${errors} player errors` : '')
  const notes: string[] = []
  if (errors > 0) notes.push(`${errors} failed player requests or players`)
  return {
    scenario: 'players',
    line,
    summary,
    target:
      'steady-state origin requests (refetches, warm and steady waves) ≤ 1 % of player segment requests; ' +
      'cold miss TTFB p99 with prefetch ≥ 2× lower than off; ' +
      'prefetch wasted ≤ 10 % of issued',
    isPass,
    runs: results,
    notes,
  }
}
