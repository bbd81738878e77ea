// miss-storm: 100 clients ask the edge at once for one cold 2 MB object whose origin answers after
// 300 ms. Both stacks sit in front of the same scripted origin, each run on a fresh key per stack.
// Measured: client time to response headers (TTFB) and how many requests reached the origin.
import { request, type IncomingMessage } from 'node:http'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ScriptedOrigin } from '../../shared/testing/index.js'
import { type RunContext, type ScenarioResult } from '../lib/report.js'
import { startNginxStack, startVcdnStack, warmUntilHit, type Stack } from '../lib/stacks.js'
import { median, percentile, round } from '../lib/util.js'
import { mediaPlaylist, SEGMENT_BYTES, segmentBody } from './content.js'

const CLIENTS = 100
const ORIGIN_DELAY_MS = 300
const SLACK_MS = 25
const SEGMENT_HEADERS = { 'content-type': 'video/iso.segment', 'cache-control': 'public, max-age=31536000, immutable' }

interface StormRun {
  /** vcdn, nginx, or origin-direct (the control: the same storm straight at the scripted origin). */
  stack: string
  key: string
  ttfbMinMs: number
  ttfbP50Ms: number
  ttfbP99Ms: number
  ttfbMaxMs: number
  /** Until the last client had the whole body. */
  completeMs: number
  originRequests: number
  failures: number
}

export async function missStorm(ctx: RunContext): Promise<ScenarioResult> {
  const dir = join(ctx.dir, 'miss-storm')
  mkdirSync(dir, { recursive: true })
  const origin = new ScriptedOrigin()
  await origin.listen()
  const body = segmentBody(SEGMENT_BYTES, 7)
  // Open the keep-alive pools and let health checks settle before the storm: measured is coalescing.
  const ping = mediaPlaylist()
  origin.static('/v/storm/ping.m3u8', ping, {
    'content-type': 'application/vnd.apple.mpegurl',
    'cache-control': 'public, max-age=86400',
  })
  const stacks: Stack[] = []
  try {
    stacks.push(await startVcdnStack({ dir, upstream: origin.url }))
    stacks.push(await startNginxStack({ dir, upstream: origin.url }))
    for (const s of stacks) await warmUntilHit(s, '/v/storm/ping.m3u8', ping.length)
    const runs: StormRun[] = []
    for (let i = 0; i < ctx.runs; i++) {
      for (const s of stacks) {
        const key = `/v/storm/${s.kind}-${ctx.stamp}-${i}/seg_00001.m4s` // fresh cold key per run and stack
        origin.static(key, body, { ...SEGMENT_HEADERS, etag: `"storm-${s.kind}-${i}"` }, ORIGIN_DELAY_MS)
        const measured = await storm(s.edgeUrl + s.sign(key), body.length)
        runs.push({ stack: s.kind, key, ...measured, originRequests: origin.count(key) })
      }
    }
    // Controls, to split the figure: (1) one client alone asks each stack for a cold key (the
    // chain's own latency over the 300 ms); (2) the storm straight at the scripted origin with a
    // 1 KB body (what 100 simultaneous connections cost this client, which shares its event loop
    // with the scripted origin, with no cache in between).
    const small = Buffer.alloc(1024, 0x61)
    for (const s of stacks) {
      const key = `/v/storm/${s.kind}-${ctx.stamp}-single/seg_00001.m4s`
      origin.static(key, body, SEGMENT_HEADERS, ORIGIN_DELAY_MS)
      const one = await storm(s.edgeUrl + s.sign(key), body.length, 1)
      runs.push({ stack: `${s.kind}-single`, key, ...one, originRequests: origin.count(key) })
    }
    const direct = `/v/storm/direct-${ctx.stamp}/small.m4s`
    origin.static(direct, small, SEGMENT_HEADERS, ORIGIN_DELAY_MS)
    runs.push({
      stack: 'origin-direct',
      key: direct,
      ...(await storm(origin.url + direct, small.length)),
      originRequests: origin.count(direct),
    })
    const of = (kind: string, f: (r: StormRun) => number): number => median(runs.filter((r) => r.stack === kind).map(f))
    const worstOrigin = (kind: string): number =>
      Math.max(...runs.filter((r) => r.stack === kind).map((r) => r.originRequests))
    const failures = runs.reduce((n, r) => n + r.failures, 0)
    const summary = {
      vcdnTtfbP50Ms: of('vcdn', (r) => r.ttfbP50Ms),
      vcdnTtfbP99Ms: of('vcdn', (r) => r.ttfbP99Ms),
      vcdnOriginRequestsMax: worstOrigin('vcdn'),
      vcdnCompleteMs: of('vcdn', (r) => r.completeMs),
      nginxTtfbP50Ms: of('nginx', (r) => r.ttfbP50Ms),
      nginxTtfbP99Ms: of('nginx', (r) => r.ttfbP99Ms),
      nginxOriginRequestsMax: worstOrigin('nginx'),
      nginxCompleteMs: of('nginx', (r) => r.completeMs),
      ratioP50: 0,
      vcdnTtfbMinMs: of('vcdn', (r) => r.ttfbMinMs),
      nginxTtfbMinMs: of('nginx', (r) => r.ttfbMinMs),
      vcdnSingleTtfbMs: of('vcdn-single', (r) => r.ttfbP50Ms),
      nginxSingleTtfbMs: of('nginx-single', (r) => r.ttfbP50Ms),
      directTtfbP50Ms: of('origin-direct', (r) => r.ttfbP50Ms),
      directTtfbP99Ms: of('origin-direct', (r) => r.ttfbP99Ms),
      originDelayMs: ORIGIN_DELAY_MS,
      targetP50Ms: ORIGIN_DELAY_MS + SLACK_MS,
      clients: CLIENTS,
      failures,
    }
    summary.ratioP50 = summary.nginxTtfbP50Ms > 0 ? round(summary.vcdnTtfbP50Ms / summary.nginxTtfbP50Ms, 2) : 0
    const side = (k: 'vcdn' | 'nginx'): string =>
      `${k} p50 ${summary[`${k}TtfbP50Ms`]} ms p99 ${summary[`${k}TtfbP99Ms`]} ms origin ${summary[`${k}OriginRequestsMax`]}`
    const line =
      `${'miss-storm'.padEnd(13)} ${side('vcdn')}  ${side('nginx')}  ratio(p50) ${summary.ratioP50.toFixed(2)}×  ` +
      `(target origin = 1, p50 ≤ ${summary.targetP50Ms} ms)  median of ${ctx.runs}` +
      `  [vcdn first ${summary.vcdnTtfbMinMs} ms, one client alone ${summary.vcdnSingleTtfbMs} ms; ` +
      `storm straight at the origin p50 ${summary.directTtfbP50Ms} ms]` +
      (failures > 0 ? `  WARNING: ${failures} failed requests` : '')
    return {
      scenario: 'miss-storm',
      line,
      summary,
      target: `vcdn: exactly 1 origin request per storm and TTFB p50 ≤ origin latency (${ORIGIN_DELAY_MS} ms) + ${SLACK_MS} ms`,
      isPass: summary.vcdnOriginRequestsMax === 1 && summary.vcdnTtfbP50Ms <= summary.targetP50Ms && failures === 0,
      runs,
      notes: [],
    }
  } finally {
    await Promise.allSettled(stacks.map((s) => s.close()))
    await origin.close()
  }
}

