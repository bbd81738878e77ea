// `vcdn loadtest` as an operator runs it, against real processes: a small ladder in an origin's
// store behind a shield and an edge, all from dist/ on 127.0.0.1. The summary must agree with
// what the edge says it served (its /metrics); an unreachable target is a coded error; the
// players honour the playlist's URIs (relative ones inherit the master URL's query token).
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseMetrics } from '../../shared/metrics/index.js'
import { formatMasterPlaylist, formatMediaPlaylist } from '../../shared/hls/index.js'
import { FsStore } from '../../shared/store/index.js'
import { freePort, ScriptedOrigin, startTier, tempDir, VCDN_BIN, waitFor } from '../../shared/testing/index.js'
import { signedPath } from '../../shared/token/index.js'
import { nextLevel, startLevel, UP_STREAK } from '../loadtest/abr.js'
import { Histogram } from '../loadtest/histogram.js'
import { LoadHttp } from '../loadtest/http.js'
import { cmcdHeaders, Players } from '../loadtest/players.js'
import { Recorder } from '../loadtest/stats.js'
import type { Summary } from '../loadtest/stats.js'

const SECRET = 'loadtest-tier-secret-0123456789abcdef'
const KEYS = { k1: 'loadtest-signing-key-0123456789abcdef' }
const VIDEO = 'loadtestvideo001'
const SEGMENTS = 6
// BANDWIDTH per rung (bits/s) and segment size: at --speed 10 the top rung needs 0.8 Mbit/s,
// and loopback moves a 16 kB segment far faster, so players climb; a fetch would have to take
// over 100 ms for them to step back down.
const LADDER = [
  { name: '240p', bandwidth: 20_000, segmentBytes: 8_000 },
  { name: '360p', bandwidth: 40_000, segmentBytes: 12_000 },
  { name: '480p', bandwidth: 80_000, segmentBytes: 16_000 },
] as const
const AUDIO_SEGMENT_BYTES = 2_000

