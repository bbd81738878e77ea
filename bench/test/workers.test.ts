// The workers scenario runs small: `node dist/bench/run.js --scenario workers --smoke` starts vcdn
// edges with `workers: 1` and `workers: 2` and nginx edges with `worker_processes 1` and 2 (the
// scenario refuses to measure an edge whose thread or process count is not that), loads each with
// the playlist and the 2 MB segment for ~1 s, and reports finite figures: scaling factors, vcdn ÷
// nginx, and the CPU of vcdn's coordinator thread.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../../shared/testing/index.js'
import { runBench } from './bench-child.js'

// Eight stacks' worth of processes and 16 loads of ≥ 1 s (wrk runs whole seconds): ~30 s at a
// load average of 12 on 2 cores. Both calls: this process's timer and the runner's.
t.setTimeout(300_000)
t.comment('timeout=300000')

t.test('the workers scenario loads 1 and 2 workers of vcdn and nginx and reports scaling', async (t) => {
  const out = tempDir('vcdn-bench-workers-')
  t.teardown(out.remove)
  const { code, stdout, stderr } = await runBench(t, ['--scenario', 'workers', '--smoke', '--out', out.dir], 240_000)
  t.equal(code, 0, `bench exits 0 (stderr: ${stderr.slice(-2000)})`)
  t.match(
    stdout,
    /^workers\s+small: vcdn [\d ]+ req\/s → [\d ]+ req\/s \([\d.]+×\)\s+nginx [\d ]+ req\/s → [\d ]+ req\/s \([\d.]+×\)\s+vcdn÷nginx 1: [\d.]+× 2: [\d.]+×\s+\|\s+segment: vcdn [\d.]+ MiB\/s → [\d.]+ MiB\/s .*median of 1\s+\[wrk -t2 \/ trunc, .*coordinator \d+ % of a core/m,
    'the summary line',
  )

  const file = readdirSync(out.dir).find((f) => f.startsWith('workers-') && f.endsWith('.json'))
  if (file === undefined) return t.fail(`no workers JSON in ${out.dir}`)
  const result = JSON.parse(readFileSync(join(out.dir, file), 'utf8')) as {
    summary: Record<string, unknown>
    runs: { label: string; object: string; requests: number; mainThreadCpuPct: number }[]
  }
  const s = result.summary
  for (const [field, v] of Object.entries(s))
    t.ok(typeof v === 'number' && Number.isFinite(v), `summary.${field} is a finite number (${String(v)})`)
  const n = (field: string): number => (typeof s[field] === 'number' ? s[field] : NaN)
  t.equal(n('failures'), 0, 'every response a 2xx')
  t.equal(n('vcdnMissesDuringRuns'), 0, 'every vcdn request a hit at the edge')
  for (const object of ['small', 'segment']) {
    for (const label of ['vcdn1', 'vcdn2', 'nginx1', 'nginx2']) {
      const run = result.runs.find((r) => r.object === object && r.label === label)
      t.ok(run !== undefined && run.requests > 0, `${object} ${label}: the load got responses`)
    }
    for (const k of ['Vcdn', 'Nginx']) t.ok(n(`${object}${k}Scaling`) > 0, `${object}: a ${k} scaling factor`)
    t.ok(n(`${object}VcdnPerNginx2`) > 0, `${object}: vcdn ÷ nginx with 2`)
    // Both request threads served (the kernel spread the connections over the shared port), and
    // the main thread, the coordinator, was not the whole server (docs/architecture.md §9.1).
    const busiest = n(`${object}Vcdn2BusiestWorkerCpuPct`)
    const second = n(`${object}Vcdn2SecondWorkerCpuPct`)
    t.ok(
      busiest > 0 && second >= busiest / 4,
      `${object}: vcdn2's two busiest threads besides the main one shared the work (${busiest} %, ${second} %)`,
    )
    const share = n(`${object}Vcdn2CoordinatorShare`)
    t.ok(share >= 0 && share < 1, `${object}: the coordinator took a part of vcdn2's CPU, not all (${share})`)
  }
})
