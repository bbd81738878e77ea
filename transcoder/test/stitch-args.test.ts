// The argv of split-and-stitch: a chunk is encoded with exactly the video settings of a whole
// transcode (the same graph and x264 flags), seeks before its input and keeps no audio; the
// packaging copies the rungs, encodes the audio once and uses the same HLS muxer flags.
import t from 'tap'
import { audioArgs, buildFfmpegArgs, x264Args, type FfmpegJob } from '../src/ffmpeg-args.js'
import { buildAudioArgs, buildChunkArgs, buildConcatArgs, buildStitchArgs, concatList } from '../src/stitch-args.js'

const renditions = [
  { name: '240p', width: 426, height: 240, maxrateBps: 400_000 },
  { name: '720p', width: 1280, height: 720, maxrateBps: 3_000_000 },
]
const whole: FfmpegJob = {
  sourcePath: '/in/src.mov',
  outDir: '/work/out',
  renditions,
  fps: 30,
  videoStreamIndex: 0,
  audioStreamIndex: 1,
  preset: 'ultrafast',
}

const after = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1]
/** The args from `from` (inclusive) up to `to` (exclusive). */
const between = (args: string[], from: string, to: string): string[] => args.slice(args.indexOf(from), args.indexOf(to))

t.test('a chunk seeks before its input, keeps no audio and encodes every rung as a whole transcode does', async (t) => {
  const args = buildChunkArgs({ ...whole, outPath: '/w/video.mp4', startS: 64, lengthS: 32 })
  const full = buildFfmpegArgs(whole)
  t.ok(args.indexOf('-ss') < args.indexOf('-i'), '-ss is an input option (decode-seek)')
  t.equal(after(args, '-ss'), String(Math.round((64 - 0.5 / 30) * 1e6) / 1e6), 'half a frame before the start')
  t.equal(after(args, '-frames:v'), '960', 'it ends by frame count: 32 s at 30 fps')
  t.equal(
    after(args, '-filter_complex'),
    after(full, '-filter_complex')?.replace('[0:0]', '[0:0]setpts=PTS-STARTPTS,'),
    'the same ladder graph, its timestamps restarted at the chunk start',
  )
  t.equal(
    after(buildChunkArgs({ ...whole, outPath: '/w/v.mp4', startS: 64, lengthS: 32, videoStartS: 0.021 }), '-ss'),
    String(Math.round((64 + 0.021 - 0.5 / 30) * 1e6) / 1e6),
    'a video that starts after the file: the seek adds where it begins',
  )
  t.ok(args.includes('-an'))
  t.same(
    args.filter((_, i) => args[i - 1] === '-map'),
    ['[v0]', '[v1]'],
  )
  t.same(between(args, '-c:v', '-forced-idr'), between(full, '-c:v', '-forced-idr'), 'the same x264 settings')
  t.same(between(args, '-c:v', '-frames:v'), x264Args(whole))
  t.equal(args.at(-1), '/w/video.mp4')
  t.notOk(
    buildChunkArgs({ ...whole, outPath: '/w/v.mp4', startS: 128 }).includes('-frames:v'),
    'the last chunk runs to the end',
  )
})

t.test('a chunk runs with the configured thread count as a whole transcode does', async (t) => {
  const args = buildChunkArgs({ ...whole, outPath: '/w/video.mp4', startS: 64, lengthS: 32, threads: 1 })
  const full = buildFfmpegArgs({ ...whole, threads: 1 })
  t.ok(args.indexOf('-threads') < args.indexOf('-i'), 'an input -threads before -i (decoder)')
  t.equal(after(args, '-threads'), '1')
  t.equal(after(args, '-filter_complex_threads'), '1')
  t.same(
    between(args, '-c:v', '-frames:v'),
    x264Args({ ...whole, threads: 1 }),
    'the encoder options, -threads 1 included',
  )
  t.same(
    between(args, '-c:v', '-frames:v'),
    between(full, '-c:v', '-c:a'),
    'the same x264 settings as a whole transcode',
  )
  t.notOk(buildChunkArgs({ ...whole, outPath: '/w/v.mp4', startS: 0, threads: 0 }).includes('-threads'))
})

t.test('a chunk refuses a bad job, naming the field', async (t) => {
  const base = { ...whole, outPath: '/w/v.mp4', startS: 0 }
  t.throws(() => buildChunkArgs({ ...base, startS: -4 }), /job\.startS/)
  t.throws(() => buildChunkArgs({ ...base, lengthS: 0 }), /job\.lengthS/)
  t.throws(() => buildChunkArgs({ ...base, videoStartS: -1 }), /job\.videoStartS/)
  t.throws(() => buildChunkArgs({ ...base, renditions: [] }), /job\.renditions/)
  t.throws(() => buildChunkArgs({ ...base, threads: -1 }), /job\.threads/)
})

