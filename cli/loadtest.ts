// `vcdn loadtest`: the operator's load tool against any edge URL (a deployed PoP as well as a
// bench stack). `--players N` plays a signed master URL like N hls.js players (loadtest/players.ts);
// `--rps N` drives a raw request rate at one URL with autocannon (loadtest/rps.ts). Both print a
// progress line each second on stderr, a summary table at the end and, with --json, the same
// numbers as JSON (docs/loadtest.md).
import { writeFileSync } from 'node:fs'
import { parseCli } from '../shared/process/index.js'
import { LoadHttp } from './loadtest/http.js'
import { Players } from './loadtest/players.js'
import { runRps } from './loadtest/rps.js'
import { formatBytes, formatSummary, Recorder, redactUrl, round, type Summary } from './loadtest/stats.js'

export const LOADTEST_USAGE = `usage: vcdn loadtest --players N --duration S [options] <signed master URL>
       vcdn loadtest --rps N --duration S [options] <URL>
  --players N        simulated HLS players (1..${10_000}): master, variant, init, segments at real-time pace, ABR
  --rps N            requests per second at one URL instead (autocannon)
  --duration S       seconds to run; requests in flight then finish (each within --timeout)
  --speed X          players: time compression, 10 plays a 6 s segment every 0.6 s (default 1)
  --ramp S           players: start them evenly over S seconds (default 0: all at once)
  --loop             players: start over at the end of the playlist instead of stopping
  --retries N        players: attempts after the first for one object before giving up (default 3)
  --connections N    rps: connections (default min(N, 50))
  --timeout S        per request, connect to last byte (default 10)
  --json FILE|-      write the summary as JSON to FILE, or to stdout with - (the table goes to stderr)
  --max-errors N     exit 1 when more requests than this failed (default 0)
  --quiet            no progress line
`

const MAX_PLAYERS = 10_000
const MAX_RPS = 1_000_000
const MAX_DURATION_S = 7 * 24 * 3600
const BOOLEAN_FLAGS = ['loop', 'quiet']
const HEADERS = Object.freeze({ 'user-agent': 'vcdn-loadtest', accept: '*/*' })

class LoadtestUsageError extends Error {}

interface Options {
  url: URL
  mode: 'players' | 'rps'
  players: number
  rps: number
  durationS: number
  speed: number
  rampS: number
  isLoop: boolean
  retries: number
  connections: number
  timeoutS: number
  json: string | undefined
  maxErrors: number
  isQuiet: boolean
}

function number(
  flags: Record<string, string | true>,
  name: string,
  fallback: number | undefined,
  min: number,
  max: number,
  isInteger: boolean,
): number {
  const raw = flags[name]
  if (raw === undefined && fallback !== undefined) return fallback
  const n = typeof raw === 'string' ? Number(raw) : NaN
  if (!Number.isFinite(n) || n < min || n > max || (isInteger && !Number.isInteger(n))) {
    throw new LoadtestUsageError(`--${name} must be ${isInteger ? 'an integer' : 'a number'} from ${min} to ${max}`)
  }
  return n
}

