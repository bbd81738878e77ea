// The public HTTP caching test suite (cache-tests.fyi, `http-cache-tests` pinned in package.json)
// against three reverse proxy caches in front of the suite's own origin, from one run:
//   vcdn's shield  (paths ["/"], requireTierSecret false: a cache in front of any origin)
//   nginx          (Debian's, proxy_cache + proxy_cache_revalidate: bench/nginx/cache-tests.conf.tmpl,
//                   the suite's own docker set-up)
//   Varnish        (Debian's varnishd with the suite's docker flags: default_ttl=0, default_grace=0,
//                   default_keep=3600; installed with apt-get here when missing, never by the tests)
//
//   node dist/bench/cache-tests/run.js [--target shield,nginx,varnish] [--out file] [--deadline-s n]
//                                      [--id test-id]…
//
// Prints, per cache, the required tests passed (cache-tests.fyi's count: a test whose dependency
// fails does not count), the optimal ones, and the outcome of every `cdn-*` test (RFC 9213
// CDN-Cache-Control); with --out writes one line per test: id, kind, outcome per cache, and the
// shield's failure message. Caches run one after the other (the suite waits on staleness in
// real time; running them at once would make a busy machine's timing everyone's result).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  cacheTestsVersion,
  conformanceShieldConfig,
  loadCacheTestSpecs,
  runCacheTests,
  scoreCacheTests,
  startCacheTestsOrigin,
  startTier,
  tempDir,
  type CacheTestsRun,
  type CacheTestsScore,
  type CacheTestSpec,
} from '../../shared/testing/index.js'
import { NginxTier } from '../lib/nginx.js'
import { delay, freePort } from '../lib/util.js'

const TARGETS = ['shield', 'nginx', 'varnish'] as const
type Target = (typeof TARGETS)[number]
const VARNISHD = '/usr/sbin/varnishd'

interface Cache {
  url: string
  version: string
  stop(): Promise<void>
}

async function startShield(originUrl: string, dir: string): Promise<Cache> {
  const shield = await startTier('shield', conformanceShieldConfig(originUrl, join(dir, 'shield-cache')), { dir })
  return {
    url: shield.url,
    version: 'vcdn shield',
    stop: async () => {
      await shield.stop()
    },
  }
}

async function startNginx(originUrl: string, dir: string): Promise<Cache> {
  const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim()
  const nginx = await NginxTier.start({
    template: 'cache-tests',
    dir: join(dir, 'nginx'),
    vars: { UPSTREAM: originUrl },
  })
  return { url: nginx.url, version, stop: () => nginx.stop() }
}

function ensureVarnish(): void {
  if (existsSync(VARNISHD)) return
  console.log('varnishd missing: apt-get install -y varnish')
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'varnish'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  if (r.status !== 0 || !existsSync(VARNISHD)) throw new Error('cannot install varnish (apt-get install -y varnish)')
}

async function startVarnish(originUrl: string, dir: string): Promise<Cache> {
  ensureVarnish()
  const version = spawnSync(VARNISHD, ['-V'], { encoding: 'utf8' }).stderr.split('\n')[0] ?? 'varnishd'
  const port = await freePort()
  const workDir = join(dir, 'varnish')
  mkdirSync(workDir, { recursive: true })
  const backend = new URL(originUrl).host
  // -F: foreground, so the pid we spawn is the manager; -j none: no privilege separation (the
  // work dir is our temp dir). The flags are the suite's docker/serve.sh.
  const proc: ChildProcess = spawn(
    VARNISHD,
    [
      '-F',
      '-j',
      'none',
      '-n',
      workDir,
      '-a',
      `127.0.0.1:${port}`,
      '-b',
      backend,
      '-p',
      'default_ttl=0',
      '-p',
      'default_grace=0',
      '-p',
      'default_keep=3600',
      '-s',
      'malloc,64M',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString()))
  proc.stderr?.on('data', (b: Buffer) => (out += b.toString()))
  const exited = new Promise<void>((res) => proc.once('exit', () => res()))
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill('SIGTERM')
    const isSlow = await Promise.race([exited.then(() => false), delay(10_000).then(() => true)])
    if (isSlow) {
      proc.kill('SIGKILL')
      await exited
    }
  }
  const deadline = Date.now() + 30_000
  for (let attempt = 0; !out.includes('Child starts'); attempt++) {
    if (proc.exitCode !== null || Date.now() > deadline || attempt > 3000) {
      await stop()
      throw new Error(`varnishd did not start:\n${out}`)
    }
    await delay(10)
  }
  return { url: `http://127.0.0.1:${port}`, version, stop }
}