interface Run {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

function vcdn(args: string[], timeoutMs = 60_000): Promise<Run> {
  const t0 = Date.now()
  return new Promise((resolve) => {
    execFile(process.execPath, [VCDN_BIN, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      resolve({ code, stdout, stderr, ms: Date.now() - t0 })
    })
  })
}

function summaryOf(r: Run): Summary {
  try {
    return JSON.parse(r.stdout) as Summary
  } catch {
    throw new Error(`no JSON summary on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
}

async function putLadder(store: FsStore): Promise<void> {
  const put = (key: string, body: string | Buffer): Promise<unknown> =>
    store.put(`v/${VIDEO}/${key}`, typeof body === 'string' ? Buffer.from(body) : body)
  const segments = Array.from({ length: SEGMENTS }, (_, i) => ({
    uri: `seg_${String(i + 1).padStart(5, '0')}.m4s`,
    durationS: 1,
  }))
  await put(
    'master.m3u8',
    formatMasterPlaylist({
      audio: [{ groupId: 'aud', name: 'main', uri: 'audio/index.m3u8' }],
      variants: LADDER.map((r, i) => ({
        uri: `${r.name}/index.m3u8`,
        bandwidth: r.bandwidth,
        averageBandwidth: r.bandwidth,
        codecs: 'avc1.64001f,mp4a.40.2',
        width: 320 + 160 * i,
        height: 240 + 120 * i,
        frameRate: 30,
        audioGroupId: 'aud',
      })),
    }),
  )
  for (const [name, bytes] of [
    ...LADDER.map((r) => [r.name, r.segmentBytes] as const),
    ['audio', AUDIO_SEGMENT_BYTES] as const,
  ]) {
    await put(`${name}/index.m3u8`, formatMediaPlaylist({ mapUri: 'init.mp4', segments }))
    await put(`${name}/init.mp4`, Buffer.alloc(600, name))
    for (const s of segments) await put(`${name}/${s.uri}`, Buffer.alloc(bytes, s.uri))
  }
}

/** The edge's own account: requests by status and X-Cache, and body bytes sent. */
async function edgeCounts(adminUrl: string): Promise<{ requests: number; hits: number; bytes: number }> {
  const metrics = parseMetrics(await (await fetch(`${adminUrl}/metrics`)).text())
  let requests = 0
  let hits = 0
  for (const [name, n] of metrics) {
    if (!name.startsWith('vcdn_edge_requests_total{')) continue
    requests += n
    if (name.includes('cache="HIT"')) hits += n
  }
  return { requests, hits, bytes: metrics.get('vcdn_edge_sent_bytes_total') ?? 0 }
}

const sum = (rec: Record<string, number>): number => Object.values(rec).reduce((a, b) => a + b, 0)

t.test('vcdn loadtest against an origin, a shield and an edge', async (t) => {
  const tmp = tempDir('vcdn-loadtest-')
  t.teardown(tmp.remove)
  await putLadder(new FsStore({ dir: join(tmp.dir, 'store') }))
  const origin = await startTier(
    'origin',
    {
      tierSecret: SECRET,
      dataDir: join(tmp.dir, 'origin'),
      store: { kind: 'fs', dir: join(tmp.dir, 'store') },
      accessLog: false,
    },
    { dir: tmp.dir },
  )
  t.teardown(() => origin.stop())
  const shield = await startTier(
    'shield',
    { tierSecret: SECRET, upstreams: [origin.url], cache: { dir: join(tmp.dir, 'shield') }, accessLog: false },
    { dir: tmp.dir },
  )
  t.teardown(() => shield.stop())
  const edge = await startTier(
    'edge',
    {
      tierSecret: SECRET,
      shields: [shield.url],
      origin: origin.url,
      signingKeys: KEYS,
      cache: { dir: join(tmp.dir, 'edge') },
      accessLog: false,
    },
    { dir: tmp.dir },
  )
  t.teardown(() => edge.stop())
  const signed = (path: string): string =>
    edge.url + signedPath({ prefix: `/v/${VIDEO}/`, path, ttlS: 3600, kid: 'k1', keys: KEYS, nowMs: Date.now() })

  t.test(
    'players fetch master, variants, inits and segments at pace; the summary matches the edge, without errors, and repeats are HITs',
    async (t) => {
      const before = await edgeCounts(edge.adminUrl)
      const durationS = 3
      const speed = 10
      const players = 3
      const r = await vcdn([
        'loadtest',
        '--players',
        String(players),
        '--duration',
        String(durationS),
        '--speed',
        String(speed),
        '--ramp',
        '1',
        '--loop',
        '--quiet',
        '--json',
        '-',
        signed(`/v/${VIDEO}/master.m3u8`),
      ])
      t.equal(r.code, 0, r.stderr)
      const s = summaryOf(r)
      t.match(r.stderr, /vcdn loadtest \(players\)/, 'the table goes to stderr when the JSON takes stdout')
      t.equal(s.errors.total, 0, 'no errors')
      t.same(s.statuses, { 200: s.requests }, 'every request answered 200')
      t.notMatch(s.url, /\/t\/[^…]/, 'the token is not printed')
      const kinds = s.byKind
      t.equal(kinds.master, players, 'one master playlist per player')
      t.ok((kinds.playlist ?? 0) >= players * 2, 'a video and an audio media playlist per player at least')
      t.ok((kinds.init ?? 0) >= players * 2, 'their init segments')
      t.equal(
        s.requests,
        (kinds.master ?? 0) + (kinds.playlist ?? 0) + (kinds.init ?? 0) + (kinds.segment ?? 0),
        'requests are playlists, inits and segments',
      )
      // Real-time pace (÷ speed): one segment per track per 100 ms at most, plus the one in
      // flight at the deadline; at least one pass over the video on a slow machine.
      const perTrack = (durationS * speed) / 1 + 2
      t.ok((kinds.segment ?? 0) <= players * 2 * perTrack, `segments ${kinds.segment} within the pace`)
      t.ok((kinds.segment ?? 0) >= players * SEGMENTS, `segments ${kinds.segment}: every player played`)
      const p = s.players!
      t.equal(p.started, players)
      t.equal(p.failed, 0)
      t.ok(p.abrUp >= 1, `ABR climbed (${p.abrUp} switches up)`)
      const rungs = Object.keys(p.segmentsByBandwidth)
      t.ok(rungs.length >= 2, `video segments came from more than one rung: ${rungs.join(', ')}`)
      t.ok(sum(p.segmentsByBandwidth) < (kinds.segment ?? 0), 'audio segments besides the video ones')
      t.ok((s.xCacheRepeat['HIT'] ?? 0) > 0, 'objects fetched again')
      t.same(Object.keys(s.xCacheRepeat), ['HIT'], 'an object this run had fetched whole is a HIT afterwards')
      // The edge counts a request when its response is done, a moment after the client has it.
      const after = await waitFor(
        async () => {
          const c = await edgeCounts(edge.adminUrl)
          return c.requests - before.requests >= s.requests ? c : null
        },
        { timeoutMs: 10_000, what: 'the edge to count the run' },
      )
      t.equal(after.requests - before.requests, s.requests, 'requests: as many as the edge served')
      t.equal(after.bytes - before.bytes, s.bytes, 'bytes: as many as the edge sent')
      t.equal(after.hits - before.hits, s.xCache['HIT'] ?? 0, 'X-Cache HITs: as many as the edge counted')
    },
  )

  t.test('rps mode drives a request rate at a segment URL and reports statuses and X-Cache', async (t) => {
    const rps = 40
    const r = await vcdn([
      'loadtest',
      '--rps',
      String(rps),
      '--duration',
      '2',
      '--quiet',
      '--json',
      join(tmp.dir, 'rps.json'),
      signed(`/v/${VIDEO}/480p/seg_00001.m4s`),
    ])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^vcdn loadtest \(rps\)\n/, 'the table on stdout when the JSON goes to a file')
    const s = JSON.parse(readFileSync(join(tmp.dir, 'rps.json'), 'utf8')) as Summary
    t.equal(s.mode, 'rps')
    t.ok(s.requests > 0, `${s.requests} requests`)
    t.ok(s.requests <= rps * 4, `${s.requests} requests: the rate is bounded`)
    t.same(s.statuses, { 200: s.requests })
    t.equal(s.bytes, s.requests * LADDER[2].segmentBytes, 'body bytes of every answer')
    t.equal(s.xCache['HIT'], s.requests, 'a cached segment is a HIT every time')
    t.ok(s.ttfbMs.p50 > 0 && s.ttfbMs.p50 <= s.ttfbMs.p95 && s.ttfbMs.p95 <= s.ttfbMs.p99, 'TTFB percentiles')
    t.ok(s.rps!.connections <= rps, 'no more connections than requests per second')
  })

  t.test('a signed URL the edge refuses is a coded error and a non-zero exit', async (t) => {
    const r = await vcdn([
      'loadtest',
      '--players',
      '2',
      '--duration',
      '5',
      '--quiet',
      `${edge.url}/v/${VIDEO}/master.m3u8`,
    ])
    t.not(r.code, 0)
    t.match(r.stderr, /ERR_UPSTREAM_STATUS: .*403/)
  })
})

t.test('an unreachable URL is a coded error and a non-zero exit, within the timeout', async (t) => {
  const port = await freePort()
  for (const mode of ['--players', '--rps']) {
    const r = await vcdn([
      'loadtest',
      mode,
      '2',
      '--duration',
      '60',
      '--timeout',
      '3',
      `http://127.0.0.1:${port}/v/x/master.m3u8`,
    ])
    t.not(r.code, 0, mode)
    t.match(r.stderr, /ERR_UPSTREAM_CONNECT/, mode)
    t.ok(r.ms < 15_000, `${mode}: gave up after ${r.ms} ms, not the 60 s duration`)
  }
})

