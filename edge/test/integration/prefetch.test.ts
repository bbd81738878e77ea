// Prefetch at a real edge (docs/architecture.md §6): edge → shield → a scripted origin on
// 127.0.0.1 that counts what it is asked. A simulated player walks master → media playlist →
// init → segments in order; the edge learns the media playlist it served and fills the next
// `prefetch.segments` of the rendition, never past the playlist's end, never while the upstream
// fails; a CMCD `nor` names one object to prefetch, within the token's scope only.
import t from 'tap'
import { metric, ScriptedOrigin, waitFor } from '../../../shared/testing/index.js'
import { randomBytes, topology } from './topology.js'

const K = 2
const PLAYLIST_HEADERS = { 'content-type': 'application/vnd.apple.mpegurl', 'cache-control': 'max-age=60' }
const SEGMENT_HEADERS = { 'content-type': 'video/iso.segment', 'cache-control': 'public, max-age=31536000, immutable' }

const segName = (i: number): string => `seg_${String(i).padStart(5, '0')}.m4s`

function mediaPlaylist(n: number): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:1']
  lines.push('#EXT-X-PLAYLIST-TYPE:VOD', '#EXT-X-INDEPENDENT-SEGMENTS', '#EXT-X-MAP:URI="init.mp4"')
  for (let i = 1; i <= n; i++) lines.push('#EXTINF:2.000,', segName(i))
  lines.push('#EXT-X-ENDLIST', '')
  return lines.join('\n')
}

/**
 * A video at the scripted origin: a master, one media playlist listing `listed` segments, and
 * `stored` segments (more than listed, so only the playlist keeps the edge from going further).
 */
function addVideo(origin: ScriptedOrigin, id: string, listed: number, stored: number): void {
  const master = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64001f"\n720p/index.m3u8\n'
  origin.static(`/v/${id}/master.m3u8`, Buffer.from(master), PLAYLIST_HEADERS)
  origin.static(`/v/${id}/720p/index.m3u8`, Buffer.from(mediaPlaylist(listed)), PLAYLIST_HEADERS)
  origin.static(`/v/${id}/720p/init.mp4`, randomBytes(800, 99), { ...SEGMENT_HEADERS, 'content-type': 'video/mp4' })
  for (let i = 1; i <= stored; i++) {
    origin.static(`/v/${id}/720p/${segName(i)}`, randomBytes(20_000 + i, i), SEGMENT_HEADERS)
  }
}

interface AccessLine {
  access: true
  key: string
  cmcd?: Record<string, unknown>
}