const STARTERS: Record<Target, (originUrl: string, dir: string) => Promise<Cache>> = {
  shield: startShield,
  nginx: startNginx,
  varnish: startVarnish,
}

interface TargetResult {
  target: Target
  version: string
  run: CacheTestsRun
  score: CacheTestsScore
}

function summaryLine(r: TargetResult): string {
  const s = r.score
  const done = r.run.isComplete ? '' : ' (DEADLINE: incomplete)'
  return (
    `${r.target.padEnd(8)} required ${String(s.requiredPassed).padStart(3)}/${s.requiredTotal}` +
    `  optimal ${String(s.optimalPassed).padStart(3)}/${s.optimalTotal}  ${(r.run.ms / 1000).toFixed(1)} s` +
    `  ${r.version}${done}`
  )
}

/** One line per test: id, kind, each cache's outcome, and the first cache's failure message. */
function perTestLines(specs: readonly CacheTestSpec[], results: readonly TargetResult[]): string[] {
  const lines = [['id', 'kind', ...results.map((r) => r.target), `${results[0]?.target ?? ''} message`].join('\t')]
  for (const spec of specs) {
    if (spec.isBrowserOnly) continue
    const first = results[0]?.run.results[spec.id]
    const message = first === undefined || first === true ? '' : `${first[0]}: ${first[1]}`.replace(/\s+/g, ' ').trim()
    lines.push(
      [spec.id, spec.kind, ...results.map((r) => r.score.outcomes.get(spec.id) ?? 'untested'), message].join('\t'),
    )
  }
  return lines
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', multiple: true },
      out: { type: 'string' },
      'deadline-s': { type: 'string' },
      id: { type: 'string', multiple: true },
    },
    strict: true,
  })
  const targets = (values.target ?? [...TARGETS]).flatMap((t) => t.split(',')).filter((t) => t !== '')
  for (const t of targets)
    if (!TARGETS.includes(t as Target)) throw new Error(`unknown target ${t}; known: ${TARGETS.join(', ')}`)
  const deadlineS = Number(values['deadline-s'] ?? 300)
  if (!(deadlineS > 0)) throw new Error('--deadline-s must be a positive number')
  const specs = await loadCacheTestSpecs()
  const tmp = tempDir('vcdn-cache-tests-')
  const origin = await startCacheTestsOrigin({ dir: tmp.dir })
  const results: TargetResult[] = []
  try {
    console.log(`http-cache-tests ${cacheTestsVersion()}, origin ${origin.url}`)
    for (const target of targets as Target[]) {
      const cache = await STARTERS[target](origin.url, tmp.dir)
      try {
        const run = await runCacheTests(cache.url, {
          dir: tmp.dir,
          deadlineMs: deadlineS * 1000,
          ...(values.id !== undefined ? { ids: values.id } : {}),
        })
        const r = { target, version: cache.version, run, score: scoreCacheTests(specs, run.results) }
        results.push(r)
        console.log(summaryLine(r))
      } finally {
        await cache.stop()
      }
    }
  } finally {
    await origin.stop()
    tmp.remove()
  }
  const cdnIds = specs.filter((s) => s.id.startsWith('cdn-')).map((s) => s.id)
  console.log(
    cdnIds.length === 0
      ? `cdn-* (RFC 9213) tests: none in http-cache-tests ${cacheTestsVersion()}`
      : `cdn-* (RFC 9213) tests passed: ${results
          .map(
            (r) => `${r.target} ${cdnIds.filter((id) => r.score.outcomes.get(id) === 'pass').length}/${cdnIds.length}`,
          )
          .join(', ')}`,
  )
  if (values.out !== undefined) {
    const header = [
      `# http-cache-tests ${cacheTestsVersion()} — node dist/bench/cache-tests/run.js, ${new Date().toISOString()}`,
      ...results.map((r) => `# ${summaryLine(r)}`),
      '# outcome per test as cache-tests.fyi shows it (dependency_fail: a test it depends on did not pass)',
    ]
    writeFileSync(values.out, [...header, ...perTestLines(specs, results), ''].join('\n'))
    console.log(`per-test results: ${values.out}`)
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
