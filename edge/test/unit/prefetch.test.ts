import t from 'tap'
import type { PrefetchResult, ServeResult } from '../../../shared/cache/index.js'
import { createLogger } from '../../../shared/log/index.js'
import { dashSegmentLists, isoDurationS } from '../../src/prefetch-dash.js'
import { Prefetcher, resolveKeyPath, type PrefetchEngine } from '../../src/prefetch.js'

const log = createLogger({ tier: 'edge', level: 'silent' })
const OK: ServeResult = { outcome: 'MISS', status: 200, bytes: 1, upstreamMs: 1 }
const HIT: ServeResult = { outcome: 'HIT', status: 200, bytes: 1, upstreamMs: null }

function mediaPlaylist(n: number, name = (i: number) => `seg_${String(i).padStart(5, '0')}.m4s`): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:1']
  lines.push('#EXT-X-PLAYLIST-TYPE:VOD', '#EXT-X-MAP:URI="init.mp4"')
  for (let i = 1; i <= n; i++) lines.push('#EXTINF:2.000,', name(i))
  lines.push('#EXT-X-ENDLIST', '')
  return lines.join('\n')
}
const seg = (i: number, dir = '/v/vid/720p/') => `${dir}seg_${String(i).padStart(5, '0')}.m4s`

/** An engine whose prefetches settle when the test says so; it records every key asked. */
class FakeEngine implements PrefetchEngine {
  readonly bodies = new Map<string, string>()
  readonly asked: string[] = []
  readonly #waiting = new Map<string, (r: PrefetchResult) => void>()
  inFlight = 0
  maxInFlight = 0
  peekBody(key: string): Promise<Buffer | null> {
    const b = this.bodies.get(key)
    return Promise.resolve(b === undefined ? null : Buffer.from(b))
  }
  prefetch(key: string): Promise<PrefetchResult> {
    this.asked.push(key)
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    return new Promise((resolve) =>
      this.#waiting.set(key, (r) => {
        this.inFlight--
        resolve(r)
      }),
    )
  }
  settle(key: string, result: PrefetchResult = 'filled'): void {
    const done = this.#waiting.get(key)
    if (done === undefined) throw new Error(`no prefetch of ${key} in flight`)
    this.#waiting.delete(key)
    done(result)
  }
  get waiting(): string[] {
    return [...this.#waiting.keys()]
  }
}

/** Let setImmediate callbacks and their promise chains run (bounded: the work is finite). */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

function setup(o: { segments?: number; concurrency?: number; failureBackoffMs?: number; n?: number } = {}) {
  const engine = new FakeEngine()
  let nowMs = 1_000_000
  const clock = {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms
    },
  }
  engine.bodies.set('/v/vid/720p/index.m3u8', mediaPlaylist(o.n ?? 10))
  const p = new Prefetcher({
    engine,
    segments: o.segments ?? 2,
    concurrency: o.concurrency ?? 8,
    failureBackoffMs: o.failureBackoffMs ?? 5000,
    paths: ['/v/'],
    log,
    now: clock.now,
  })
  return { engine, p, clock }
}

async function learn(p: Prefetcher, key = '/v/vid/720p/index.m3u8'): Promise<void> {
  const before = p.counters.playlists
  p.served(key, OK)
  for (let i = 0; i < 20 && p.counters.playlists === before; i++) await turns(1)
}

t.test('prefetches the next K segments of a rendition whose media playlist it served', async (t) => {
  const { engine, p } = setup({ segments: 2 })
  await learn(p)
  t.equal(p.counters.playlists, 1)
  p.served(seg(1), OK)
  t.same(engine.asked, [], 'nothing runs inside the request that triggered it')
  await turns()
  t.same(engine.asked, [seg(2), seg(3)])
  engine.settle(seg(2))
  engine.settle(seg(3), 'present')
  await turns()
  p.served(seg(2), HIT)
  p.served(seg(2), HIT)
  await turns()
  t.same(engine.asked, [seg(2), seg(3), seg(3), seg(4)], 'a key in flight is not asked twice')
  t.equal(p.counters.filled, 1)
  t.equal(p.counters.present, 1)
})