export function parseOptions(argv: readonly string[]): Options {
  const { flags, positional } = parseCli(argv)
  // parseCli takes the word after any flag as its value; after a boolean flag it is the URL.
  for (const name of BOOLEAN_FLAGS) {
    const value = flags[name]
    if (typeof value === 'string') {
      positional.push(value)
      flags[name] = true
    }
  }
  const known = new Set([
    ...BOOLEAN_FLAGS,
    'players',
    'rps',
    'duration',
    'speed',
    'ramp',
    'retries',
    'connections',
    'timeout',
    'json',
    'max-errors',
  ])
  const unknown = Object.keys(flags).filter((f) => !known.has(f))
  if (unknown.length > 0) throw new LoadtestUsageError(`unknown option --${unknown.join(', --')}`)
  if (positional.length !== 1) throw new LoadtestUsageError('loadtest needs exactly one URL')
  let url: URL
  try {
    url = new URL(positional[0] as string)
  } catch {
    throw new LoadtestUsageError(`not a URL: ${positional[0]}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LoadtestUsageError('the URL must be http(s)')
  if ((flags['players'] === undefined) === (flags['rps'] === undefined)) {
    throw new LoadtestUsageError('give one of --players N or --rps N')
  }
  const mode = flags['players'] !== undefined ? 'players' : 'rps'
  const rps = mode === 'rps' ? number(flags, 'rps', undefined, 1, MAX_RPS, true) : 0
  const json = flags['json']
  if (json === true) throw new LoadtestUsageError('--json needs a file name, or - for stdout')
  return {
    url,
    mode,
    players: mode === 'players' ? number(flags, 'players', undefined, 1, MAX_PLAYERS, true) : 0,
    rps,
    durationS: number(flags, 'duration', undefined, 0.1, MAX_DURATION_S, false),
    speed: number(flags, 'speed', 1, 0.01, 1000, false),
    rampS: number(flags, 'ramp', 0, 0, MAX_DURATION_S, false),
    isLoop: flags['loop'] === true,
    retries: number(flags, 'retries', 3, 0, 100, true),
    connections: number(flags, 'connections', Math.min(rps, 50), 1, 10_000, true),
    timeoutS: number(flags, 'timeout', 10, 0.1, 3600, false),
    json,
    maxErrors: number(flags, 'max-errors', 0, 0, Number.MAX_SAFE_INTEGER, true),
    isQuiet: flags['quiet'] === true,
  }
}

/** One line, redrawn in place on a terminal, appended once a second otherwise (logs, CI). */
function progressLine(o: Options, rec: Recorder, elapsedS: number, lastRequests: number, isStopping: boolean): string {
  const who = o.mode === 'players' ? `players ${rec.players.started}/${o.players}` : `rps ${o.rps}`
  const hitPct = rec.requests === 0 ? 0 : (rec.hits / rec.requests) * 100
  return [
    `${Math.min(elapsedS, o.durationS).toFixed(0).padStart(4)}/${o.durationS} s${isStopping ? ' (finishing)' : ''}`,
    who,
    `req ${rec.requests} (${rec.requests - lastRequests}/s)`,
    formatBytes(rec.bytes),
    `err ${rec.errors}`,
    `HIT ${hitPct.toFixed(1)} %`,
    `TTFB p50 ${round(rec.ttfbP50Ms(), 1)} ms`,
  ].join('  ')
}

export async function loadtest(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(LOADTEST_USAGE)
    return
  }
  let o: Options
  try {
    o = parseOptions(argv)
  } catch (err) {
    if (!(err instanceof LoadtestUsageError)) throw err
    process.stderr.write(`vcdn loadtest: ${err.message}\n${LOADTEST_USAGE}`)
    process.exitCode = 2
    return
  }
  // Fail now rather than after the run when the JSON cannot be written.
  if (o.json !== undefined && o.json !== '-') writeFileSync(o.json, '')
  const recorder = new Recorder()
  const stopper = new AbortController()
  const startedAt = new Date()
  const t0 = performance.now()
  const elapsedS = (): number => (performance.now() - t0) / 1000
  const deadline = setTimeout(() => stopper.abort(), o.durationS * 1000)
  // Ctrl-C ends the run early with its summary; a second one exits at once.
  const onSigint = (): void => {
    if (stopper.signal.aborted) process.exit(130)
    stopper.abort()
  }
  process.on('SIGINT', onSigint)
  const isTty = process.stderr.isTTY
  let lastRequests = 0
  const progress = o.isQuiet
    ? undefined
    : setInterval(() => {
        const line = progressLine(o, recorder, elapsedS(), lastRequests, stopper.signal.aborted)
        lastRequests = recorder.requests
        process.stderr.write(isTty ? `\r\x1b[2K${line}` : `${line}\n`)
      }, 1000)
  const http = new LoadHttp({
    timeoutMs: o.timeoutS * 1000,
    connections: Math.min(4096, Math.max(1, o.players * 2)),
    headers: HEADERS,
  })
  try {
    if (o.mode === 'players') {
      await new Players({
        masterUrl: o.url,
        players: o.players,
        rampMs: o.rampS * 1000,
        speed: o.speed,
        isLoop: o.isLoop,
        retries: o.retries,
        http,
        recorder,
        stop: stopper.signal,
      }).run()
    } else {
      // One GET first, so that an unreachable target is a coded error, not a run of failures.
      await http.get(o.url, false)
      await runRps({
        url: o.url,
        rps: o.rps,
        connections: o.connections,
        durationS: o.durationS,
        timeoutMs: o.timeoutS * 1000,
        headers: HEADERS,
        recorder,
        stop: stopper.signal,
      })
    }
  } finally {
    clearTimeout(deadline)
    clearInterval(progress)
    process.off('SIGINT', onSigint)
    if (progress !== undefined && isTty) process.stderr.write('\n')
    await http.close()
  }
  const summary: Summary = {
    ...recorder.summary({
      mode: o.mode,
      url: redactUrl(o.url.href),
      startedAt: startedAt.toISOString(),
      elapsedS: round(elapsedS(), 3),
    }),
    ...(o.mode === 'players'
      ? { players: recorder.players }
      : { rps: { target: o.rps, connections: Math.min(o.connections, o.rps) } }),
  }
  const json = `${JSON.stringify(summary, null, 2)}\n`
  if (o.json === '-') {
    process.stderr.write(formatSummary(summary))
    process.stdout.write(json)
  } else {
    process.stdout.write(formatSummary(summary))
    if (o.json !== undefined) writeFileSync(o.json, json)
  }
  if (summary.errors.total > o.maxErrors) {
    process.stderr.write(`vcdn loadtest: ${summary.errors.total} requests failed (--max-errors ${o.maxErrors})\n`)
    process.exitCode = 1
  }
}