/** CLIENTS simultaneous GETs, each on its own connection; TTFB = request issued → response headers. */
async function storm(
  target: string,
  expectBytes: number,
  clients = CLIENTS,
): Promise<Omit<StormRun, 'stack' | 'key' | 'originRequests'>> {
  const url = new URL(target)
  const t0 = process.hrtime.bigint()
  const one = (): Promise<{ ttfbMs: number; isOk: boolean }> =>
    new Promise((res) => {
      const start = process.hrtime.bigint()
      let ttfbMs = Number.NaN
      const timer = setTimeout(() => {
        req.destroy(new Error('deadline'))
      }, 30_000)
      const done = (isOk: boolean): void => {
        clearTimeout(timer)
        res({ ttfbMs, isOk })
      }
      const req = request(
        { host: '127.0.0.1', port: url.port, path: url.pathname, agent: false, headers: { connection: 'close' } },
        (r: IncomingMessage) => {
          ttfbMs = Number(process.hrtime.bigint() - start) / 1e6
          let bytes = 0
          r.on('data', (c: Buffer) => (bytes += c.length))
          r.on('end', () => done(r.statusCode === 200 && bytes === expectBytes))
          r.on('error', () => done(false))
        },
      )
      req.on('error', () => done(false))
      req.end()
    })
  const results = await Promise.all(Array.from({ length: clients }, one))
  const completeMs = Number(process.hrtime.bigint() - t0) / 1e6
  const ttfbs = results.filter((r) => Number.isFinite(r.ttfbMs)).map((r) => r.ttfbMs)
  return {
    ttfbMinMs: round(Math.min(...ttfbs), 1),
    ttfbP50Ms: round(percentile(ttfbs, 50), 1),
    ttfbP99Ms: round(percentile(ttfbs, 99), 1),
    ttfbMaxMs: round(Math.max(...ttfbs), 1),
    completeMs: round(completeMs, 1),
    failures: results.filter((r) => !r.isOk).length,
  }
}