t.test('the packaging copies the rungs, encodes the source audio once and muxes as a whole transcode', async (t) => {
  const args = buildStitchArgs({
    videoPath: '/w/video.mp4',
    sourcePath: '/in/src.mov',
    outDir: '/work/out',
    renditions,
    audioStreamIndex: 1,
  })
  const full = buildFfmpegArgs(whole)
  t.same(
    args.filter((_, i) => args[i - 1] === '-i'),
    ['/w/video.mp4', '/in/src.mov'],
  )
  t.same(
    args.filter((_, i) => args[i - 1] === '-map'),
    ['0:v:0', '0:v:1', '1:1'],
  )
  t.equal(after(args, '-c:v'), 'copy')
  t.notOk(args.includes('libx264'))
  t.same(between(args, '-c:a', '-max_muxing_queue_size'), audioArgs())
  t.same(args.slice(args.indexOf('-max_muxing_queue_size')), full.slice(full.indexOf('-max_muxing_queue_size')))
  const silent = buildStitchArgs({ videoPath: '/v.mp4', sourcePath: '/s', outDir: '/o', renditions })
  t.notOk(silent.includes('-c:a'), 'no audio without an audio stream')
})

t.test('with the audio job’s mp4 the packaging copies its tracks in order and encodes no audio', async (t) => {
  const audioTracks = [
    { streamIndex: 1, name: 'audio_en' },
    { streamIndex: 3, name: 'audio_es' },
  ]
  const args = buildStitchArgs({
    videoPath: '/w/video.mp4',
    sourcePath: '/in/src.mov',
    audioPath: '/w/audio.mp4',
    outDir: '/work/out',
    renditions,
    audioTracks,
  })
  const encoded = buildStitchArgs({
    videoPath: '/w/video.mp4',
    sourcePath: '/in/src.mov',
    outDir: '/work/out',
    renditions,
    audioTracks,
  })
  t.same(
    args.filter((_, i) => args[i - 1] === '-i'),
    ['/w/video.mp4', '/w/audio.mp4'],
    'the audio comes from the audio job, not the source',
  )
  t.same(
    args.filter((_, i) => args[i - 1] === '-map'),
    ['0:v:0', '0:v:1', '1:a:0', '1:a:1'],
    'audio stream i of the audio mp4 is track i',
  )
  t.same(between(args, '-c:a', '-max_muxing_queue_size'), ['-c:a', 'copy'], 'stream copy')
  t.notOk(args.includes('aac'), 'no AAC encode in the packaging')
  t.same(
    args.slice(args.indexOf('-max_muxing_queue_size')),
    encoded.slice(encoded.indexOf('-max_muxing_queue_size')),
    'the same muxer and variant streams as when the packaging encodes the audio',
  )
  t.throws(
    () => buildStitchArgs({ videoPath: '/v', sourcePath: '/s', audioPath: '', outDir: '/o', renditions }),
    /audioPath/,
  )
})

t.test('the audio job encodes every track of the whole source as a whole transcode does, no video', async (t) => {
  const audioTracks = [
    { streamIndex: 1, name: 'audio_en' },
    { streamIndex: 3, name: 'audio_es' },
  ]
  const args = buildAudioArgs({ sourcePath: '/in/src.mov', outPath: '/w/audio.mp4', audioTracks, threads: 1 })
  t.same(
    args.filter((_, i) => args[i - 1] === '-i'),
    ['/in/src.mov'],
  )
  t.notOk(args.includes('-ss') || args.includes('-t') || args.includes('-frames:v'), 'the whole source')
  t.same(
    args.filter((_, i) => args[i - 1] === '-map'),
    ['0:1', '0:3'],
    'only the audio tracks, in plan order',
  )
  const full = buildFfmpegArgs({ ...whole, audioStreamIndex: undefined, audioTracks })
  t.same(
    between(args, '-c:a', '-f'),
    between(full, '-c:a', '-max_muxing_queue_size'),
    'the AAC settings of a whole transcode',
  )
  t.equal(after(args, '-f'), 'mp4')
  t.equal(args.at(-1), '/w/audio.mp4')
  t.throws(() => buildAudioArgs({ sourcePath: '/s', outPath: '/o', audioTracks: [] }), /job\.audioTracks/)
  t.throws(() => buildAudioArgs({ sourcePath: '/s', outPath: '/o', audioTracks, threads: -1 }), /job\.threads/)
})

t.test('the chunks are joined in order by the concat demuxer, streams copied', async (t) => {
  t.equal(concatList(['/a/0.mp4', "/a/it's.mp4"]), "file '/a/0.mp4'\nfile '/a/it'\\''s.mp4'\n")
  const args = buildConcatArgs('/w/list.txt', '/w/video.mp4')
  t.equal(after(args, '-f'), 'concat')
  t.equal(after(args, '-c'), 'copy')
  t.equal(after(args, '-map'), '0')
})
