import t from 'tap'
import { buildFfmpegArgs, type FfmpegJob } from '../src/ffmpeg-args.js'

const job: FfmpegJob = {
  sourcePath: '/in/src.mov',
  outDir: '/work/out',
  renditions: [
    { name: '240p', width: 426, height: 240, maxrateBps: 400_000 },
    { name: '720p', width: 1280, height: 720, maxrateBps: 3_000_000 },
  ],
  fps: 30,
  videoStreamIndex: 0,
  audioStreamIndex: 1,
}

/** The value following `flag` (the first occurrence). */
const after = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1]

t.test('decodes once and splits to every rung with exact sizes', async (t) => {
  const args = buildFfmpegArgs(job)
  t.equal(args.filter((a) => a === '-i').length, 1)
  t.equal(
    after(args, '-filter_complex'),
    '[0:0]split=2[s0][s1];[s0]scale=426:240,setsar=1,format=yuv420p[v0];[s1]scale=1280:720,setsar=1,format=yuv420p[v1]',
  )
  t.same(
    args.filter((_, i) => args[i - 1] === '-map'),
    ['[v0]', '[v1]', '0:1'],
  )
})

t.test('encodes H.264 High with capped CRF per rung and a fixed 2 s GOP', async (t) => {
  const args = buildFfmpegArgs(job)
  const table: [string, string][] = [
    ['-c:v', 'libx264'],
    ['-profile:v', 'high'],
    ['-preset', 'veryfast'],
    ['-crf', '23'],
    ['-maxrate:v:0', '400k'],
    ['-bufsize:v:0', '800k'],
    ['-maxrate:v:1', '3000k'],
    ['-bufsize:v:1', '6000k'],
    ['-g', '60'],
    ['-keyint_min', '60'],
    ['-sc_threshold', '0'],
    ['-force_key_frames', 'expr:gte(t,n_forced*2)'],
  ]
  for (const [flag, value] of table) t.equal(after(args, flag), value, flag)
  t.equal(after(buildFfmpegArgs({ ...job, fps: 29.97 }), '-g'), '60', '2 s of 29.97 fps rounds to 60 frames')
  t.equal(after(buildFfmpegArgs({ ...job, fps: 25, preset: 'ultrafast' }), '-g'), '50')
  t.equal(after(buildFfmpegArgs({ ...job, preset: 'ultrafast' }), '-preset'), 'ultrafast')
})

t.test('encodes the audio once as its own rendition', async (t) => {
  const args = buildFfmpegArgs(job)
  const table: [string, string][] = [
    ['-c:a', 'aac'],
    ['-b:a', '128k'],
    ['-ac', '2'],
    ['-ar', '48000'],
    ['-var_stream_map', 'v:0,name:240p v:1,name:720p a:0,name:audio'],
  ]
  for (const [flag, value] of table) t.equal(after(args, flag), value, flag)
})

t.test('omits audio for a source without it', async (t) => {
  const args = buildFfmpegArgs({ ...job, audioStreamIndex: undefined })
  t.notOk(args.includes('-c:a'))
  t.same(
    args.filter((_, i) => args[i - 1] === '-map'),
    ['[v0]', '[v1]'],
  )
  t.equal(after(args, '-var_stream_map'), 'v:0,name:240p v:1,name:720p')
})

t.test('muxes 4 s CMAF HLS segments numbered from 1 into one folder per rendition', async (t) => {
  const args = buildFfmpegArgs(job)
  const table: [string, string][] = [
    ['-f', 'hls'],
    ['-hls_segment_type', 'fmp4'],
    ['-hls_time', '4'],
    ['-hls_playlist_type', 'vod'],
    ['-hls_flags', 'independent_segments'],
    ['-start_number', '1'],
    ['-hls_segment_filename', '/work/out/%v/seg_%05d.m4s'],
    ['-hls_fmp4_init_filename', 'init.mp4'],
    ['-progress', 'pipe:1'],
  ]
  for (const [flag, value] of table) t.equal(after(args, flag), value, flag)
  t.ok(args.includes('-nostats'))
  t.equal(args.at(-1), '/work/out/%v/index.m3u8', 'the playlist pattern is the output')
})

t.test('passes the configured thread count to the decoder, the filter graph and the encoders', async (t) => {
  const args = buildFfmpegArgs({ ...job, threads: 1 })
  const input = args.indexOf('-i')
  const first = args.indexOf('-threads')
  t.ok(first >= 0 && first < input, 'an input -threads before -i (decoder)')
  t.equal(after(args, '-threads'), '1')
  t.equal(after(args, '-filter_complex_threads'), '1')
  const last = args.lastIndexOf('-threads')
  t.ok(last > args.indexOf('-c:v') && last < args.indexOf('-f'), 'an output -threads among the encoder options')
  t.equal(args[last + 1], '1')
  t.equal(args.filter((a) => a === '-threads').length, 2)
  t.equal(after(buildFfmpegArgs({ ...job, threads: 3 }), '-filter_complex_threads'), '3')
})

t.test('leaves the thread count to ffmpeg when threads is 0 or absent', async (t) => {
  for (const threads of [0, undefined]) {
    const args = buildFfmpegArgs({ ...job, threads })
    t.notOk(args.includes('-threads'), `threads ${threads}`)
    t.notOk(args.includes('-filter_complex_threads'), `threads ${threads}`)
  }
})

t.test('rejects invalid jobs naming the field', async (t) => {
  const bad: [Partial<FfmpegJob>, RegExp][] = [
    [{ sourcePath: '' }, /job\.sourcePath/],
    [{ outDir: '/tmp/100%' }, /job\.outDir/],
    [{ renditions: [] }, /job\.renditions/],
    [{ renditions: [{ name: 'audio', width: 2, height: 2, maxrateBps: 1 }] }, /job\.renditions\[0\]\.name/],
    [{ renditions: [{ name: '240p', width: 427, height: 240, maxrateBps: 1 }] }, /job\.renditions\[0\]\.width/],
    [{ renditions: [job.renditions[0]!, job.renditions[0]!] }, /job\.renditions\[1\]\.name/],
    [{ fps: 0 }, /job\.fps/],
    [{ crf: 60 }, /job\.crf/],
    [{ preset: 'warp' as never }, /job\.preset/],
    [{ audioStreamIndex: -1 }, /job\.audioStreamIndex/],
    [{ threads: -1 }, /job\.threads/],
    [{ threads: 1.5 }, /job\.threads/],
    [{ threads: 65 }, /job\.threads/],
  ]
  for (const [patch, re] of bad) t.throws(() => buildFfmpegArgs({ ...job, ...patch }), re)
})