t.test('a segment served before its playlist was read is followed once the playlist is read', async (t) => {
  // The player's first segment can reach the edge before its playlist's fill has committed.
  const { engine, p } = setup({ segments: 2 })
  p.served(seg(1), OK)
  await turns()
  t.same(engine.asked, [], 'no rendition known yet')
  await learn(p)
  await turns()
  t.same(engine.asked, [seg(2), seg(3)], 'the successors of the early segment')

  // Only the latest early segment of a directory counts, and only while it is recent.
  const late = setup({ segments: 2 })
  late.p.served(seg(1), OK)
  late.p.served(seg(4), OK)
  late.clock.advance(9_000)
  await learn(late.p)
  await turns()
  t.same(late.engine.asked, [seg(5), seg(6)], 'the last segment served is the position')
  const stale = setup({ segments: 2 })
  stale.p.served(seg(1), OK)
  stale.clock.advance(10_000)
  await learn(stale.p)
  await turns()
  t.same(stale.engine.asked, [], 'a segment served 10 s before is not the position any more')
})

t.test('never prefetches past the end of the playlist', async (t) => {
  const { engine, p } = setup({ segments: 4, n: 5 })
  await learn(p)
  p.served(seg(3), OK)
  await turns()
  t.same(engine.asked, [seg(4), seg(5)])
  p.served(seg(5), OK)
  await turns()
  t.same(engine.asked, [seg(4), seg(5)], 'nothing after the last segment')
})

t.test('learns nothing from a multivariant playlist, a bad playlist or an unknown segment', async (t) => {
  const { engine, p } = setup()
  engine.bodies.set('/v/vid/master.m3u8', '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n720p/index.m3u8\n')
  engine.bodies.set('/v/vid/480p/index.m3u8', '#EXTM3U\n#EXTINF:oops\n')
  p.served('/v/vid/master.m3u8', OK)
  p.served('/v/vid/480p/index.m3u8', OK)
  p.served('/v/vid/360p/index.m3u8', OK) // not stored: no body
  await turns(10)
  t.equal(p.counters.playlists, 0)
  p.served(seg(1), OK)
  p.served('/v/vid/480p/seg_00001.m4s', OK)
  await turns()
  t.same(engine.asked, [])
})

t.test('errors are not followed, and segments=0 prefetches nothing from playlists', async (t) => {
  const { engine, p } = setup({ segments: 0 })
  await learn(p)
  p.served(seg(1), OK)
  p.served(seg(2), { status: 502 })
  await turns()
  t.same(engine.asked, [])
})

t.test('runs at most `concurrency` prefetches at once; the rest wait their turn', async (t) => {
  const { engine, p } = setup({ segments: 4, concurrency: 2, n: 20 })
  await learn(p)
  p.served(seg(1), OK)
  await turns()
  t.same(engine.waiting, [seg(2), seg(3)])
  t.equal(p.pending, 4)
  engine.settle(seg(2))
  await turns()
  t.same(engine.waiting, [seg(3), seg(4)])
  engine.settle(seg(3))
  engine.settle(seg(4))
  await turns()
  engine.settle(seg(5))
  await turns()
  t.equal(engine.maxInFlight, 2)
  t.equal(p.pending, 0)
  t.same(engine.asked, [seg(2), seg(3), seg(4), seg(5)])
})

t.test('after a failed prefetch nothing new is issued until the backoff has passed', async (t) => {
  const { engine, p, clock } = setup({ segments: 2, concurrency: 1, failureBackoffMs: 5000 })
  await learn(p)
  p.served(seg(1), OK)
  await turns()
  engine.settle(seg(2), 'failed')
  await turns()
  t.same(engine.asked, [seg(2)], 'the queued segment is dropped')
  t.equal(p.counters.failed, 1)
  p.served(seg(2), OK)
  p.hint(seg(7))
  await turns()
  t.same(engine.asked, [seg(2)], 'paused: neither playlist nor CMCD prefetch')
  t.ok(p.counters.dropped >= 3)
  clock.advance(5000)
  p.served(seg(2), OK)
  await turns()
  t.same(engine.asked, [seg(2), seg(3)], 'resumes after the backoff')
})

t.test('a CMCD hint goes ahead of the playlist guess, inside the served paths only', async (t) => {
  const { engine, p } = setup({ segments: 2, concurrency: 1 })
  await learn(p)
  p.served(seg(1), OK)
  p.hint(seg(9))
  p.hint('/_vcdn/hls.min.js')
  await turns()
  t.same(engine.asked, [seg(9)], 'the hint first')
  engine.settle(seg(9))
  await turns()
  engine.settle(seg(2))
  await turns()
  t.same(engine.asked, [seg(9), seg(2), seg(3)])
  t.equal(p.counters.hints, 1)
})

