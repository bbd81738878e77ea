// Query tokens at the edge (docs/architecture.md §3): `?token=` is checked like a path token, and
// playlists served under one carry it on every URI while the cached copy stays token-free.
import t, { type Test } from 'tap'
import { TIER_SECRET_HEADER } from '../../../shared/config/index.js'
import { waitFor } from '../../../shared/testing/index.js'
import { signToken } from '../../../shared/token/index.js'
import { KEYS, randomBytes, SECRET, topology, warm } from './topology.js'

interface ErrorBody {
  error: { code: string }
}

const MASTER = [
  '#EXTM3U',
  '#EXT-X-VERSION:7',
  '#EXT-X-INDEPENDENT-SEGMENTS',
  '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="main",DEFAULT=YES,AUTOSELECT=YES,URI="audio/playlist.m3u8"',
  '#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aud"',
  '720p/playlist.m3u8',
  '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,AUDIO="aud"',
  '360p/playlist.m3u8',
  '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,CODECS="avc1.64001f",URI="720p/iframes.m3u8"',
  '',
].join('\n')

const MEDIA = [
  '#EXTM3U',
  '#EXT-X-VERSION:7',
  '#EXT-X-TARGETDURATION:4',
  '#EXT-X-MEDIA-SEQUENCE:1',
  '#EXT-X-PLAYLIST-TYPE:VOD',
  '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"',
  '#EXT-X-MAP:URI="init.mp4"',
  '#EXTINF:4.000000,',
  'seg_00001.m4s',
  '#EXTINF:4.000000,',
  'seg_00002.m4s',
  '#EXTINF:2.000000,',
  'https://other.example/ad/seg_00001.m4s',
  '#EXT-X-ENDLIST',
  '',
].join('\n')

const MPD = `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT8S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="0">
    <BaseURL>./</BaseURL>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="720p" bandwidth="2000000" codecs="avc1.64001f" width="1280" height="720">
        <SegmentTemplate timescale="90000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/seg_$Number%05d$.m4s" startNumber="1">
          <SegmentTimeline><S t="0" d="360000" r="1"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
`

/** The URIs of an HLS playlist: URI lines and URI="…" attributes (RFC 8216 §4.1, §4.2). */
function hlsUris(text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (!line.startsWith('#')) out.push(line)
    else for (const m of line.matchAll(/URI="([^"]*)"/g)) out.push(m[1] as string)
  }
  return out
}

