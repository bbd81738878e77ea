// The benchmark still works: `node dist/bench/run.js --smoke` runs every scenario for about a
// second (one run, vcdn and nginx both), prints each summary line and writes each JSON result.
// nginx is part of the contract (make setup installs it): without it the nginx half errors and
// this test fails.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../../shared/testing/index.js'
import { runBench } from './bench-child.js'

const SCENARIOS: Record<string, { line: RegExp; fields: string[] }> = {
  'playlist-hit': {
    line: /^playlist-hit\s+vcdn [\d ]+ req\/s\s+nginx [\d ]+ req\/s\s+ratio [\d.]+×\s+\(target ≥ 1\.5×\)\s+median of 1/m,
    fields: ['vcdn', 'nginx', 'ratio', 'ratioPerCore', 'vcdnServerCpuPct', 'nginxServerCpuPct'],
  },
  'segment-hit': {
    line: /^segment-hit\s+vcdn [\d.]+ MiB\/s\s+nginx [\d.]+ MiB\/s\s+ratio [\d.]+×\s+\(target ≥ 2×\)\s+median of 1/m,
    fields: ['vcdn', 'nginx', 'ratio', 'ratioPerCore', 'vcdnServerCpuPct', 'nginxServerCpuPct'],
  },
  'segment-server': {
    line: /^segment-server\s+vcdn [\d.]+ MiB\/s\s+nginx [\d.]+ MiB\/s\s+ratio [\d.]+×\s+\(target ≥ 2×\)\s+median of 1\s+\[trunc, player headers;/m,
    fields: ['vcdn', 'nginx', 'ratio', 'ratioPerCore', 'vcdnServerCpuPct', 'nginxServerCpuPct'],
  },
  'https-segment': {
    line: /^https-segment\s+vcdn [\d.]+ MiB\/s\s+nginx [\d.]+ MiB\/s\s+ratio [\d.]+×\s+\(target ≥ 1\.5× per edge core\)\s+median of 1\s+\[wrk over TLSv1\.3 TLS_AES_128_GCM_SHA256,/m,
    fields: ['vcdn', 'nginx', 'ratio', 'ratioPerCore', 'vcdnServerCpuPct', 'nginxServerCpuPct'],
  },
  'https-playlist': {
    line: /^https-playlist\s+vcdn [\d ]+ req\/s\s+nginx [\d ]+ req\/s\s+ratio [\d.]+×\s+\(target ≥ 1\.3× per edge core\)\s+median of 1\s+\[wrk over TLSv1\.3 TLS_AES_128_GCM_SHA256,/m,
    fields: ['vcdn', 'nginx', 'ratio', 'ratioPerCore', 'vcdnServerCpuPct', 'nginxServerCpuPct'],
  },
  'miss-storm': {
    line: /^miss-storm\s+vcdn p50 [\d.]+ ms p99 [\d.]+ ms origin \d+\s+nginx p50 [\d.]+ ms p99 [\d.]+ ms origin \d+/m,
    fields: [
      'vcdnTtfbP50Ms',
      'vcdnTtfbP99Ms',
      'vcdnOriginRequestsMax',
      'nginxTtfbP50Ms',
      'nginxTtfbP99Ms',
      'nginxOriginRequestsMax',
    ],
  },
  'edge-rss': {
    line: /^edge-rss\s+vcdn peak RSS [\d.]+ MiB\s+limit [\d.]+ MiB/m,
    fields: ['peakRssBytes', 'limitBytes', 'ratioToLimit', 'idleRssBytes'],
  },
  transcode: {
    line: /^transcode\s+\d+ s \d+p → [\w/]+\+audio\s+vcdn [\d.]+ s wall [\d.]+ CPU-s\s+ffmpeg [\d.]+ s wall [\d.]+ CPU-s\s+overhead wall [+-][\d.]+% CPU [+-][\d.]+%/m,
    fields: ['vcdnWallS', 'ffmpegWallS', 'vcdnCpuS', 'ffmpegCpuS', 'wallOverhead', 'cpuOverhead', 'vcdnPeakRssKiB'],
  },
}

// wrk runs whole seconds, so each load of the smoke run takes ≥ 1 s: ~35 s in all on an idle
// machine, and 170–230 s on one whose load average is above 20 (a CI run beside other work; each
// hit scenario, the https-* two included, takes ~13–15 s there).
// One budget: the bench is killed first, so the test still reports what it printed, then the
// test's own timeout, then the file's. Both file calls are needed: setTimeout moves this process's
// own timer, the `# timeout=` comment the runner's (its default is 300 s per file).
const BENCH_DEADLINE_MS = 480_000
const FILE_TIMEOUT_MS = 590_000
t.setTimeout(FILE_TIMEOUT_MS)
t.comment(`timeout=${FILE_TIMEOUT_MS}`)

t.test('every scenario runs briefly against vcdn and nginx and reports numbers', { timeout: 540_000 }, async (t) => {
  const out = tempDir('vcdn-bench-smoke-')
  t.teardown(out.remove)
  const { code, stdout, stderr } = await runBench(t, ['--smoke', '--out', out.dir], BENCH_DEADLINE_MS)
  t.equal(code, 0, `bench exits 0 (stderr: ${stderr.slice(-2000)})`)

  const files = readdirSync(out.dir)
  for (const [name, spec] of Object.entries(SCENARIOS)) {
    t.match(stdout, spec.line, `${name} printed its summary line`)
    const file = files.find((f) => f.startsWith(`${name}-`) && f.endsWith('.json'))
    if (file === undefined) {
      t.fail(`${name} wrote no JSON result in ${out.dir}: ${files.join(', ')}`)
      continue
    }
    const result = JSON.parse(readFileSync(join(out.dir, file), 'utf8')) as {
      scenario?: unknown
      summary?: Record<string, unknown>
    }
    t.equal(result.scenario, name, `${file} names its scenario`)
    const summary = result.summary ?? {}
    for (const field of spec.fields) {
      const v = summary[field]
      t.ok(typeof v === 'number' && Number.isFinite(v), `${name}.summary.${field} is a finite number (${String(v)})`)
    }
    for (const [field, v] of Object.entries(summary)) {
      t.ok(typeof v === 'number' && Number.isFinite(v), `${name}.summary.${field} is a finite number`)
    }
  }
  // The loads really moved data on both stacks, and the storm reached the origin.
  const summaryFile = files.find((f) => f.startsWith('summary-') && f.endsWith('.json'))
  t.ok(summaryFile, 'the run wrote its combined summary')
  if (summaryFile !== undefined) {
    const all = JSON.parse(readFileSync(join(out.dir, summaryFile), 'utf8')) as {
      errors: unknown[]
      scenarios: Record<string, { summary: Record<string, number> }>
    }
    t.same(all.errors, [], 'no scenario failed to run')
    for (const name of ['playlist-hit', 'segment-hit', 'segment-server', 'https-segment', 'https-playlist']) {
      const s = all.scenarios[name]?.summary
      t.ok((s?.['vcdn'] ?? 0) > 0 && (s?.['nginx'] ?? 0) > 0, `${name} measured traffic on both stacks`)
    }
    const storm = all.scenarios['miss-storm']?.summary
    t.ok(
      (storm?.['vcdnOriginRequestsMax'] ?? 0) >= 1 && (storm?.['nginxOriginRequestsMax'] ?? 0) >= 1,
      'both storms reached the origin',
    )
  }
})
