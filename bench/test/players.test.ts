// The players scenario runs small: `node dist/bench/run.js --scenario players --smoke` plays 10
// simulated players over 5 real ladders (20 s each, encoded by ffmpeg once into .cache/bench/)
// through 2 edges and 1 shield, in each prefetch mode (off, playlist, CMCD, into the shield), cold,
// warm and steady, and reports finite numbers.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../../shared/testing/index.js'
import { runBench } from './bench-child.js'

const PLAYERS = 10
const VIDEOS = 5
/** 20 s videos in 2 s segments, played to the end by every player. */
const SEGMENTS_PER_PLAYER = 10

// Encoding 5 ladders on first use and starting three stacks on a busy 2-core machine (136 s at a
// load of ~15 with the ladders cached). Both calls: this process's timer and the runner's.
t.setTimeout(600_000)
t.comment('timeout=600000')

t.test('the players scenario plays every mode to the end and reports its numbers', async (t) => {
  const out = tempDir('vcdn-bench-players-')
  t.teardown(out.remove)
  const args = ['--scenario', 'players', '--smoke', '--no-pin', '--out', out.dir]
  args.push('--players', String(PLAYERS), '--videos', String(VIDEOS))
  const { code, stdout, stderr } = await runBench(t, args, 540_000)
  t.equal(code, 0, `bench exits 0 (stderr: ${stderr.slice(-2000)})`)
  t.match(
    stdout,
    /^players\s+10 players × 5 videos \(cold\/warm\/steady\)\s+off: edge hit [\d.]+%\/[\d.]+%\/[\d.]+% .*\| {2}playlist: .*\| {2}cmcd: .*\| {2}shield: .*miss p99 gain/m,
    'the summary line',
  )

  const file = readdirSync(out.dir).find((f) => f.startsWith('players-') && f.endsWith('.json'))
  if (file === undefined) return t.fail(`no players JSON in ${out.dir}`)
  const result = JSON.parse(readFileSync(join(out.dir, file), 'utf8')) as { summary: Record<string, unknown> }
  const s = result.summary
  for (const [field, v] of Object.entries(s)) {
    t.ok(typeof v === 'number' && Number.isFinite(v), `summary.${field} is a finite number (${String(v)})`)
  }
  const n = (field: string): number => (typeof s[field] === 'number' ? s[field] : NaN)
  t.equal(n('playerErrors'), 0, 'no player request failed')
  for (const mode of ['off', 'playlist', 'cmcd', 'shield']) {
    for (const wave of ['Cold', 'Warm', 'Steady']) {
      t.equal(
        n(`${mode}${wave}SegmentRequests`),
        PLAYERS * SEGMENTS_PER_PLAYER,
        `${mode} ${wave}: every segment played`,
      )
      const hit = n(`${mode}${wave}EdgeHitRatio`)
      t.ok(hit >= 0 && hit <= 1, `${mode} ${wave}: an edge hit ratio (${hit})`)
      const refetch = n(`${mode}${wave}OriginRefetchPerSegment`)
      t.ok(
        refetch >= 0 && refetch <= n(`${mode}${wave}OriginPerSegment`),
        `${mode} ${wave}: refetches (${refetch}) are a part of the origin's requests`,
      )
    }
  }
  t.ok(n('offColdOriginPerSegment') > 0, 'the cold wave reached the origin')
  t.equal(n('offColdOriginRefetchPerSegment'), 0, 'with empty caches every origin request is a first fetch')
  t.equal(
    n('offColdPrefetchIssued') + n('offWarmPrefetchIssued') + n('offSteadyPrefetchIssued'),
    0,
    'no prefetch with prefetch off',
  )
  t.ok(n('playlistColdPrefetchIssued') > 0, 'playlist prefetch issued fills')
  t.ok(n('playlistColdPrefetchUsed') > 0, 'and players used them')
  t.ok(n('cmcdColdPrefetchIssued') > 0, 'CMCD prefetch issued fills')
  t.equal(n('shieldColdPrefetchIssued'), 0, 'prefetch into the shield fills nothing at the edges')
})
