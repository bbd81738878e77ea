import { mkdirSync, readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parseMaster, parseMedia } from '../../shared/hls/index.js'
import { tempDir } from '../../shared/testing/index.js'
import { bcp47, planAudioRenditions, type AudioTrack } from '../src/audio-tracks.js'
import { buildMpd } from '../src/dash.js'
import { buildFfmpegArgs } from '../src/ffmpeg-args.js'
import { buildMaster } from '../src/master.js'
import type { MeasuredRendition } from '../src/measure.js'
import { transcode } from '../src/pipeline.js'
import { probe } from '../src/probe.js'
import { makeTwoLanguageClip } from './track-fixtures.js'
import { checkWellFormedXml } from './xml.js'

const tmp = tempDir('vcdn-audio-tracks-')
t.teardown(() => tmp.remove())

const track = (streamIndex: number, extra: Partial<AudioTrack> = {}): AudioTrack => ({
  streamIndex,
  language: undefined,
  title: undefined,
  channels: 2,
  isDefault: false,
  ...extra,
})

const rendition = (name: string, kind: 'video' | 'audio', bytes: number[]): MeasuredRendition => ({
  name,
  kind,
  dir: `/out/${name}`,
  initUri: 'init.mp4',
  initBytes: 800,
  timescale: kind === 'video' ? 15360 : 48000,
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
})

t.test('container language tags become BCP-47 and und means no language', async (t) => {
  const table: [string | undefined, string | undefined][] = [
    ['eng', 'en'],
    ['spa', 'es'],
    ['ger', 'de'],
    ['fre', 'fr'],
    ['pt-BR', 'pt-BR'],
    ['zh_Hant', 'zh-Hant'],
    ['und', undefined],
    ['', undefined],
    [undefined, undefined],
    ['not a tag!', undefined],
  ]
  for (const [tag, want] of table) t.equal(bcp47(tag), want, String(tag))
})

t.test('one track keeps the name audio; several are named by language or position', async (t) => {
  t.same(planAudioRenditions([]), [])
  t.same(planAudioRenditions([track(1)]), [
    { name: 'audio', streamIndex: 1, language: undefined, label: 'audio', isDefault: true },
  ])
  t.match(planAudioRenditions([track(1, { language: 'en' })]), [{ name: 'audio', language: 'en', label: 'English' }])

  const plan = planAudioRenditions([
    track(1, { language: 'en' }),
    track(2, { language: 'es', title: 'Español (Latinoamérica)', isDefault: true }),
    track(3, { language: 'en' }),
    track(4),
  ])
  t.same(
    plan.map((p) => [p.name, p.streamIndex, p.language, p.label, p.isDefault]),
    [
      ['audio_en', 1, 'en', 'English', false],
      ['audio_es', 2, 'es', 'Español (Latinoamérica)', true],
      ['audio_en_2', 3, 'en', 'English', false],
      ['audio_4', 4, undefined, 'Audio 4', false],
    ],
  )
  t.match(planAudioRenditions([track(1), track(2)]), [{ isDefault: true }, { isDefault: false }], 'first by default')
})

t.test('ffmpeg maps and encodes every audio track as its own rendition', async (t) => {
  const args = buildFfmpegArgs({
    sourcePath: '/in/src.mkv',
    outDir: '/out',
    renditions: [{ name: '240p', width: 426, height: 240, maxrateBps: 400_000 }],
    fps: 30,
    videoStreamIndex: 0,
    audioTracks: [
      { streamIndex: 1, name: 'audio_en' },
      { streamIndex: 2, name: 'audio_es' },
    ],
  })
  const maps = args.flatMap((a, i) => (a === '-map' ? [args[i + 1]] : []))
  t.same(maps, ['[v0]', '0:1', '0:2'])
  t.equal(args[args.indexOf('-var_stream_map') + 1], 'v:0,name:240p a:0,name:audio_en a:1,name:audio_es')
  const base = { sourcePath: '/s', outDir: '/o', fps: 30, videoStreamIndex: 0 }
  const rungs = [{ name: '240p', width: 426, height: 240, maxrateBps: 1 }]
  t.throws(
    () => buildFfmpegArgs({ ...base, renditions: rungs, audioTracks: [{ streamIndex: 1, name: '240p' }] }),
    /job\.audioTracks\[0\]\.name/,
  )
})