t.test('query tokens', async (t) => {
  const topo = await topology({ shields: 1, edge: { accessLog: true } })
  t.teardown(() => topo.close())
  const edge = topo.edge
  const shield = topo.shields[0]!
  await topo.store.put('v/qt/master.m3u8', Buffer.from(MASTER))
  await topo.store.put('v/qt/720p/playlist.m3u8', Buffer.from(MEDIA))
  await topo.store.put('v/qt/manifest.mpd', Buffer.from(MPD))
  await topo.store.put('v/qt/720p/seg_00001.m4s', randomBytes(5000, 7))
  const nowS = Math.floor(Date.now() / 1000)
  const token = signToken({ exp: nowS + 600, acl: '/v/qt/', kid: 'k1' }, KEYS)

  /** GET through the edge; the body, status and headers. */
  async function get(path: string, init: RequestInit = {}): Promise<{ r: Response; body: string }> {
    const r = await fetch(edge.url + path, init)
    return { r, body: await r.text() }
  }

  /** The stored copy as the shield has it (the edge's upstream, asked with the tier secret). */
  async function atShield(t: Test, path: string): Promise<string> {
    const r = await fetch(shield.url + path, { headers: { [TIER_SECRET_HEADER]: SECRET } })
    t.equal(r.status, 200, `the shield has ${path}`)
    return r.text()
  }

  async function expectRewritten(t: Test, path: string, original: string, uris: (s: string) => string[]) {
    const { r, body } = await get(`${path}?token=${token}`)
    t.equal(r.status, 200)
    t.equal(r.headers.get('content-length'), String(Buffer.byteLength(body)), 'Content-Length of the rewritten body')
    t.equal(r.headers.get('etag'), null, 'no validator of the token-free copy')
    t.ok(r.headers.get('cache-control'), 'cache headers kept')
    const found = uris(body)
    t.ok(found.length > 0)
    for (const uri of found) {
      if (uri.startsWith('https://other.example/'))
        t.notOk(uri.includes('token='), `another host is left alone: ${uri}`)
      else t.ok(uri.endsWith(`?token=${token}`), `carries the token: ${uri.slice(0, 40)}`)
    }
    t.equal(body.replaceAll(`?token=${token}`, ''), original, 'nothing else changed')
    // The cache holds the upstream's bytes: the shield's copy, and the edge's under a path token.
    t.equal(await atShield(t, path), original, 'the shield copy has no token')
    const signed = edge.url + topo.sign(path)
    await warm(signed)
    const viaPath = await fetch(signed)
    t.equal(await viaPath.text(), original, 'the edge copy (path token) has no token')
    t.equal(viaPath.headers.get('x-cache'), 'HIT', 'one cache entry for query and path tokens')
  }

  t.test('a master playlist under ?token= carries it on variant, EXT-X-MEDIA and I-frame URIs', async (t) => {
    await expectRewritten(t, '/v/qt/master.m3u8', MASTER, hlsUris)
  })

  t.test('a media playlist under ?token= carries it on segment, EXT-X-MAP and key URIs', async (t) => {
    await expectRewritten(t, '/v/qt/720p/playlist.m3u8', MEDIA, hlsUris)
  })

  t.test('a DASH MPD under ?token= carries it on BaseURL and the segment templates', async (t) => {
    const mpdUris = (s: string): string[] => [
      ...[...s.matchAll(/<BaseURL>([^<]*)<\/BaseURL>/g)].map((m) => m[1] as string),
      ...[...s.matchAll(/ (?:media|initialization)="([^"]*)"/g)].map((m) => m[1] as string),
    ]
    await expectRewritten(t, '/v/qt/manifest.mpd', MPD, mpdUris)
  })

  t.test(
    'HEAD reports the rewritten length; a conditional on the token-free copy gets the rewritten body',
    async (t) => {
      const path = `/v/qt/720p/playlist.m3u8?token=${token}`
      const { body } = await get(path)
      const head = await fetch(edge.url + path, { method: 'HEAD' })
      t.equal(head.status, 200)
      t.equal(head.headers.get('content-length'), String(Buffer.byteLength(body)))
      const plain = await fetch(edge.url + topo.sign('/v/qt/720p/playlist.m3u8'))
      await plain.arrayBuffer()
      const etag = plain.headers.get('etag')
      t.ok(etag, 'the token-free copy has a validator')
      const cond = await get(path, { headers: { 'if-none-match': etag as string, range: 'bytes=0-9' } })
      t.equal(cond.r.status, 200, 'not 304 nor 206: the representation differs')
      t.equal(cond.body, body)
    },
  )

  t.test('tokens survive byte for byte, percent-encoded characters included', async (t) => {
    // The client encodes the '.' and a letter: the edge verifies the decoded token and hands the
    // encoded form back unchanged.
    const raw = token.replace('.', '%2E').replace(/^e/, '%65')
    t.not(raw, token)
    const { r, body } = await get(`/v/qt/720p/playlist.m3u8?token=${raw}`)
    t.equal(r.status, 200)
    for (const uri of hlsUris(body).filter((u) => !u.startsWith('https://')))
      t.ok(uri.endsWith(`?token=${raw}`), uri.slice(0, 40))
  })

  t.test('a segment under ?token= is served as stored and is a HIT after the first', async (t) => {
    const url = `${edge.url}/v/qt/720p/seg_00001.m4s?token=${token}`
    const first = await fetch(url)
    t.equal(first.status, 200)
    t.same(Buffer.from(await first.arrayBuffer()), randomBytes(5000, 7), 'bytes unchanged')
    const hit = await warm(url)
    t.equal(hit.headers.get('content-length'), '5000')
    const viaPath = await fetch(edge.url + topo.sign('/v/qt/720p/seg_00001.m4s'))
    await viaPath.arrayBuffer()
    t.equal(viaPath.headers.get('x-cache'), 'HIT', 'one cache entry for query and path tokens')
  })

  t.test('refused query tokens get the codes path tokens get', async (t) => {
    const forged = signToken({ exp: nowS + 600, acl: '/v/qt/', kid: 'k1' }, { k1: 'not-the-real-key' })
    const expired = signToken({ exp: nowS - 10, acl: '/v/qt/', kid: 'k1' }, KEYS)
    const other = signToken({ exp: nowS + 600, acl: '/v/other/', kid: 'k1' }, KEYS)
    const cases: [string, string][] = [
      [forged, 'ERR_TOKEN_SIGNATURE'],
      [expired, 'ERR_TOKEN_EXPIRED'],
      [other, 'ERR_TOKEN_SCOPE'],
      ['a.b', 'ERR_TOKEN_MALFORMED'],
      ['%zz', 'ERR_TOKEN_MALFORMED'],
    ]
    for (const [tok, code] of cases) {
      for (const path of [`/v/qt/master.m3u8?token=${tok}`, `/t/${tok}/v/qt/master.m3u8`]) {
        const { r, body } = await get(path)
        t.equal(r.status, 403, `${code}: ${path.slice(0, 40)}`)
        t.equal((JSON.parse(body) as ErrorBody).error.code, code)
      }
    }
    const missing = await get('/v/qt/master.m3u8?other=1')
    t.equal(missing.r.status, 403)
    t.equal((JSON.parse(missing.body) as ErrorBody).error.code, 'ERR_TOKEN_MISSING')
  })

  t.test('a playlist too large or not a playlist is refused with a code', async (t) => {
    const big = `#EXTM3U\n${'#EXTINF:4.000000,\nseg_00001.m4s\n'.repeat(40_000)}`
    t.ok(big.length > 1024 * 1024)
    await topo.store.put('v/qt/big/playlist.m3u8', Buffer.from(big))
    await topo.store.put('v/qt/bad/playlist.m3u8', Buffer.from('<html>not a playlist</html>'))
    for (const [path, code] of [
      ['/v/qt/big/playlist.m3u8', 'ERR_PLAYLIST_TOO_LARGE'],
      ['/v/qt/bad/playlist.m3u8', 'ERR_PLAYLIST_INVALID'],
    ] as const) {
      const { r, body } = await get(`${path}?token=${token}`)
      t.equal(r.status, 502, code)
      t.equal((JSON.parse(body) as ErrorBody).error.code, code)
      const plain = await fetch(edge.url + topo.sign(path))
      t.equal(plain.status, 200, 'under a path token it is served as stored')
      await plain.arrayBuffer()
    }
  })

  t.test('access lines never carry the query token', async (t) => {
    await waitFor(() => edge.output().includes('"access":true'), { what: 'access lines' })
    t.notOk(edge.output().includes(token.split('.')[1] as string), 'no token signature in the logs')
  })
})