t.test(
  'a server that never answers costs each request its timeout, is counted by code, and the run still ends',
  async (t) => {
    const upstream = new ScriptedOrigin()
    await upstream.listen()
    t.teardown(() => upstream.close())
    upstream.static('/h/master.m3u8', Buffer.from('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nindex.m3u8\n'))
    upstream.static(
      '/h/index.m3u8',
      Buffer.from('#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg1.m4s\n#EXT-X-ENDLIST\n'),
    )
    // Headers never come.
    upstream.routes.set('/h/seg1.m4s', () => undefined)
    upstream.routes.set('/hang/master.m3u8', () => undefined)
    const stalled = await vcdn([
      'loadtest',
      '--players',
      '2',
      '--duration',
      '3',
      '--timeout',
      '1',
      '--quiet',
      '--json',
      '-',
      `${upstream.url}/h/master.m3u8`,
    ])
    t.equal(stalled.code, 1, 'failed requests: exit 1')
    t.match(stalled.stderr, /requests failed \(--max-errors 0\)/)
    const s = summaryOf(stalled)
    t.ok((s.errors.byCode['ERR_UPSTREAM_TIMEOUT'] ?? 0) >= 2, `timeouts counted: ${JSON.stringify(s.errors)}`)
    t.equal(s.errors.total, s.errors.byCode['ERR_UPSTREAM_TIMEOUT'])
    t.ok(stalled.ms < 15_000, `ended after ${stalled.ms} ms (duration 3 s, timeout 1 s)`)
    const tolerant = await vcdn([
      'loadtest',
      '--players',
      '1',
      '--duration',
      '2',
      '--timeout',
      '1',
      '--max-errors',
      '100',
      '--quiet',
      `${upstream.url}/h/master.m3u8`,
    ])
    t.equal(tolerant.code, 0, '--max-errors raises the bar')
    t.match(tolerant.stdout, /errors +\d+ +ERR_UPSTREAM_TIMEOUT \d+/, 'the table names the code')
    const hung = await vcdn([
      'loadtest',
      '--players',
      '2',
      '--duration',
      '60',
      '--timeout',
      '1',
      `${upstream.url}/hang/master.m3u8`,
    ])
    t.not(hung.code, 0)
    t.match(hung.stderr, /ERR_UPSTREAM_TIMEOUT/)
    t.ok(hung.ms < 15_000, `a master playlist that never comes ends the run after ${hung.ms} ms`)
  },
)

