import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parseMaster, parseMedia } from '../../shared/hls/index.js'
import { CaptionParseError, parseCaptions } from '../../shared/media/index.js'
import { tempDir } from '../../shared/testing/index.js'
import { makeSubtitles, subtitlePlaylist, writeSubtitleTracks } from '../src/captions.js'
import { transcode } from '../src/pipeline.js'
import { probe } from '../src/probe.js'
import { makeTwoLanguageClip } from './track-fixtures.js'
import { checkWellFormedXml } from './xml.js'

const tmp = tempDir('vcdn-captions-')
t.teardown(() => tmp.remove())

const SRT = [
  '1',
  '00:00:00,500 --> 00:00:01,500',
  'Hello & <i>welcome</i>',
  '',
  '2',
  '00:00:03,000 --> 00:00:05,000',
  'This cue spans the 4 s boundary',
  '',
].join('\r\n')

t.test('SRT becomes WebVTT cues; WebVTT keeps ids out and settings in', async (t) => {
  t.same(parseCaptions(SRT), [
    { startMs: 500, endMs: 1500, settings: '', text: 'Hello &amp; <i>welcome</i>' },
    { startMs: 3000, endMs: 5000, settings: '', text: 'This cue spans the 4 s boundary' },
  ])
  const vtt =
    '\uFEFFWEBVTT - title\nKind: captions\n\nNOTE a comment\n\nintro\n01:02.000 --> 01:03.500 line:0\nHi\nthere\n'
  t.same(parseCaptions(vtt), [{ startMs: 62_000, endMs: 63_500, settings: 'line:0', text: 'Hi\nthere' }])
})