t.test('prefetch at a real edge', async (t) => {
  const origin = new ScriptedOrigin()
  await origin.listen()
  t.teardown(() => origin.close())
  const topo = await topology({
    shields: 1,
    originUrl: origin.url,
    edge: { accessLog: true, prefetch: { segments: K, concurrency: 4, failureBackoffMs: 600_000 } },
  })
  t.teardown(() => topo.close())
  const edge = topo.edge
  const edgeMetric = (name: string): Promise<number> => metric(edge.adminUrl, `vcdn_edge_${name}`)
  /** The prefetcher's counts on /metrics (beside the engine's prefetch_issued/used/wasted_total). */
  const prefetcherCounts = async (): Promise<
    Record<'filled' | 'failed' | 'playlists' | 'hints' | 'dropped', number>
  > => ({
    filled: await edgeMetric('prefetch_results_total{result="filled"}'),
    failed: await edgeMetric('prefetch_results_total{result="failed"}'),
    playlists: await edgeMetric('prefetch_playlists_total'),
    hints: await edgeMetric('prefetch_hints_total'),
    dropped: await edgeMetric('prefetch_dropped_total'),
  })
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const r = await fetch(edge.url + topo.sign(path), { headers })
    const body = Buffer.from(await r.arrayBuffer())
    return { status: r.status, cache: r.headers.get('x-cache'), body }
  }

  t.test(
    'a player playing in order sees only edge HITs after its first segment, never more than K ahead',
    async (t) => {
      const N = 6
      addVideo(origin, 'pf', N, N + 3)
      const dir = '/v/pf/720p/'
      const objectsAtStart = await edgeMetric('cache_objects')
      const countsBefore = await prefetcherCounts()
      t.equal((await get('/v/pf/master.m3u8')).status, 200)
      t.equal((await get(`${dir}index.m3u8`)).status, 200)
      t.equal((await get(`${dir}init.mp4`)).status, 200)
      // A client can have the last byte a moment before the fill is committed: count the commits.
      const objectsBefore = objectsAtStart + 3
      await waitFor(async () => (await edgeMetric('cache_objects')) >= objectsBefore, { what: 'the playlists stored' })
      const issuedBefore = await edgeMetric('prefetch_issued_total')
      const usedBefore = await edgeMetric('prefetch_used_total')
      const wastedBefore = await edgeMetric('prefetch_wasted_total')
      const outcomes: (string | null)[] = []
      for (let n = 1; n <= N; n++) {
        const r = await get(dir + segName(n))
        t.equal(r.status, 200)
        t.equal(r.body.length, 20_000 + n, `segment ${n}'s bytes`)
        outcomes.push(r.cache)
        // The player's buffer: the next request comes once the edge has stored what it prefetched.
        // Waiting on the stored count (not on time) keeps this exact on a slow machine.
        const want = objectsBefore + Math.min(n + K, N)
        await waitFor(async () => (await edgeMetric('cache_objects')) >= want, {
          timeoutMs: 30_000,
          what: `the edge to store segments up to ${Math.min(n + K, N)}`,
        })
        t.equal(origin.count(dir + segName(n + K + 1)), 0, `nothing more than ${K} ahead of segment ${n}`)
      }
      t.same(outcomes, ['MISS', ...Array<string>(N - 1).fill('HIT')], 'HITs after the first segment')
      for (let n = 1; n <= N; n++) t.equal(origin.count(dir + segName(n)), 1, `the origin saw segment ${n} once`)
      t.equal(origin.count(dir + segName(N + 1)), 0, 'nothing past the end of the playlist')
      t.equal((await edgeMetric('prefetch_issued_total')) - issuedBefore, N - 1, 'prefetches issued: segments 2..N')
      t.equal((await edgeMetric('prefetch_used_total')) - usedBefore, N - 1, 'every prefetched segment was used')
      t.equal((await edgeMetric('prefetch_wasted_total')) - wastedBefore, 0, 'no prefetched segment was wasted')
      // The prefetcher's own counts: a result is counted once its fill has settled, a moment after
      // the object is stored.
      const filled = await waitFor(
        async () => {
          const c = await prefetcherCounts()
          return c.filled - countsBefore.filled >= N - 1 ? c : null
        },
        { timeoutMs: 30_000, what: 'the prefetcher to count its fills' },
      )
      t.equal(filled.filled - countsBefore.filled, N - 1, 'prefetch_results_total{result="filled"}: segments 2..N')
      t.equal(filled.failed - countsBefore.failed, 0, 'none failed')
      t.equal(filled.playlists - countsBefore.playlists, 1, 'prefetch_playlists_total: the media playlist')
      t.equal(filled.dropped - countsBefore.dropped, 0, 'none dropped')
      t.equal(filled.hints - countsBefore.hints, 0, 'no CMCD hints')
    },
  )

  t.test('a CMCD nor outside the token is never prefetched', async (t) => {
    addVideo(origin, 'cs', 4, 4)
    origin.static('/v/other/720p/seg_00001.m4s', randomBytes(100, 5), SEGMENT_HEADERS)
    const dir = '/v/cs/720p/'
    // The previous test's prefetches are all stored: nothing is queued or running now.
    const issued = await edgeMetric('prefetch_issued_total')
    // Another video (outside the token's scope), and paths that leave the token directory; carried
    // by the playlist's last segment, which has no successor to prefetch.
    const nors = ['../../other/720p/seg_00001.m4s', '/v/other/720p/seg_00001.m4s', `/v/cs/720p/${segName(2)}`]
    for (const nor of nors) {
      const h = await get(dir + segName(4), { 'cmcd-request': `nor="${encodeURIComponent(nor)}"` })
      t.equal(h.status, 200, `the request carrying nor=${nor} is served`)
    }
    // A prefetch is issued in the event-loop turn after its request; this scrape comes later.
    t.equal(await edgeMetric('prefetch_issued_total'), issued, 'no prefetch outside the token')
    t.equal(origin.count('/v/other/720p/seg_00001.m4s'), 0, 'the other video was not fetched')
    t.equal(origin.count(dir + segName(2)), 0, 'a path without the token was not fetched')
  })

  t.test('a CMCD nor for a segment out of order is prefetched and the access line has CMCD', async (t) => {
    addVideo(origin, 'cm', 12, 12)
    const dir = '/v/cm/720p/'
    const hintsBefore = await edgeMetric('prefetch_hints_total')
    t.equal((await get(`${dir}index.m3u8`)).status, 200)

    // In a header, as dash.js and hls.js with useHeaders send it; beyond the playlist window.
    const r = await get(dir + segName(1), {
      'cmcd-request': `bl=2100,nor="${segName(8)}"`,
      'cmcd-session': 'sid="viewer-session-1",cid="cm"',
      'cmcd-object': 'br=800,ot=v',
    })
    t.equal(r.status, 200)
    await waitFor(() => origin.count(dir + segName(8)) === 1, { timeoutMs: 30_000, what: 'the nor prefetch' })
    const hit = await waitFor(
      async () => {
        const h = await get(dir + segName(8))
        return h.cache === 'HIT' ? h : null
      },
      { timeoutMs: 30_000, what: 'a HIT for the nor segment' },
    )
    t.equal(hit.body.length, 20_008)
    t.equal(origin.count(dir + segName(8)), 1, 'the origin saw the nor segment once')

    // In the CMCD= query, URL-encoded as CTA-5004 asks, as hls.js sends it by default.
    const q = `?CMCD=${encodeURIComponent(`nor="${encodeURIComponent(`../720p/${segName(11)}`)}",sid="s2"`)}`
    const r2 = await fetch(edge.url + topo.sign(dir + segName(2)) + q)
    t.equal(r2.status, 200)
    await r2.arrayBuffer()
    await waitFor(() => origin.count(dir + segName(11)) === 1, { timeoutMs: 30_000, what: 'the query nor prefetch' })
    t.equal((await edgeMetric('prefetch_hints_total')) - hintsBefore, 2, 'prefetch_hints_total: both nor hints')

    // The access line carries the CMCD fields a CDN uses.
    const line = await waitFor(
      () =>
        edge
          .output()
          .split('\n')
          .filter((l) => l.includes('"access":true') && l.includes('viewer-session-1'))
          .map((l) => JSON.parse(l) as AccessLine)[0],
      { what: 'the access line with CMCD' },
    )
    t.same(line.cmcd, { bl: 2100, sid: 'viewer-session-1', cid: 'cm', br: 800, ot: 'v' })
  })

  t.test('prefetch stops while the upstream fails', async (t) => {
    addVideo(origin, 'ff', 8, 8)
    const dir = '/v/ff/720p/'
    for (const n of [2, 3]) {
      origin.routes.set(dir + segName(n), (_req, res) => {
        res.writeHead(503, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('down')
      })
    }
    t.equal((await get(`${dir}index.m3u8`)).status, 200)
    t.equal((await get(dir + segName(1))).status, 200)
    // Segment 1 triggers 2 and 3; they fail at the origin, and the edge says it backs off.
    await waitFor(() => edge.output().includes('prefetch paused'), { timeoutMs: 30_000, what: 'the backoff' }).catch(
      async (err: unknown) => {
        // Seen once in 20 whole runs, unexplained: say what the prefetcher and the origin saw.
        const paths = ['index.m3u8', segName(1), segName(2), segName(3)]
        const seen = paths.map((p) => `${p}: ${origin.count(dir + p)}`).join(', ')
        t.comment(`origin requests: ${seen}; prefetcher: ${JSON.stringify(await prefetcherCounts())}`)
        t.comment(`edge output:\n${edge.output().split('\n').slice(-30).join('\n')}`)
        throw err
      },
    )
    t.ok(origin.count(dir + segName(2)) >= 1, 'segment 2 was tried')
    t.ok((await edgeMetric('prefetch_results_total{result="failed"}')) >= 1, 'prefetch_results_total{result="failed"}')
    const issued = await edgeMetric('prefetch_issued_total')
    const dropped = await edgeMetric('prefetch_dropped_total')
    const r = await get(dir + segName(4))
    t.equal(r.status, 200, 'the player is still served')
    t.equal(r.cache, 'MISS')
    t.equal(await edgeMetric('prefetch_issued_total'), issued, 'nothing issued while backing off')
    t.equal(origin.count(dir + segName(5)), 0, 'segment 5 not prefetched')
    t.equal(origin.count(dir + segName(6)), 0, 'segment 6 not prefetched')
    // Segment 4's successors were dropped, not queued: the tier reports a request after answering it.
    await waitFor(async () => (await edgeMetric('prefetch_dropped_total')) - dropped >= 2, {
      what: 'the successors of segment 4 dropped',
    })
    t.equal((await edgeMetric('prefetch_dropped_total')) - dropped, 2, 'prefetch_dropped_total: segments 5 and 6')
  })
})