t.test('a CMCD player names its session and, on each segment, the next segment (nor)', async (t) => {
  const upstream = new ScriptedOrigin()
  await upstream.listen()
  t.teardown(() => upstream.close())
  upstream.static('/c/master.m3u8', Buffer.from('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nv/index.m3u8\n'))
  const media = ['#EXTM3U', '#EXT-X-TARGETDURATION:1', '#EXT-X-PLAYLIST-TYPE:VOD']
  for (const name of ['s1.m4s', 's2.m4s', 'other/s3.m4s']) media.push('#EXTINF:1.0,', name)
  upstream.static('/c/v/index.m3u8', Buffer.from([...media, '#EXT-X-ENDLIST', ''].join('\n')))
  const seen: Record<string, { request: unknown; session: unknown }> = {}
  for (const path of ['/c/v/s1.m4s', '/c/v/s2.m4s', '/c/v/other/s3.m4s']) {
    upstream.routes.set(path, (req, res) => {
      seen[path] = { request: req.headers['cmcd-request'], session: req.headers['cmcd-session'] }
      res.writeHead(200, { 'content-length': '10' }).end(Buffer.alloc(10))
    })
  }
  const http = new LoadHttp({ timeoutMs: 10_000, connections: 2, headers: {} })
  t.teardown(() => http.close())
  const recorder = new Recorder()
  const players = new Players({
    masterUrl: new URL(`${upstream.url}/c/master.m3u8`),
    ...{ players: 1, rampMs: 0, speed: 100, isLoop: false, retries: 0, http, recorder },
    stop: AbortSignal.timeout(30_000),
    isCmcd: true,
  })
  await players.run()
  t.equal(recorder.players.finished, 1, 'played to the end')
  const sid = /^sid="([0-9a-f-]{36})"$/.exec(String(seen['/c/v/s1.m4s']?.session))?.[1]
  t.ok(sid, `a session id (${String(seen['/c/v/s1.m4s']?.session)})`)
  t.same(seen, {
    '/c/v/s1.m4s': { request: 'nor="s2.m4s"', session: `sid="${sid}"` },
    '/c/v/s2.m4s': { request: `nor="${encodeURIComponent('/c/v/other/s3.m4s')}"`, session: `sid="${sid}"` },
    '/c/v/other/s3.m4s': { request: undefined, session: `sid="${sid}"` },
  })
  t.same(
    cmcdHeaders('x', new URL('http://h/a/b.m4s'), new URL('http://h/a/c%20d.m4s')),
    {
      'cmcd-session': 'sid="x"',
      'cmcd-request': 'nor="c%2520d.m4s"',
    },
    'nor is URL-encoded (CTA-5004)',
  )
})

