import t from 'tap'
import { buildMpd, dashFrameRate, segmentTimeline } from '../src/dash.js'
import { bandwidthOf, type MeasuredRendition } from '../src/measure.js'
import { avcCodecString, aacCodecString } from '../src/codec-string.js'
import { buildMaster } from '../src/master.js'
import { parseMaster } from '../../shared/hls/index.js'
import { buildThumbnailVtt } from '../src/thumbs.js'
import { checkWellFormedXml } from './xml.js'

const rendition = (
  name: string,
  kind: 'video' | 'audio',
  bytes: number[],
  extra: Partial<MeasuredRendition> = {},
): MeasuredRendition => ({
  name,
  kind,
  dir: `/out/${name}`,
  initUri: 'init.mp4',
  initBytes: 800,
  timescale: 15360,
  codecs: kind === 'video' ? 'avc1.64001f' : 'mp4a.40.2',
  width: 1280,
  height: 720,
  sampleRate: 48000,
  channels: 2,
  segments: bytes.map((b, i) => ({
    uri: `seg_${String(i + 1).padStart(5, '0')}.m4s`,
    bytes: b,
    extinfS: 4,
    startTs: i * 61440,
    durationTs: 61440,
    startsWithKeyframe: true,
  })),
  ...extra,
})

t.test('bandwidth is the peak and the mean of measured segment bit rates', async (t) => {
  t.same(
    bandwidthOf(
      [
        { bytes: 1000, durationS: 4 },
        { bytes: 3000, durationS: 4 },
      ],
      4,
    ),
    { peak: 6000, average: 4000 },
  )
  // A 33 ms tail with one IDR frame is folded into the segment before it.
  t.same(
    bandwidthOf(
      [
        { bytes: 1000, durationS: 4 },
        { bytes: 1000, durationS: 4 },
        { bytes: 500, durationS: 0.033 },
      ],
      4,
    ).peak,
    Math.ceil((1500 * 8) / 4.033),
  )
  t.same(bandwidthOf([{ bytes: 100, durationS: 0.5 }], 4), { peak: 1600, average: 1600 })
})

t.test('reads avc1.PPCCLL from the avcC box and names AAC-LC', async (t) => {
  const init = Buffer.concat([
    Buffer.from('....stsd....avc1'),
    Buffer.from([0, 0, 0, 20]),
    Buffer.from('avcC'),
    Buffer.from([1, 0x64, 0x00, 0x1f, 0xff]),
  ])
  t.equal(avcCodecString(init), 'avc1.64001f')
  t.equal(avcCodecString(Buffer.from('no box here')), undefined)
  t.equal(aacCodecString('LC'), 'mp4a.40.2')
  t.equal(aacCodecString('HE-AAC'), 'mp4a.40.5')
})

t.test('the master adds the audio rate to every variant and sorts by bandwidth', async (t) => {
  const m = buildMaster({
    video: [
      rendition('720p', 'video', [2_000_000, 1_000_000]),
      rendition('240p', 'video', [100_000, 50_000], { width: 426, height: 240, codecs: 'avc1.640015' }),
    ],
    audio: rendition('audio', 'audio', [64_000, 64_000]),
    frameRate: 30,
  })
  t.same(
    m.renditions.map((r) => [r.name, r.bandwidth, r.averageBandwidth, r.codecs]),
    [
      ['240p', 200_000 + 128_000, 150_000 + 128_000, 'avc1.640015,mp4a.40.2'],
      ['720p', 4_000_000 + 128_000, 3_000_000 + 128_000, 'avc1.64001f,mp4a.40.2'],
    ],
  )
  const parsed = parseMaster(m.text)
  t.same(
    parsed.variants.map((v) => v.uri),
    ['240p/index.m3u8', '720p/index.m3u8'],
  )
  t.equal(parsed.audio[0]?.uri, 'audio/index.m3u8')
  t.match(m.text, /FRAME-RATE=30\.000,AUDIO="aud"/)
})

t.test('a video-only master has no audio group', async (t) => {
  const m = buildMaster({ video: [rendition('720p', 'video', [1000])], audio: null, frameRate: 25 })
  t.equal(m.audio, null)
  t.notMatch(m.text, /EXT-X-MEDIA|AUDIO=/)
  t.match(m.text, /CODECS="avc1\.64001f",/)
})

t.test('the DASH timeline collapses equal contiguous segments', async (t) => {
  t.equal(
    segmentTimeline([
      { startTs: 0, durationTs: 100 },
      { startTs: 100, durationTs: 100 },
      { startTs: 200, durationTs: 100 },
      { startTs: 300, durationTs: 40 },
    ]),
    '<S t="0" d="100" r="2"/><S t="300" d="40"/>',
  )
  t.equal(dashFrameRate(30), '30')
  t.equal(dashFrameRate(29.97002997), '30000/1001')
  t.equal(dashFrameRate(23.976), '24000/1001')
  t.equal(dashFrameRate(12.5), '12500/1000')
})

t.test('the MPD is well-formed, static, live-profile, with one video and one audio AdaptationSet', async (t) => {
  const mpd = buildMpd({
    durationS: 8,
    frameRate: 30,
    video: [
      { measured: rendition('720p', 'video', [1, 2]), bandwidth: 3_000_000 },
      { measured: rendition('240p', 'video', [1, 2], { width: 426, height: 240 }), bandwidth: 300_000 },
    ],
    audio: { measured: rendition('audio', 'audio', [1, 2], { timescale: 48000 }), bandwidth: 130_000 },
  })
  checkWellFormedXml(mpd)
  t.match(
    mpd,
    /<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT8\.000S"/,
  )
  t.equal(mpd.match(/<AdaptationSet /g)?.length, 2)
  t.same(
    [...mpd.matchAll(/<Representation id="([^"]+)"/g)].map((m) => m[1]),
    ['240p', '720p', 'audio'],
  )
  t.match(
    mpd,
    /initialization="\$RepresentationID\$\/init\.mp4" media="\$RepresentationID\$\/seg_\$Number%05d\$\.m4s" startNumber="1"/,
  )
  t.match(mpd, /<S t="0" d="61440" r="1"\/>/)
  t.match(mpd, /value="2"\/>/)
})

t.test('the thumbnail track points each cue at its tile', async (t) => {
  const vtt = buildThumbnailVtt({
    durationS: 205,
    intervalS: 2,
    columns: 10,
    rows: 10,
    tileWidth: 160,
    tileHeight: 90,
    sheetCount: 2,
  })
  const cues = vtt.trimEnd().split('\n\n').slice(1)
  t.equal(vtt.split('\n')[0], 'WEBVTT')
  t.equal(cues.length, 103)
  t.equal(cues[0], '00:00:00.000 --> 00:00:02.000\nsprite_000.jpg#xywh=0,0,160,90')
  t.equal(cues[11], '00:00:22.000 --> 00:00:24.000\nsprite_000.jpg#xywh=160,90,160,90')
  t.equal(cues[100], '00:03:20.000 --> 00:03:22.000\nsprite_001.jpg#xywh=0,0,160,90')
  t.equal(
    cues[102],
    '00:03:24.000 --> 00:03:25.000\nsprite_001.jpg#xywh=320,0,160,90',
    'the last cue ends with the video',
  )
})