t.test('prefetch into the shield: the HRW-chosen shield fills the next segments, the edge keeps none', async (t) => {
  const origin = new ScriptedOrigin()
  await origin.listen()
  t.teardown(() => origin.close())
  const topo = await topology({
    shields: 2,
    originUrl: origin.url,
    edge: { prefetch: { segments: K, concurrency: 4, failureBackoffMs: 600_000, mode: 'shield' } },
  })
  t.teardown(() => topo.close())
  const edgeMetric = (name: string): Promise<number> => metric(topo.edge.adminUrl, `vcdn_edge_${name}`)
  const shieldsMetric = async (name: string): Promise<number> => {
    let n = 0
    for (const s of topo.shields) n += await metric(s.adminUrl, `vcdn_shield_${name}`)
    return n
  }
  const get = async (path: string) => {
    const r = await fetch(topo.edge.url + topo.sign(path))
    const body = Buffer.from(await r.arrayBuffer())
    return { status: r.status, cache: r.headers.get('x-cache'), body }
  }
  addVideo(origin, 'sh', 6, 6)
  const dir = '/v/sh/720p/'
  t.equal((await get(`${dir}index.m3u8`)).status, 200)
  await waitFor(async () => (await edgeMetric('cache_objects')) >= 1, { what: 'the playlist stored' })
  t.equal((await get(dir + segName(1))).status, 200)
  // Segments 2 and 3 reach the origin through a shield, asked by the edge's HEAD.
  for (const n of [2, 3]) {
    await waitFor(() => origin.count(dir + segName(n)) === 1, { timeoutMs: 30_000, what: `segment ${n} at a shield` })
  }
  await waitFor(async () => (await shieldsMetric('cache_objects')) >= 4, {
    timeoutMs: 30_000,
    what: 'the shields to store the playlist and segments 1..3',
  })
  const r = await get(dir + segName(2))
  t.equal(r.status, 200)
  t.equal(r.body.length, 20_002, "segment 2's bytes")
  t.equal(r.cache, 'MISS', 'the edge did not keep the prefetched segment')
  t.equal(origin.count(dir + segName(2)), 1, 'the shield answered it: the origin saw segment 2 once')
  t.equal(await edgeMetric('prefetch_issued_total'), 0, 'the edge filled nothing itself')
  await waitFor(() => origin.count(dir + segName(4)) === 1, {
    timeoutMs: 30_000,
    what: 'segment 2 to have a shield fetch segment 4',
  })
  t.equal(await edgeMetric('prefetch_issued_total'), 0, 'still nothing filled by the edge itself')
})
