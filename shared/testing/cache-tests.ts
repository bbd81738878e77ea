// The public HTTP caching test suite (cache-tests.fyi, npm `http-cache-tests`, pinned in
// package.json) run against a cache from node: the suite's own origin server in a child process,
// its client in another child per cache under test (the client keeps its results in module state,
// so one process runs one cache), and the scoring of cache-tests.fyi (lib/display.mjs of the
// suite: a test whose dependency did not pass counts as a dependency failure, not as a pass).
// Used by the conformance test (shield/test/integration) and the side-by-side bench
// (bench/cache-tests).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { freePort, ROOT, waitFor } from './processes.js'

export const CACHE_TESTS_DIR = join(ROOT, 'node_modules', 'http-cache-tests')
const CLIENT_JS = join(ROOT, 'dist', 'shared', 'testing', 'cache-tests-client.js')

/** The suite's version, read from its package (the scores are only comparable per release). */
export function cacheTestsVersion(): string {
  return (JSON.parse(readFileSync(join(CACHE_TESTS_DIR, 'package.json'), 'utf8')) as { version: string }).version
}

export interface CacheTestSpec {
  id: string
  name: string
  /** The suite's grouping (e.g. cc-freshness). */
  suite: string
  /** 'required' (also when the suite leaves it unset), 'optimal' or 'check'. */
  kind: 'required' | 'optimal' | 'check'
  dependsOn: readonly string[]
  isBrowserOnly: boolean
}

interface RawSuite {
  id: string
  tests: { id: string; name: string; kind?: string; depends_on?: string[]; browser_only?: boolean }[]
}

/** Every test of the suite as the node client runs them: tests/index.mjs plus Surrogate-Control (cli.mjs). */
export async function loadCacheTestSpecs(): Promise<CacheTestSpec[]> {
  const load = async (file: string): Promise<unknown> =>
    ((await import(pathToFileURL(join(CACHE_TESTS_DIR, 'tests', file)).href)) as { default: unknown }).default
  const suites = [...((await load('index.mjs')) as RawSuite[]), (await load('surrogate-control.mjs')) as RawSuite]
  const specs: CacheTestSpec[] = []
  for (const suite of suites) {
    for (const test of suite.tests) {
      const kind = test.kind === undefined ? 'required' : test.kind
      if (kind !== 'required' && kind !== 'optimal' && kind !== 'check') {
        throw new Error(`cache-tests: test ${test.id} has an unknown kind ${kind}`)
      }
      specs.push({
        id: test.id,
        name: test.name,
        suite: suite.id,
        kind,
        dependsOn: test.depends_on ?? [],
        isBrowserOnly: test.browser_only === true,
      })
    }
  }
  return specs
}

/** One test's raw result from the suite's client: true, or [error name, message]. */
export type RawCacheTestResult = true | [string, string]

export interface CacheTestsRun {
  results: Record<string, RawCacheTestResult>
  /** False when the deadline ended the run: the tests without a result are reported untested. */
  isComplete: boolean
  ms: number
}

export interface CacheTestsOrigin {
  readonly url: string
  /** What the suite's server printed (its warnings name bad requests). */
  output(): string
  stop(): Promise<void>
}

/**
 * A shield as a reverse proxy cache in front of the suite's origin: every path, no tier secret
 * (a trusted network). The conformance test and the bench run the same settings.
 */
export function conformanceShieldConfig(originUrl: string, cacheDir: string): Record<string, unknown> {
  return {
    tierSecret: 'cache-tests-tier-secret-0123456789',
    requireTierSecret: false,
    paths: ['/'],
    upstreams: [originUrl],
    cache: { dir: cacheDir },
    accessLog: false,
    logLevel: 'warn',
  }
}

/** Start the suite's origin server (server/server.mjs) on a free loopback port. */
export async function startCacheTestsOrigin(opts: { dir: string }): Promise<CacheTestsOrigin> {
  const port = await freePort()
  // The server reads its settings the way `npm run server --port=…` passes them.
  const proc = spawn(process.execPath, ['--no-warnings', join(CACHE_TESTS_DIR, 'server', 'server.mjs')], {
    cwd: CACHE_TESTS_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      npm_config_protocol: 'http',
      npm_config_port: String(port),
      npm_config_pidfile: join(opts.dir, 'cache-tests-server.pid'),
    },
  })
  let out = ''
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()))
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()))
  const exited = new Promise<void>((res) => proc.once('exit', () => res()))
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
    await exited
  }
  try {
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`cache-tests server exited with ${proc.exitCode}:\n${out}`)
        return out.includes('Listening on')
      },
      { timeoutMs: 15_000, what: 'the cache-tests server listening' },
    )
  } catch (err) {
    await stop()
    throw err
  }
  return { url: `http://127.0.0.1:${port}`, output: () => out, stop }
}

