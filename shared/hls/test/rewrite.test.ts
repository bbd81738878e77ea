import HLS from 'hls-parser'
import t from 'tap'
import { PlaylistRewriteError, rewriteDashManifest, rewriteHlsPlaylist, withQueryParam } from '../index.js'

// Opaque tokens from other signers use `~`, `=` and `%`; they must come out byte for byte.
const TOKEN = 'token=exp=1767225600~acl=%2Fv%2Fabc%2F*~hmac=3f9a%3D'
const HOST = 'edge.example:8443'

const MASTER = [
  '#EXTM3U',
  '#EXT-X-VERSION:7',
  '#EXT-X-INDEPENDENT-SEGMENTS',
  '#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="keys/session.key",KEYFORMAT="identity"',
  '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English, main",DEFAULT=YES,AUTOSELECT=YES,URI="audio/playlist.m3u8"',
  '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="en",URI="https://other.example/subs/en.m3u8"',
  '#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aud",SUBTITLES="subs"',
  '720p/playlist.m3u8',
  '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,AUDIO="aud",SUBTITLES="subs"',
  'https://edge.example:8443/v/abc/360p/playlist.m3u8?lang=en',
  '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,CODECS="avc1.64001f",URI="720p/iframes.m3u8"',
  '',
].join('\n')

const MEDIA = [
  '#EXTM3U',
  '#EXT-X-VERSION:7',
  '#EXT-X-TARGETDURATION:4',
  '#EXT-X-MEDIA-SEQUENCE:1',
  '#EXT-X-PLAYLIST-TYPE:VOD',
  '#EXT-X-KEY:METHOD=AES-128,URI="../keys/k1.key",IV=0x00000000000000000000000000000001',
  '#EXT-X-MAP:URI="init.mp4"',
  '# a comment with URI="not-a-uri" stays',
  '#EXTINF:4.000000,',
  'seg_00001.m4s',
  '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://key-server/abc",KEYFORMAT="com.apple.streamingkeydelivery"',
  '#EXTINF:4.000000,',
  '/v/abc/720p/seg_00002.m4s#t=0',
  '#EXTINF:1.500000,',
  '//cdn.other.example/v/abc/720p/seg_00003.m4s',
  '#EXT-X-ENDLIST',
  '',
].join('\n')

/** Every URI hls-parser finds in a playlist, by where it found it. */
function urisOf(text: string): string[] {
  const p = HLS.parse(text)
  const out: string[] = []
  if (p.isMasterPlaylist) {
    for (const v of p.variants) {
      out.push(v.uri)
      for (const r of [...v.audio, ...v.video, ...v.subtitles]) if (r.uri !== undefined) out.push(r.uri)
    }
    for (const k of p.sessionKeyList) if (k.uri !== undefined) out.push(k.uri)
  } else {
    for (const s of p.segments) {
      out.push(s.uri)
      if (s.map) out.push(s.map.uri)
      if (s.key?.uri !== undefined) out.push(s.key.uri)
    }
  }
  return [...new Set(out)]
}

t.test('a multivariant playlist gets the token on variant, EXT-X-MEDIA, I-frame and session-key URIs', async (t) => {
  const out = rewriteHlsPlaylist(MASTER, TOKEN, HOST)
  const uris = urisOf(out)
  t.ok(uris.includes(`720p/playlist.m3u8?${TOKEN}`), 'variant')
  t.ok(uris.includes(`audio/playlist.m3u8?${TOKEN}`), 'EXT-X-MEDIA')
  t.ok(uris.includes(`720p/iframes.m3u8?${TOKEN}`), 'EXT-X-I-FRAME-STREAM-INF')
  t.ok(uris.includes(`keys/session.key?${TOKEN}`), 'EXT-X-SESSION-KEY')
  t.ok(uris.includes(`https://edge.example:8443/v/abc/360p/playlist.m3u8?lang=en&${TOKEN}`), 'absolute, this host')
  t.ok(uris.includes('https://other.example/subs/en.m3u8'), 'another host is left alone')
  t.match(out, 'NAME="English, main"', 'a quoted comma does not split attributes')
  t.equal(out.split('\n').length, MASTER.split('\n').length, 'no line added or removed')
})

