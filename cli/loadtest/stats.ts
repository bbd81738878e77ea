// What a load run counts, in one place for both modes: requests, bytes, TTFB, statuses, errors by
// status and by code, X-Cache outcomes; for players also what kind of object each request was,
// ABR switches and late segments. The run loop owns the one Recorder; players and the autocannon
// hooks only call record*().
import { Histogram } from './histogram.js'

export type RequestKind = 'master' | 'playlist' | 'init' | 'segment' | 'url'

export interface Response {
  kind: RequestKind
  status: number
  /** Body bytes received. */
  bytes: number
  ttfbMs: number
  /** The X-Cache response header as sent (absent: undefined). */
  xCache: string | undefined
  /** This run had fetched the same URL whole a while (REPEAT_AFTER_MS) before this request started. */
  isRepeat: boolean
}

export interface Summary {
  mode: 'players' | 'rps'
  /** The target with its token redacted. */
  url: string
  startedAt: string
  elapsedS: number
  requests: number
  requestsPerS: number
  bytes: number
  bytesPerS: number
  ttfbMs: { p50: number; p95: number; p99: number; max: number }
  statuses: Record<string, number>
  errors: { total: number; byStatus: Record<string, number>; byCode: Record<string, number> }
  xCache: Record<string, number>
  /** X-Cache of requests for URLs this run had fetched whole a second or more before: a PoP keeping them says HIT. */
  xCacheRepeat: Record<string, number>
  byKind: Partial<Record<RequestKind, number>>
  players?: PlayerTotals
  rps?: { target: number; connections: number }
}

export interface PlayerTotals {
  started: number
  /** Reached the end of the playlist (without --loop). */
  finished: number
  /** Gave up after an object kept failing. */
  failed: number
  abrUp: number
  abrDown: number
  /** Video segments fetched per variant, keyed by BANDWIDTH. */
  segmentsByBandwidth: Record<string, number>
  /** Segments whose fetch took longer than their (time-compressed) duration: a real player would rebuffer. */
  lateSegments: number
}

const NO_HEADER = 'NONE'

export class Recorder {
  readonly #ttfb = new Histogram()
  readonly #statuses = new Map<number, number>()
  readonly #errorCodes = new Map<string, number>()
  readonly #xCache = new Map<string, number>()
  readonly #xCacheRepeat = new Map<string, number>()
  readonly #byKind = new Map<RequestKind, number>()
  readonly players: PlayerTotals = {
    started: 0,
    finished: 0,
    failed: 0,
    abrUp: 0,
    abrDown: 0,
    segmentsByBandwidth: {},
    lateSegments: 0,
  }
  requests = 0
  bytes = 0
  errors = 0

