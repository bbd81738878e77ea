// miss-storm: 100 clients ask the edge at once for one cold 2 MB object whose origin answers after
// 300 ms. Both stacks sit in front of the same delayed origin, a process of its own
// (lib/delayed-origin-process.ts, pinned off the edge's core) so its 300 ms timer and its answers
// never share an event loop with the 100 measuring clients; each run uses a fresh key per stack.
// Measured: client time to response headers (TTFB) and how many requests reached the origin.
// Every round also storms the origin directly (the harness baseline: what the clients and the
// origin cost with no cache in between), so the figure splits into harness and chain.
import { connect, type Socket } from 'node:net'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DelayedOrigin } from '../lib/delayed-origin.js'
import { type RunContext, type ScenarioResult } from '../lib/report.js'
import { startNginxStack, startVcdnStack, warmUntilHit, type Stack } from '../lib/stacks.js'
import { median, percentile, round } from '../lib/util.js'
import { mediaPlaylist, SEGMENT_BYTES, segmentBody } from './content.js'

const CLIENTS = 100
const ORIGIN_DELAY_MS = 300
const SLACK_MS = 25
const SEGMENT_HEADERS = { 'content-type': 'video/iso.segment', 'cache-control': 'public, max-age=31536000, immutable' }

interface StormRun {
  /** vcdn, nginx, or origin-direct (the harness baseline: the same storm straight at the origin process). */
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
  const origin = await DelayedOrigin.start()
  const body = segmentBody(SEGMENT_BYTES, 7)
  // Open the keep-alive pools and let health checks settle before the storm: measured is coalescing.
  const ping = mediaPlaylist()
  await origin.object('/v/storm/ping.m3u8', ping, {
    'content-type': 'application/vnd.apple.mpegurl',
    'cache-control': 'public, max-age=86400',
  })
  const small = Buffer.alloc(1024, 0x61)
  const stacks: Stack[] = []
  try {
    stacks.push(await startVcdnStack({ dir, upstream: origin.url }))
    stacks.push(await startNginxStack({ dir, upstream: origin.url }))
    for (const s of stacks) await warmUntilHit(s, '/v/storm/ping.m3u8', ping.length)
    const runs: StormRun[] = []
    for (let i = 0; i < ctx.runs; i++) {
      for (const s of stacks) {
        const key = `/v/storm/${s.kind}-${ctx.stamp}-${i}/seg_00001.m4s` // fresh cold key per run and stack
        await origin.object(key, body, { ...SEGMENT_HEADERS, etag: `"storm-${s.kind}-${i}"` }, ORIGIN_DELAY_MS)
        const measured = await storm(s.edgeUrl + s.sign(key), body.length)
        runs.push({ stack: s.kind, key, ...measured, originRequests: await origin.count(key) })
      }
      // Harness baseline, in the same rounds: the storm straight at the origin process, 1 KB body
      // (100 simultaneous connections and a 300 ms answer, no cache in between).
      const direct = `/v/storm/direct-${ctx.stamp}-${i}/small.m4s`
      await origin.object(direct, small, SEGMENT_HEADERS, ORIGIN_DELAY_MS)
      const measured = await storm(origin.url + direct, small.length)
      runs.push({ stack: 'origin-direct', key: direct, ...measured, originRequests: await origin.count(direct) })
    }
    // Control: one client alone asks each stack for a cold key (the chain's own latency over 300 ms).
    for (const s of stacks) {
      const key = `/v/storm/${s.kind}-${ctx.stamp}-single/seg_00001.m4s`
      await origin.object(key, body, SEGMENT_HEADERS, ORIGIN_DELAY_MS)
      const one = await storm(s.edgeUrl + s.sign(key), body.length, 1)
      runs.push({ stack: `${s.kind}-single`, key, ...one, originRequests: await origin.count(key) })
    }
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
      `harness: storm straight at the origin p50 ${summary.directTtfbP50Ms} ms p99 ${summary.directTtfbP99Ms} ms]` +
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

/**
 * CLIENTS simultaneous GETs, each on its own connection. The connections are opened first (a
 * player's are already open), then every request is written in one burst from raw sockets, so
 * the client's own cost (http.request objects, connect, HTTP parsing in this process) stays out
 * of the figure. TTFB = request written → end of the response header block received.
 */
async function storm(
  target: string,
  expectBytes: number,
  clients = CLIENTS,
): Promise<Omit<StormRun, 'stack' | 'key' | 'originRequests'>> {
  const url = new URL(target)
  const port = Number(url.port)
  const wire = Buffer.from(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n\r\n`,
    'latin1',
  )
  const sockets = await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<Socket>((res, rej) => {
          const s = connect({ host: '127.0.0.1', port, noDelay: true }, () => res(s))
          s.once('error', rej)
        }),
    ),
  )
  const one = (s: Socket): Promise<{ ttfbMs: number; isOk: boolean }> =>
    new Promise((res) => {
      let ttfbMs = Number.NaN
      let head: Buffer = Buffer.alloc(0)
      let status = 0
      let bodyBytes = -1 // -1 until the header block has ended
      let isDone = false
      const done = (isOk: boolean): void => {
        if (isDone) return
        isDone = true
        clearTimeout(timer)
        s.destroy()
        res({ ttfbMs, isOk })
      }
      const timer = setTimeout(() => done(false), 30_000)
      s.on('data', (c: Buffer) => {
        if (bodyBytes < 0) {
          head = head.length === 0 ? c : Buffer.concat([head, c])
          const end = head.indexOf('\r\n\r\n')
          if (end < 0) return
          ttfbMs = Number(process.hrtime.bigint() - start) / 1e6
          status = Number(head.toString('latin1', 9, 12))
          bodyBytes = head.length - end - 4
          head = Buffer.alloc(0)
        } else {
          bodyBytes += c.length
        }
        if (bodyBytes >= expectBytes) done(status === 200 && bodyBytes === expectBytes)
      })
      s.on('end', () => done(false))
      s.removeAllListeners('error') // the connect-time listener
      s.on('error', () => done(false))
      const start = process.hrtime.bigint()
      s.write(wire)
    })
  const t0 = process.hrtime.bigint()
  const results = await Promise.all(sockets.map(one))
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