t.test('a media playlist gets the token on segment, EXT-X-MAP and key URIs of this host only', async (t) => {
  const out = rewriteHlsPlaylist(MEDIA, TOKEN, HOST)
  t.same(
    urisOf(out).sort(),
    [
      `../keys/k1.key?${TOKEN}`,
      `/v/abc/720p/seg_00002.m4s?${TOKEN}#t=0`,
      '//cdn.other.example/v/abc/720p/seg_00003.m4s',
      `init.mp4?${TOKEN}`,
      `seg_00001.m4s?${TOKEN}`,
      'skd://key-server/abc',
    ].sort(),
  )
  t.match(out, '# a comment with URI="not-a-uri" stays\n', 'comments are not tags')
  t.match(out, '#EXTINF:4.000000,\n', 'other tags byte for byte')
  const unchanged = (s: string): string => s.replace(/\?token=[^"\n#]*|&token=[^"\n#]*/g, '')
  t.equal(unchanged(out), MEDIA, 'only the appended parameters differ')
})

t.test('the token survives byte for byte, ~ = and % included', async (t) => {
  const out = rewriteHlsPlaylist(MEDIA, TOKEN, HOST)
  t.equal(out.split(TOKEN).length - 1, 4, 'four URIs of this host, each with the exact token')
})

t.test('CRLF line endings are kept', async (t) => {
  const crlf = MEDIA.replace(/\n/g, '\r\n')
  const out = rewriteHlsPlaylist(crlf, 'token=a.b', null)
  t.match(out, 'seg_00001.m4s?token=a.b\r\n')
  t.match(out, '#EXT-X-MAP:URI="init.mp4?token=a.b"\r\n')
})

t.test('without a known host, absolute URIs are left alone and relative ones rewritten', async (t) => {
  const out = rewriteHlsPlaylist(MASTER, 'token=x.y', null)
  t.match(out, '\nhttps://edge.example:8443/v/abc/360p/playlist.m3u8?lang=en\n')
  t.match(out, '\n720p/playlist.m3u8?token=x.y\n')
})

t.test('a body that is not a playlist is refused, and so is a parameter that cannot be appended', async (t) => {
  t.throws(() => rewriteHlsPlaylist('<html></html>', 'token=a', null), PlaylistRewriteError)
  t.throws(() => rewriteHlsPlaylist('\uFEFF#EXTM3U\nseg.m4s\n', 'token=a', null), PlaylistRewriteError)
  for (const bad of ['', 'token=a&b=c', 'token=a"b', 'token=a#b', 'token=$Number$', 'token=a b', "token='"]) {
    t.throws(() => rewriteHlsPlaylist(MEDIA, bad, null), TypeError, JSON.stringify(bad))
  }
})

t.test('withQueryParam joins an existing query and keeps a fragment', async (t) => {
  t.equal(withQueryParam('a.m4s', 'token=t', null), 'a.m4s?token=t')
  t.equal(withQueryParam('a.m4s?', 'token=t', null), 'a.m4s?token=t')
  t.equal(withQueryParam('a.m4s?x=1', 'token=t', null), 'a.m4s?x=1&token=t')
  t.equal(withQueryParam('a.m4s#f', 'token=t', null), 'a.m4s?token=t#f')
  t.equal(withQueryParam('HTTP://EDGE.example:8443/a', 'token=t', HOST), 'HTTP://EDGE.example:8443/a?token=t')
  t.equal(withQueryParam('http://edge.example/a', 'token=t', HOST), 'http://edge.example/a', 'another port')
  t.equal(withQueryParam('data:text/plain,x', 'token=t', HOST), 'data:text/plain,x')
})

const MPD = `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT9.5S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <BaseURL>https://other.example/cdn/</BaseURL>
  <Period id="0">
    <BaseURL> ./ </BaseURL>
    <AdaptationSet mimeType="video/mp4" segmentAlignment="true">
      <Representation id="720p" bandwidth="2000000" codecs="avc1.64001f" width="1280" height="720">
        <SegmentTemplate timescale="90000" initialization="$RepresentationID$/init.mp4" media='$RepresentationID$/seg_$Number%05d$.m4s?v=2&amp;q=1' startNumber="1">
          <SegmentTimeline><S t="0" d="360000" r="1"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
      <Representation id="360p" bandwidth="800000">
        <SegmentList><Initialization sourceURL="360p/init.mp4"/><SegmentURL media="360p/seg_00001.m4s"/></SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
`

t.test('a DASH MPD gets the token on BaseURL and the segment templates, byte for byte elsewhere', async (t) => {
  const out = rewriteDashManifest(MPD, TOKEN, HOST)
  t.match(out, '<BaseURL>https://other.example/cdn/</BaseURL>', 'another host is left alone')
  t.match(out, `<BaseURL> ./?${TOKEN} </BaseURL>`)
  t.match(out, `initialization="$RepresentationID$/init.mp4?${TOKEN}"`)
  t.match(out, `media='$RepresentationID$/seg_$Number%05d$.m4s?v=2&amp;q=1&amp;${TOKEN}'`, 'joined with &amp; in XML')
  t.match(out, `<Initialization sourceURL="360p/init.mp4?${TOKEN}"/>`)
  t.match(out, `<SegmentURL media="360p/seg_00001.m4s?${TOKEN}"/>`)
  t.match(out, 'timescale="90000"', 'other attributes kept')
  t.equal(out.replace(/(\?|&amp;)token=exp=1767225600~acl=%2Fv%2Fabc%2F\*~hmac=3f9a%3D/g, ''), MPD)
})

t.test('a body that is not an MPD is refused', async (t) => {
  t.throws(() => rewriteDashManifest('#EXTM3U\n', 'token=a', null), PlaylistRewriteError)
})