  response(r: Response): void {
    this.requests++
    this.bytes += r.bytes
    this.#ttfb.record(r.ttfbMs)
    bump(this.#statuses, r.status)
    bump(this.#byKind, r.kind)
    const xCache = r.xCache ?? NO_HEADER
    bump(this.#xCache, xCache)
    if (r.isRepeat) bump(this.#xCacheRepeat, xCache)
    // RFC 9110 §15: 4xx and 5xx are failures; 1xx-3xx are answers a player can act on.
    if (r.status >= 400) this.errors++
  }

  /** A request that got no status: refused, reset, timed out, truncated. */
  failure(kind: RequestKind, code: string): void {
    this.requests++
    this.errors++
    bump(this.#byKind, kind)
    bump(this.#errorCodes, code)
  }

  /** An answer that arrived but could not be used (a playlist that does not parse). */
  invalid(code: string): void {
    this.errors++
    bump(this.#errorCodes, code)
  }

  get hits(): number {
    return this.#xCache.get('HIT') ?? 0
  }

  ttfbP50Ms(): number {
    return this.#ttfb.percentileMs(50)
  }

  summary(base: Pick<Summary, 'mode' | 'url' | 'startedAt' | 'elapsedS'>): Summary {
    const elapsedS = Math.max(base.elapsedS, 0.001)
    const byStatus: Record<string, number> = {}
    for (const [status, n] of this.#statuses) if (status >= 400) byStatus[status] = n
    return {
      ...base,
      requests: this.requests,
      requestsPerS: round(this.requests / elapsedS, 1),
      bytes: this.bytes,
      bytesPerS: Math.round(this.bytes / elapsedS),
      ttfbMs: {
        p50: round(this.#ttfb.percentileMs(50), 2),
        p95: round(this.#ttfb.percentileMs(95), 2),
        p99: round(this.#ttfb.percentileMs(99), 2),
        max: round(this.#ttfb.maxMs, 2),
      },
      statuses: record(this.#statuses),
      errors: { total: this.errors, byStatus, byCode: record(this.#errorCodes) },
      xCache: record(this.#xCache),
      xCacheRepeat: record(this.#xCacheRepeat),
      byKind: Object.fromEntries(this.#byKind),
    }
  }
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

function record(map: Map<string | number, number>): Record<string, number> {
  return Object.fromEntries([...map].sort((a, b) => b[1] - a[1]).map(([k, n]) => [String(k), n]))
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** A playback URL with its token (path directory `/t/…/` or `token=` query value) hidden. */
export function redactUrl(url: string): string {
  return url.replace(/\/t\/[^/?#]+\//, '/t/…/').replace(/([?&]token=)[^&#]*/, '$1…')
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let v = n
  let u = 0
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`
}

function share(n: number, total: number): string {
  return total === 0 ? '' : ` (${((n / total) * 100).toFixed(1)} %)`
}

function counts(rec: Record<string, number>, total?: number): string {
  const entries = Object.entries(rec)
  if (entries.length === 0) return '-'
  return entries.map(([k, n]) => `${k} ${n}${total === undefined ? '' : share(n, total)}`).join(' · ')
}

/** The human-readable summary table (the JSON holds the same numbers). */
export function formatSummary(s: Summary): string {
  const rows: [string, string][] = [
    ['target', s.url],
    ['elapsed', `${s.elapsedS.toFixed(1)} s`],
    ['requests', `${s.requests} (${s.requestsPerS}/s)${s.mode === 'players' ? `   ${counts(s.byKind)}` : ''}`],
    ['bytes', `${formatBytes(s.bytes)} (${formatBytes(s.bytesPerS)}/s)`],
    ['TTFB', `p50 ${s.ttfbMs.p50} ms · p95 ${s.ttfbMs.p95} ms · p99 ${s.ttfbMs.p99} ms · max ${s.ttfbMs.max} ms`],
    ['status', counts(s.statuses)],
    [
      'errors',
      s.errors.total === 0 ? '0' : `${s.errors.total}   ${counts({ ...s.errors.byStatus, ...s.errors.byCode })}`,
    ],
    [
      'x-cache',
      counts(
        s.xCache,
        Object.values(s.xCache).reduce((a, b) => a + b, 0),
      ),
    ],
    [
      'x-cache repeat',
      counts(
        s.xCacheRepeat,
        Object.values(s.xCacheRepeat).reduce((a, b) => a + b, 0),
      ),
    ],
  ]
  if (s.players !== undefined) {
    const p = s.players
    rows.push(
      ['players', `${p.started} started · ${p.finished} finished · ${p.failed} failed`],
      ['ABR', `up ${p.abrUp} · down ${p.abrDown} · segments by BANDWIDTH: ${counts(p.segmentsByBandwidth)}`],
      ['late segments', String(p.lateSegments)],
    )
  }
  if (s.rps !== undefined) rows.push(['rate', `${s.rps.target}/s target over ${s.rps.connections} connections`])
  const width = Math.max(...rows.map(([k]) => k.length))
  return `vcdn loadtest (${s.mode})\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`
}