t.test('stops issuing once closed', async (t) => {
  const { engine, p } = setup({ segments: 2 })
  await learn(p)
  p.served(seg(1), OK)
  p.close()
  p.served(seg(2), OK)
  p.hint(seg(5))
  await turns()
  t.same(engine.asked, [])
  t.equal(p.pending, 0)
})

t.test('playlist URIs resolve against the playlist; other hosts and queries are not prefetched', async (t) => {
  const base = '/v/vid/720p/index.m3u8'
  const cases: [string, string | null][] = [
    ['seg_00001.m4s', '/v/vid/720p/seg_00001.m4s'],
    ['../480p/seg_1.m4s', '/v/vid/480p/seg_1.m4s'],
    ['/v/other/seg.m4s', '/v/other/seg.m4s'],
    ['http://elsewhere.example/seg.m4s', null],
    ['//elsewhere.example/seg.m4s', null],
    ['seg.m4s?x=1', null],
    ['seg.m4s#f', null],
    ['seg%2f1.m4s', null],
    ['http://[bad', null],
  ]
  for (const [uri, want] of cases) t.equal(resolveKeyPath(uri, base), want, uri)
})

t.test('refuses options that make no sense', async (t) => {
  const base = { engine: new FakeEngine(), segments: 2, concurrency: 1, failureBackoffMs: 0, paths: ['/v/'], log }
  t.throws(() => new Prefetcher({ ...base, segments: -1 }), /prefetch\.segments/)
  t.throws(() => new Prefetcher({ ...base, concurrency: 0 }), /prefetch\.concurrency/)
  t.throws(() => new Prefetcher({ ...base, failureBackoffMs: NaN }), /prefetch\.failureBackoffMs/)
})

// The transcoder's MPD shape (SegmentTemplate per Representation, SegmentTimeline with repeats).
const MPD = `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT9.5S" minBufferTime="PT4S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <Representation id="360p" bandwidth="800000" codecs="avc1.64001e" width="640" height="360" sar="1:1">
        <SegmentTemplate timescale="15360" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/seg_$Number%05d$.m4s" startNumber="1">
          <SegmentTimeline><S t="0" d="30720" r="3"/><S t="122880" d="23040"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="und">
      <SegmentTemplate timescale="48000" duration="96000" media="a/$Number$-$Bandwidth$.m4s" startNumber="0"/>
      <Representation id="audio" bandwidth="128000" codecs="mp4a.40.2" audioSamplingRate="48000"/>
    </AdaptationSet>
  </Period>
</MPD>
`

t.test('reads DASH SegmentTemplate $Number$ lists from an MPD, and nothing it does not understand', async (t) => {
  const lists = dashSegmentLists(MPD)
  t.same(
    lists[0],
    [1, 2, 3, 4, 5].map((i) => `360p/seg_${String(i).padStart(5, '0')}.m4s`),
    'timeline: 1 + r per S',
  )
  t.same(lists[1], ['a/0-128000.m4s', 'a/1-128000.m4s', 'a/2-128000.m4s', 'a/3-128000.m4s', 'a/4-128000.m4s'])
  t.same(dashSegmentLists(MPD.replace('$Number%05d$', '$Time$')).length, 1, '$Time$ is not filled')
  t.same(dashSegmentLists(MPD.replace('r="3"', 'r="-1"')).length, 1, 'an open-ended repeat is not counted')
  t.same(dashSegmentLists(MPD.replace('<Period', '<BaseURL>http://x/</BaseURL><Period')), [], 'BaseURL: not read')
  t.same(dashSegmentLists(MPD.replace('PT9.5S', 'soon')).length, 1, 'no duration: no @duration list')
  t.same(dashSegmentLists('not xml at all <<<'), [])
  t.equal(isoDurationS('PT1H2M3.5S'), 3723.5)
  t.equal(isoDurationS('P1DT1S'), 86401)
  t.equal(isoDurationS('PT'), null)
  t.equal(isoDurationS('1S'), null)
})

t.test('prefetches the next segments of a DASH representation whose MPD it served', async (t) => {
  const { engine, p } = setup({ segments: 2 })
  engine.bodies.set('/v/vid/manifest.mpd', MPD)
  await learn(p, '/v/vid/manifest.mpd')
  t.equal(p.counters.playlists, 2, 'two representations')
  p.served('/v/vid/360p/seg_00004.m4s', OK)
  await turns()
  t.same(engine.asked, ['/v/vid/360p/seg_00005.m4s'], 'never past the timeline')
})