t.test('a player whose video keeps failing retries, then gives up whole, audio and all', async (t) => {
  const upstream = new ScriptedOrigin()
  await upstream.listen()
  t.teardown(() => upstream.close())
  upstream.static(
    '/f/master.m3u8',
    Buffer.from(
      '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="main",DEFAULT=YES,URI="audio.m3u8"\n' +
        '#EXT-X-STREAM-INF:BANDWIDTH=100000,AUDIO="a"\nvideo.m3u8\n',
    ),
  )
  const playlist = (segment: string): Buffer =>
    Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n${segment}\n#EXT-X-ENDLIST\n`)
  upstream.static('/f/video.m3u8', playlist('missing.m4s'))
  upstream.static('/f/audio.m3u8', playlist('a1.m4s'))
  upstream.static('/f/a1.m4s', Buffer.alloc(100))
  const r = await vcdn([
    'loadtest',
    '--players',
    '1',
    '--duration',
    '30',
    '--speed',
    '10',
    '--loop',
    '--retries',
    '2',
    '--quiet',
    '--json',
    '-',
    `${upstream.url}/f/master.m3u8`,
  ])
  t.equal(r.code, 1, 'failed requests: exit 1')
  const s = summaryOf(r)
  t.same(s.errors.byStatus, { 404: 3 }, 'the first attempt and two retries')
  t.equal(upstream.count('/f/missing.m4s'), 3)
  t.equal(s.players!.failed, 1)
  t.ok(r.ms < 20_000, `the looping audio stopped with the video: ${r.ms} ms`)
  t.ok(upstream.count('/f/a1.m4s') <= 10, `audio segments: ${upstream.count('/f/a1.m4s')}, until the video gave up`)
})

t.test(
  "relative URIs keep the master URL's query token; absolute URIs and URIs with a query are fetched as written",
  async (t) => {
    const upstream = new ScriptedOrigin()
    await upstream.listen()
    t.teardown(() => upstream.close())
    const seen: string[] = []
    const serve = (path: string, body: string): void => {
      upstream.routes.set(path, (req, res) => {
        seen.push(req.url ?? '')
        res.writeHead(200, { 'content-length': String(Buffer.byteLength(body)) }).end(body)
      })
    }
    serve(
      '/q/master.m3u8',
      '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=100000,CODECS="avc1.64001f"\nv/index.m3u8\n',
    )
    serve(
      '/q/v/index.m3u8',
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-TARGETDURATION:1',
        '#EXT-X-PLAYLIST-TYPE:VOD',
        '#EXT-X-MAP:URI="init.mp4"',
        '#EXTINF:1.0,',
        'seg1.m4s',
        '#EXTINF:1.0,',
        `${upstream.url}/abs/seg2.m4s`,
        '#EXTINF:1.0,',
        'seg3.m4s?x=1',
        '#EXT-X-ENDLIST',
        '',
      ].join('\n'),
    )
    for (const path of ['/q/v/init.mp4', '/q/v/seg1.m4s', '/abs/seg2.m4s', '/q/v/seg3.m4s']) serve(path, 'media')
    const r = await vcdn([
      'loadtest',
      '--players',
      '1',
      '--duration',
      '30',
      '--speed',
      '100',
      '--quiet',
      '--json',
      '-',
      `${upstream.url}/q/master.m3u8?token=a~b%3Dc`,
    ])
    t.equal(r.code, 0, r.stderr)
    t.same(seen, [
      '/q/master.m3u8?token=a~b%3Dc',
      '/q/v/index.m3u8?token=a~b%3Dc',
      '/q/v/init.mp4?token=a~b%3Dc',
      '/q/v/seg1.m4s?token=a~b%3Dc',
      '/abs/seg2.m4s',
      '/q/v/seg3.m4s?x=1',
    ])
    const s = summaryOf(r)
    t.equal(s.players!.finished, 1, 'without --loop the player stops at the end of the playlist')
    t.ok(r.ms < 20_000, 'and the run ends with it, before --duration')
    t.same(s.xCache, { NONE: 6 }, 'no X-Cache header is counted as NONE')
  },
)