/**
 * Run the suite's client against `baseUrl` (a cache in front of the suite's origin). `ids`
 * limits the run to those tests; `deadlineMs` bounds it (the client reports what finished).
 */
export async function runCacheTests(
  baseUrl: string,
  opts: { dir: string; deadlineMs: number; ids?: readonly string[] },
): Promise<CacheTestsRun> {
  const outFile = join(opts.dir, `cache-tests-${Date.now()}-${Math.random().toString(36).slice(2)}.json`)
  const args = [CLIENT_JS, baseUrl, outFile, String(opts.deadlineMs), ...(opts.ids ?? [])]
  const proc = spawn(process.execPath, ['--no-warnings', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  proc.stderr.on('data', (b: Buffer) => (err += b.toString()))
  // The client ends itself at its deadline; this is the backstop should it hang on its way out.
  const backstop = setTimeout(() => proc.kill('SIGKILL'), opts.deadlineMs + 15_000)
  const code = await new Promise<number | null>((res) => proc.once('exit', (c) => res(c)))
  clearTimeout(backstop)
  if (code !== 0) throw new Error(`cache-tests client exited with ${code}:\n${err}`)
  return JSON.parse(readFileSync(outFile, 'utf8')) as CacheTestsRun
}

/** A test's outcome as cache-tests.fyi shows it (lib/display.mjs determineTestResult). */
export type CacheTestOutcome =
  'pass' | 'fail' | 'optional_fail' | 'yes' | 'no' | 'setup_fail' | 'retry' | 'dependency_fail' | 'untested'

export function cacheTestOutcome(
  specs: ReadonlyMap<string, CacheTestSpec>,
  results: Readonly<Record<string, RawCacheTestResult>>,
  id: string,
): CacheTestOutcome {
  const spec = specs.get(id)
  const result = results[id]
  if (spec === undefined || result === undefined) return 'untested'
  for (const dep of spec.dependsOn) {
    const o = cacheTestOutcome(specs, results, dep)
    if (o !== 'pass' && o !== 'yes') return 'dependency_fail'
  }
  if (result !== true && result[0] === 'Setup') return result[1] === 'retry' ? 'retry' : 'setup_fail'
  if (spec.kind === 'required') return result === true ? 'pass' : 'fail'
  if (spec.kind === 'optimal') return result === true ? 'pass' : 'optional_fail'
  return result === true ? 'yes' : 'no'
}

export interface CacheTestsScore {
  /** Required tests that pass (dependencies honoured, as cache-tests.fyi counts). */
  requiredPassed: number
  /** Required tests the node client runs (browser-only tests excluded). */
  requiredTotal: number
  optimalPassed: number
  optimalTotal: number
  /** Outcome per test id, in the suite's order. */
  outcomes: Map<string, CacheTestOutcome>
}

export function scoreCacheTests(
  specs: readonly CacheTestSpec[],
  results: Readonly<Record<string, RawCacheTestResult>>,
): CacheTestsScore {
  const byId = new Map(specs.map((s) => [s.id, s]))
  const outcomes = new Map<string, CacheTestOutcome>()
  let requiredPassed = 0
  let requiredTotal = 0
  let optimalPassed = 0
  let optimalTotal = 0
  for (const spec of specs) {
    if (spec.isBrowserOnly) continue
    const o = cacheTestOutcome(byId, results, spec.id)
    outcomes.set(spec.id, o)
    if (spec.kind === 'required') {
      requiredTotal++
      if (o === 'pass') requiredPassed++
    } else if (spec.kind === 'optimal') {
      optimalTotal++
      if (o === 'pass') optimalPassed++
    }
  }
  return { requiredPassed, requiredTotal, optimalPassed, optimalTotal, outcomes }
}
