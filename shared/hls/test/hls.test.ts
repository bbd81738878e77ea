import t from 'tap'
import {
  formatMasterPlaylist,
  formatMediaPlaylist,
  HlsParseError,
  mediaSegments,
  nextSegments,
  parseMaster,
  parseMedia,
} from '../index.js'

const media = formatMediaPlaylist({
  mapUri: 'init.mp4',
  segments: [
    { uri: 'seg_00001.m4s', durationS: 4 },
    { uri: 'seg_00002.m4s', durationS: 4.004 },
    { uri: 'seg_00003.m4s', durationS: 1.5015 },
  ],
})

t.test('formats a VOD CMAF media playlist with the tags RFC 8216 asks for', async (t) => {
  t.match(
    media,
    /^#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI="init.mp4"\n/,
  )
  t.match(media, /#EXTINF:4\.004000,\nseg_00002\.m4s\n/)
  t.match(media, /#EXT-X-ENDLIST\n$/)
})

t.test('parses a media playlist strictly into a small typed shape', async (t) => {
  const p = parseMedia(media)
  t.equal(p.version, 7)
  t.equal(p.targetDurationS, 4)
  t.equal(p.mediaSequence, 1)
  t.equal(p.playlistType, 'VOD')
  t.equal(p.isEndList, true)
  t.equal(p.isIndependentSegments, true)
  t.equal(p.mapUri, 'init.mp4')
  t.same(
    p.segments.map((s) => s.uri),
    ['seg_00001.m4s', 'seg_00002.m4s', 'seg_00003.m4s'],
  )
  t.ok(Math.abs(p.totalDurationS - 9.5055) < 1e-9)
})

t.test('gives the prefetcher segment URIs and the ones after a given segment', async (t) => {
  t.same(
    mediaSegments(media).map((s) => s.durationS),
    [4, 4.004, 1.5015],
  )
  const p = parseMedia(media)
  t.same(nextSegments(p, 'seg_00001.m4s', 2), ['seg_00002.m4s', 'seg_00003.m4s'])
  t.same(nextSegments(p, 'seg_00003.m4s', 2), [])
  t.same(nextSegments(p, 'nope.m4s', 2), [])
})

t.test('formats and parses a multivariant playlist with an audio group', async (t) => {
  const text = formatMasterPlaylist({
    variants: [
      {
        uri: '240p/index.m3u8',
        bandwidth: 500_000.2,
        averageBandwidth: 400_000,
        codecs: 'avc1.640015,mp4a.40.2',
        width: 426,
        height: 240,
        frameRate: 29.97,
        audioGroupId: 'aud',
      },
      {
        uri: '720p/index.m3u8',
        bandwidth: 3_300_000,
        averageBandwidth: 2_000_000,
        codecs: 'avc1.64001f,mp4a.40.2',
        width: 1280,
        height: 720,
        frameRate: 29.97,
        audioGroupId: 'aud',
      },
    ],
    audio: [{ groupId: 'aud', name: 'audio', uri: 'audio/index.m3u8', channels: 2 }],
  })
  t.match(
    text,
    /#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio\/index\.m3u8"/,
  )
  t.match(
    text,
    /BANDWIDTH=500001,AVERAGE-BANDWIDTH=400000,CODECS="avc1\.640015,mp4a\.40\.2",RESOLUTION=426x240,FRAME-RATE=29\.970,AUDIO="aud"/,
  )
  const m = parseMaster(text)
  t.equal(m.version, 7)
  t.equal(m.isIndependentSegments, true)
  t.same(
    m.variants.map((v) => [v.uri, v.bandwidth, v.resolution?.height, v.audioGroupId]),
    [
      ['240p/index.m3u8', 500001, 240, 'aud'],
      ['720p/index.m3u8', 3300000, 720, 'aud'],
    ],
  )
  t.same(m.audio, [{ groupId: 'aud', name: 'audio', uri: 'audio/index.m3u8', isDefault: true, isAutoselect: true }])
})

t.test('strict mode rejects what a lenient parser would only warn about', async (t) => {
  const table: [string, string][] = [
    ['not a playlist', 'hello'],
    ['EXTINF above the target duration', media.replace('#EXTINF:4.004000,', '#EXTINF:9.000000,')],
    ['a segment without EXTINF', media.replace('#EXTINF:4.004000,\n', '')],
  ]
  for (const [name, text] of table) t.throws(() => parseMedia(text), HlsParseError, name)
  t.throws(() => parseMaster(media), /expected a multivariant playlist/)
  t.throws(
    () =>
      parseMedia(
        formatMasterPlaylist({
          variants: [
            {
              uri: 'a/index.m3u8',
              bandwidth: 1,
              averageBandwidth: 1,
              codecs: 'avc1.640015',
              width: 2,
              height: 2,
              frameRate: 30,
            },
          ],
          audio: [],
        }),
      ),
    /expected a media playlist/,
  )
})

t.test('refuses to format unsafe or inconsistent input', async (t) => {
  t.throws(() => formatMediaPlaylist({ mapUri: 'init".mp4', segments: [{ uri: 's.m4s', durationS: 1 }] }), /mapUri/)
  t.throws(() => formatMediaPlaylist({ mapUri: 'init.mp4', segments: [] }), /segments/)
  t.throws(
    () => formatMediaPlaylist({ mapUri: 'init.mp4', segments: [{ uri: 's.m4s', durationS: 0 }] }),
    /segments\[0\]\.durationS/,
  )
  t.throws(
    () =>
      formatMasterPlaylist({
        variants: [
          {
            uri: 'a/index.m3u8',
            bandwidth: 1,
            averageBandwidth: 1,
            codecs: 'avc1',
            width: 2,
            height: 2,
            frameRate: 30,
            audioGroupId: 'x',
          },
        ],
        audio: [],
      }),
    /audioGroupId/,
  )
})