t.test('Ctrl-C ends a run early with its summary; the progress line comes once a second', async (t) => {
  const upstream = new ScriptedOrigin()
  await upstream.listen()
  t.teardown(() => upstream.close())
  upstream.static('/c/master.m3u8', Buffer.from('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nindex.m3u8\n'))
  upstream.static(
    '/c/index.m3u8',
    Buffer.from('#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg1.m4s\n#EXT-X-ENDLIST\n'),
  )
  upstream.static('/c/seg1.m4s', Buffer.alloc(1000))
  const t0 = Date.now()
  const child = spawn(
    process.execPath,
    [
      VCDN_BIN,
      'loadtest',
      '--players',
      '2',
      '--duration',
      '300',
      '--speed',
      '10',
      '--loop',
      `${upstream.url}/c/master.m3u8`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await waitFor(() => /players 2\/2 +req \d+/.test(stderr), { timeoutMs: 20_000, what: 'a progress line' })
  t.match(
    stderr,
    /^ +\d+\/300 s {2}players 2\/2 {2}req \d+ \(\d+\/s\) {2}.* {2}err 0 {2}HIT 0\.0 % {2}TTFB p50 [\d.]+ ms\n/m,
    'one line each, when stderr is not a terminal',
  )
  child.kill('SIGINT')
  const code = await exited
  t.equal(code, 0, stderr)
  t.ok(Date.now() - t0 < 60_000, 'ended long before --duration')
  t.match(stdout, /^vcdn loadtest \(players\)\n {2}target +http:/, 'the summary table on stdout')
  t.match(stdout, /players +2 started/)
})

t.test(
  'ABR starts at a middle rung, climbs one rung after sustained throughput, drops below the current one',
  async (t) => {
    t.equal(startLevel(1), 0)
    t.equal(startLevel(3), 1)
    t.equal(startLevel(4), 1)
    t.equal(startLevel(6), 2)
    const rungs = [100, 200, 400, 800]
    const speed = 2
    const table: [string, { level: number; streak: number }, number, { level: number; streak: number }][] = [
      ['above 1.5x the next rung once: not yet', { level: 1, streak: 0 }, 1.6 * 400 * speed, { level: 1, streak: 1 }],
      ['above it again: up one rung', { level: 1, streak: UP_STREAK - 1 }, 1.6 * 400 * speed, { level: 2, streak: 0 }],
      ['far above: still one rung at a time', { level: 0, streak: UP_STREAK - 1 }, 1e9, { level: 1, streak: 0 }],
      [
        'between current and 1.5x next: stay, streak reset',
        { level: 1, streak: 1 },
        1.2 * 400 * speed,
        { level: 1, streak: 0 },
      ],
      ['below the current rung: down', { level: 2, streak: 1 }, 300 * speed, { level: 1, streak: 0 }],
      ['far below: down to the rung that fits', { level: 3, streak: 0 }, 150 * speed, { level: 0, streak: 0 }],
      ['the lowest rung stays', { level: 0, streak: 0 }, 1, { level: 0, streak: 0 }],
      ['the top rung stays', { level: 3, streak: 1 }, 1e9, { level: 3, streak: 0 }],
    ]
    for (const [name, state, sample, want] of table) t.same(nextLevel(rungs, state, sample, speed), want, name)
  },
)

t.test('TTFB percentiles are within 1 % of the exact ones, at most the maximum, 0 when empty', async (t) => {
  const h = new Histogram()
  t.equal(h.percentileMs(99), 0)
  // 0.1 ms … 1000 ms, shuffled by a stride coprime with the count
  const n = 10_000
  for (let i = 0; i < n; i++) h.record((((i * 7919) % n) + 1) / 10)
  for (const p of [50, 95, 99]) {
    const exact = ((p / 100) * n) / 10
    const got = h.percentileMs(p)
    t.ok(got >= exact && got <= exact * 1.01, `p${p}: ${got} for ${exact}`)
  }
  t.equal(h.percentileMs(100), 1000)
  t.equal(h.maxMs, 1000)
  t.equal(h.count, n)
})

t.test('bad arguments exit 2 with the loadtest usage', async (t) => {
  for (const [args, reason] of [
    [['--duration', '5', 'http://127.0.0.1:9/m.m3u8'], /one of --players N or --rps N/],
    [['--players', '2', '--rps', '5', '--duration', '5', 'http://127.0.0.1:9/m.m3u8'], /one of --players N or --rps N/],
    [['--players', '0', '--duration', '5', 'http://127.0.0.1:9/m.m3u8'], /--players must be an integer from 1/],
    [['--players', '2', 'http://127.0.0.1:9/m.m3u8'], /--duration must be/],
    [['--players', '2', '--duration', '5'], /exactly one URL/],
    [['--players', '2', '--duration', '5', '--bogus', '1', 'http://127.0.0.1:9/m.m3u8'], /unknown option --bogus/],
  ] as const) {
    const r = await vcdn(['loadtest', ...args])
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, reason)
    t.match(r.stderr, /usage: vcdn loadtest/)
  }
  const help = await vcdn(['loadtest', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /^usage: vcdn loadtest/)
})