t.test('the master lists each track with LANGUAGE, NAME, CHANNELS and one default; DASH one set each', async (t) => {
  const en = rendition('audio_en', 'audio', [64_000, 64_000])
  const es = rendition('audio_es', 'audio', [96_000, 96_000])
  const m = buildMaster({
    video: [rendition('720p', 'video', [2_000_000, 1_000_000])],
    audio: [
      { measured: en, label: 'English', language: 'en', isDefault: false },
      { measured: es, label: 'Español', language: 'es', isDefault: true },
    ],
    frameRate: 30,
  })
  t.match(
    m.text,
    /#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Español",LANGUAGE="es",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio_es\/index\.m3u8"/,
  )
  t.match(
    m.text,
    /#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio_en\/index\.m3u8"/,
  )
  // RFC 8216 §4.3.4.2: the variant's BANDWIDTH covers the highest-rate audio rendition.
  t.equal(m.renditions[0]?.bandwidth, 4_000_000 + 192_000)
  t.same(
    m.audioTracks.map((a) => [a.name, a.language, a.isDefault]),
    [
      ['audio_es', 'es', true],
      ['audio_en', 'en', false],
    ],
  )
  t.equal(m.audio?.name, 'audio_es')
  const parsed = parseMaster(m.text)
  t.same(
    parsed.audio.map((a) => [a.name, a.language, a.isDefault]),
    [
      ['Español', 'es', true],
      ['English', 'en', false],
    ],
  )

  const mpd = buildMpd({
    durationS: 8,
    frameRate: 30,
    video: [{ measured: rendition('720p', 'video', [1, 2]), bandwidth: 3_000_000 }],
    audio: m.audioTracks.map((a) => ({
      measured: a.name === 'audio_en' ? en : es,
      bandwidth: a.bandwidth,
      language: a.language,
      label: a.label,
      isDefault: a.isDefault,
    })),
  })
  checkWellFormedXml(mpd)
  t.same(
    [...mpd.matchAll(/<AdaptationSet id="(\d)" contentType="audio"[^>]* lang="([^"]+)"/g)].map((x) => [x[1], x[2]]),
    [
      ['1', 'es'],
      ['2', 'en'],
    ],
  )
  t.match(mpd, /<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"\/>\s*<Label>Español<\/Label>/)
})

t.test('a source with English and Spanish audio publishes two audio renditions with their languages', async (t) => {
  const source = makeTwoLanguageClip(tmp.dir, 'two-languages.mkv')
  const info = await probe(source)
  t.same(
    info.audioTracks.map((a) => [a.streamIndex, a.language, a.channels, a.isDefault]),
    [
      [1, 'en', 1, false],
      [2, 'es', 2, true],
    ],
  )
  const workDir = join(tmp.dir, 'work-two')
  mkdirSync(workDir)
  const result = await transcode({ sourcePath: source, workDir, videoId: 'vid_two', preset: 'ultrafast' })
  t.teardown(() => rm(result.jobDir, { recursive: true, force: true }))
  const path = (key: string): string => {
    const o = result.outputs.find((x) => x.key === `v/vid_two/${key}`)
    if (!o) throw new Error(`no output ${key}`)
    return o.path
  }
  t.same(
    result.audioTracks.map((a) => [a.name, a.language, a.label, a.isDefault, a.channels]),
    [
      ['audio_es', 'es', 'Español (Latinoamérica)', true, 2],
      ['audio_en', 'en', 'English', false, 2],
    ],
  )
  const master = parseMaster(readFileSync(path('master.m3u8'), 'utf8'))
  t.same(
    master.audio.map((a) => [a.groupId, a.name, a.language, a.uri, a.isDefault]),
    [
      ['aud', 'Español (Latinoamérica)', 'es', 'audio_es/index.m3u8', true],
      ['aud', 'English', 'en', 'audio_en/index.m3u8', false],
    ],
  )
  for (const v of master.variants) t.equal(v.audioGroupId, 'aud')
  for (const name of ['audio_en', 'audio_es']) {
    const playlist = parseMedia(readFileSync(path(`${name}/index.m3u8`), 'utf8'))
    t.ok(Math.abs(playlist.totalDurationS - 4) < 0.2, `${name} lasts the whole video`)
    for (const s of playlist.segments) t.ok(path(`${name}/${s.uri}`), `${name}/${s.uri} is published`)
  }
  t.notOk(
    result.outputs.some((o) => o.key.startsWith('v/vid_two/audio/')),
    'no single-track folder',
  )
  const mpd = readFileSync(path('manifest.mpd'), 'utf8')
  t.same(
    [...mpd.matchAll(/contentType="audio"[^>]* lang="([^"]+)"/g)].map((x) => x[1]),
    ['es', 'en'],
  )
})