t.test('files that are not captions are refused naming the line', async (t) => {
  const table: [string, string, RegExp][] = [
    ['empty', '', /not WebVTT or SRT/],
    ['a header only', 'WEBVTT\n\n', /no cues/],
    ['binary', 'WEBVTT\n\n\u0000\u0001', /binary/],
    ['random text', 'hello world\nthis is not a subtitle\n', /line 1: expected a cue number/],
    ['a bad timestamp', '1\n00:00:01,000 --> soon\nx\n', /line 2: "soon" is not a timestamp/],
    ['an end before its start', 'WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nx\n', /line 3: the cue ends before/],
    ['an arrow in the text', 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na --> b\n', /contains "-->"/],
  ]
  for (const [name, text, message] of table) t.throws(() => parseCaptions(text), message, name)
  t.throws(() => parseCaptions(''), CaptionParseError)
})

t.test('each track is cut onto the video segment grid with X-TIMESTAMP-MAP', async (t) => {
  const outDir = join(tmp.dir, 'grid')
  mkdirSync(outDir)
  const grid = [
    { startS: 0, endS: 4, extinfS: 4 },
    { startS: 4, endS: 8, extinfS: 4 },
    { startS: 8, endS: 9.5, extinfS: 1.5 },
  ]
  const written = await writeSubtitleTracks({
    outDir,
    tracks: [{ name: 'de', language: 'de', label: 'Deutsch', cues: parseCaptions(SRT), offsetS: 0 }],
    grid,
  })
  t.same(written.media, [
    'subs/de/seg_00001.vtt',
    'subs/de/seg_00002.vtt',
    'subs/de/seg_00003.vtt',
    'subs/de/captions.vtt',
  ])
  t.same(written.playlists, ['subs/de/index.m3u8'])
  const seg = (n: number): string => readFileSync(join(outDir, `subs/de/seg_0000${n}.vtt`), 'utf8')
  t.match(seg(1), /^WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00\.000\n\n/)
  t.equal(parseCaptions(seg(1)).length, 2, 'both cues touch the first segment')
  t.same(
    parseCaptions(seg(2)).map((c) => c.startMs),
    [3000],
    'the spanning cue repeats in the next segment',
  )
  t.equal(seg(3), 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n', 'an empty segment is a valid WebVTT file')
  const playlist = parseMedia(readFileSync(join(outDir, 'subs/de/index.m3u8'), 'utf8'))
  t.same(
    playlist.segments.map((s) => [s.uri, s.durationS]),
    [
      ['seg_00001.vtt', 4],
      ['seg_00002.vtt', 4],
      ['seg_00003.vtt', 1.5],
    ],
  )
  t.equal(playlist.targetDurationS, 4)
  // An attached file counts from the first frame: its cue times shift by where the media starts.
  await writeSubtitleTracks({
    outDir,
    tracks: [{ name: 'late', language: undefined, label: 'x', cues: parseCaptions(SRT), offsetS: 1.5 }],
    grid,
  })
  const late = (n: number): string => readFileSync(join(outDir, `subs/late/seg_0000${n}.vtt`), 'utf8')
  t.match(late(1), /X-TIMESTAMP-MAP=MPEGTS:135000,LOCAL:00:00:00\.000/)
  t.same(
    [1, 2, 3].map((n) => parseCaptions(`${late(n)}\n00:00:00.000 --> 00:00:00.001\n.\n`).length - 1),
    [1, 1, 0],
    'each cue lands in the segment its shifted time falls in',
  )
  t.match(subtitlePlaylist([{ startS: 0, endS: 4.4, extinfS: 4.4 }]), /#EXT-X-TARGETDURATION:4\n/)
  t.match((await writeSubtitleTracks({ outDir, tracks: [], grid })).renditions, [], 'no tracks, no files')
})

t.test('a text subtitle stream in the source becomes a WebVTT track with its language', async (t) => {
  const source = makeTwoLanguageClip(tmp.dir, 'with-subs.mkv', { subtitleSrt: SRT, subtitleLanguage: 'fre' })
  const info = await probe(source)
  t.match(info.subtitleStreams, [{ streamIndex: 3, codec: 'subrip', language: 'fr' }])
  const outDir = join(tmp.dir, 'embedded')
  mkdirSync(outDir)
  const made = await makeSubtitles({
    sourcePath: source,
    captions: [],
    streams: info.subtitleStreams,
    outDir,
    reference: { timescale: 1000, segments: [{ startTs: 0, durationTs: 4000, extinfS: 4 }] },
  })
  t.same(
    made.renditions.map((r) => [r.name, r.language, r.label, r.playlistUri, r.fileUri]),
    [['fr', 'fr', 'Français', 'subs/fr/index.m3u8', 'subs/fr/captions.vtt']],
  )
  // Matroska shifts every stream by the encoder delay (tens of ms); ffmpeg extracts cue times on
  // the same timeline as the ladder's media, so only the shift may differ from the SRT.
  const cues = parseCaptions(readFileSync(join(outDir, 'subs/fr/captions.vtt'), 'utf8'))
  const shiftMs = (cues[0]?.startMs ?? 0) - 500
  t.ok(shiftMs >= 0 && shiftMs < 100, `cue shift ${shiftMs} ms`)
  t.same(
    cues.map((c) => [c.startMs - shiftMs, c.endMs - shiftMs, c.text]),
    [
      [500, 1500, 'Hello &amp; <i>welcome</i>'],
      [3000, 5000, 'This cue spans the 4 s boundary'],
    ],
  )
})

t.test(
  'two audio languages and an uploaded SRT publish two audio renditions and one subtitles rendition',
  async (t) => {
    const source = makeTwoLanguageClip(tmp.dir, 'two-plus-caption.mkv', { durationS: 6 })
    const srtPath = join(tmp.dir, 'upload.srt')
    writeFileSync(srtPath, SRT)
    const workDir = join(tmp.dir, 'work')
    mkdirSync(workDir)
    const result = await transcode({
      sourcePath: source,
      workDir,
      videoId: 'vid_cc',
      preset: 'ultrafast',
      captions: [{ path: srtPath, language: 'de' }],
    })
    t.teardown(() => rm(result.jobDir, { recursive: true, force: true }))
    const path = (key: string): string => {
      const o = result.outputs.find((x) => x.key === `v/vid_cc/${key}`)
      if (!o) throw new Error(`no output ${key}`)
      return o.path
    }
    const master = parseMaster(readFileSync(path('master.m3u8'), 'utf8'))
    t.same(
      master.audio.map((a) => [a.language, a.uri]),
      [
        ['es', 'audio_es/index.m3u8'],
        ['en', 'audio_en/index.m3u8'],
      ],
    )
    t.same(master.subtitles, [
      {
        groupId: 'subs',
        name: 'Deutsch',
        uri: 'subs/de/index.m3u8',
        isDefault: false,
        isAutoselect: true,
        language: 'de',
      },
    ])
    for (const v of master.variants) t.equal(v.subtitlesGroupId, 'subs', `${v.uri} names the subtitles group`)

    const video = parseMedia(readFileSync(path('240p/index.m3u8'), 'utf8'))
    const subs = parseMedia(readFileSync(path('subs/de/index.m3u8'), 'utf8'))
    t.same(
      subs.segments.map((s) => s.durationS),
      video.segments.map((s) => s.durationS),
      'the same segment grid as the video',
    )
    for (const s of subs.segments)
      t.match(readFileSync(path(`subs/de/${s.uri}`), 'utf8'), /X-TIMESTAMP-MAP=MPEGTS:\d+,LOCAL:00:00:00\.000/)

    const keys = result.outputs.map((o) => o.key)
    t.ok(keys.indexOf('v/vid_cc/subs/de/seg_00001.vtt') < keys.indexOf('v/vid_cc/subs/de/index.m3u8'))
    t.equal(keys.at(-1), 'v/vid_cc/master.m3u8')
    t.match(
      result.outputs.find((o) => o.key.endsWith('seg_00001.vtt')),
      { contentType: /^text\/vtt/ },
    )

    const mpd = readFileSync(path('manifest.mpd'), 'utf8')
    checkWellFormedXml(mpd)
    t.match(mpd, /<AdaptationSet id="3" contentType="text" mimeType="text\/vtt" lang="de">/)
    t.match(mpd, /<BaseURL>subs\/de\/captions\.vtt<\/BaseURL>/)
  },
)
