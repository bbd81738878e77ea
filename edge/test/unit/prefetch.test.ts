import t from 'tap'
import type { PrefetchResult, ServeResult } from '../../../shared/cache/index.js'
import { createLogger } from '../../../shared/log/index.js'
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
  p.served(seg(2), { outcome: 'MISS', status: 502, bytes: 0, upstreamMs: null })
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
