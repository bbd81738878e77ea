import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../../shared/testing/index.js'
import { buildFfmpegArgs } from '../src/ffmpeg-args.js'
import { transcode } from '../src/pipeline.js'
import { probe, sourceInfoFromProbe } from '../src/probe.js'
import { dynamicRangeOf, toneMapFilter } from '../src/tone-map.js'

const tmp = tempDir('vcdn-tone-map-')
t.teardown(() => tmp.remove())

/**
 * A 10-bit PQ (or HLG) source: testsrc2 converted from BT.709 to BT.2020 with the HDR transfer by
 * zimg, and tagged as such, the way an HDR10 master is described.
 */
function makeHdrClip(name: string, transfer: 'smpte2084' | 'arib-std-b67'): string {
  const path = join(tmp.dir, name)
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30:duration=4'],
    '-vf',
    `zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=${transfer}:m=bt2020nc:p=bt2020:r=tv:npl=100,format=yuv420p10le`,
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30'],
    ...['-color_trc', transfer, '-color_primaries', 'bt2020', '-colorspace', 'bt2020nc', '-color_range', 'tv'],
    path,
  ])
  return path
}

// The reference tone-map, written out here rather than imported, so the test checks what the
// pipeline did against a chain it does not share code with: zimg to linear light at a 100 cd/m²
// reference white, Hable in float RGB, back to BT.709 limited range.
const REFERENCE_PQ_TO_SDR =
  'zscale=tin=smpte2084:pin=bt2020:min=2020_ncl:rin=limited:t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,' +
  'tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=limited,format=yuv420p'
const FRAME = 45 // 1.5 s in: inside the first segment, away from the first keyframe

/** Mean luma (signalstats YAVG, 8-bit scale) of frame FRAME of a file after `filter`. */
function meanLuma(path: string, filter: string): number {
  const out = execFileSync('ffmpeg', [
    ...['-v', 'error', '-nostdin', '-i', path, '-map', '0:v:0'],
    '-vf',
    `${filter},select=eq(n\\,${FRAME}),signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-`,
    ...['-f', 'null', '-'],
  ]).toString()
  const m = /YAVG=([\d.]+)/.exec(out)
  if (!m) throw new Error(`no YAVG for frame ${FRAME} of ${path}: ${out}`)
  return Number(m[1])
}

function colourTags(path: string): string {
  return execFileSync('ffprobe', [
    ...['-v', 'error', '-select_streams', 'v:0'],
    ...['-show_entries', 'stream=color_transfer,color_primaries,color_space', '-of', 'csv=p=0', path],
  ])
    .toString()
    .trim()
}

t.test('reads PQ and HLG from the transfer characteristics and leaves everything else SDR', async (t) => {
  t.equal(dynamicRangeOf('smpte2084'), 'PQ')
  t.equal(dynamicRangeOf('arib-std-b67'), 'HLG')
  for (const other of ['bt709', 'smpte170m', 'bt2020-10', '']) t.equal(dynamicRangeOf(other), 'SDR', other)
  const video = {
    index: 0,
    codec_type: 'video',
    codec_name: 'hevc',
    width: 3840,
    height: 2160,
    avg_frame_rate: '25/1',
    color_transfer: 'arib-std-b67',
    color_primaries: 'bt2020',
    color_space: 'bt2020nc',
    color_range: 'tv',
  }
  const info = sourceInfoFromProbe({ streams: [video], format: { format_name: 'matroska,webm', duration: '5' } })
  t.equal(info.dynamicRange, 'HLG')
  t.same(info.colour, { transfer: 'arib-std-b67', primaries: 'bt2020', matrix: 'bt2020nc', range: 'tv' })
  const { color_transfer: _, ...untagged } = video
  const plain = sourceInfoFromProbe({
    streams: [untagged],
    format: { format_name: 'matroska,webm', duration: '5' },
  })
  t.equal(plain.dynamicRange, 'SDR')
})

t.test('an HDR source is tone-mapped once before the split and the ladder is tagged BT.709', async (t) => {
  const job = {
    sourcePath: '/in/src.mkv',
    outDir: '/out',
    renditions: [
      { name: '240p', width: 426, height: 240, maxrateBps: 400_000 },
      { name: '360p', width: 640, height: 360, maxrateBps: 800_000 },
    ],
    fps: 25,
    videoStreamIndex: 0,
  }
  const colour = { transfer: 'arib-std-b67', primaries: 'bt2020', matrix: 'bt2020nc', range: 'tv' }
  const args = buildFfmpegArgs({ ...job, toneMap: { range: 'HLG', colour } })
  const graph = args[args.indexOf('-filter_complex') + 1] ?? ''
  t.equal(graph.split(';')[0], `[0:0]${toneMapFilter('HLG', colour)},split=2[s0][s1]`)
  t.match(toneMapFilter('HLG', colour), /^zscale=tin=arib-std-b67:pin=bt2020:min=2020_ncl:rin=limited:t=linear/)
  const tags: [string, string][] = [
    ['-color_primaries', 'bt709'],
    ['-color_trc', 'bt709'],
    ['-colorspace', 'bt709'],
  ]
  for (const [flag, value] of tags) t.equal(args[args.indexOf(flag) + 1], value, flag)

  const sdr = buildFfmpegArgs(job)
  t.notOk(sdr.includes('-color_trc'), 'an SDR source keeps its own tags')
  t.notMatch(sdr[sdr.indexOf('-filter_complex') + 1] ?? '', /zscale|tonemap/)
  t.throws(() => buildFfmpegArgs({ ...job, toneMap: { range: 'SDR' as 'PQ', colour } }), /job\.toneMap\.range/)
})

t.test('a PQ source yields an SDR BT.709 ladder whose luma matches a reference tone-map', async (t) => {
  const source = makeHdrClip('pq.mp4', 'smpte2084')
  const info = await probe(source)
  t.equal(info.dynamicRange, 'PQ')

  const workDir = join(tmp.dir, 'work-pq')
  mkdirSync(workDir)
  const result = await transcode({ sourcePath: source, workDir, videoId: 'vid_pq', preset: 'ultrafast' })
  const path = (key: string): string => {
    const o = result.outputs.find((x) => x.key === `v/vid_pq/${key}`)
    if (!o) throw new Error(`no output ${key}`)
    return o.path
  }
  t.same(
    result.renditions.map((r) => r.name),
    ['240p', '360p'],
  )

  // The 360p rung is the source's own size, so its frame compares with the source frame directly.
  const rung = join(tmp.dir, 'pq-360p.mp4')
  writeFileSync(rung, Buffer.concat([readFileSync(path('360p/init.mp4')), readFileSync(path('360p/seg_00001.m4s'))]))
  t.equal(colourTags(rung), 'bt709,bt709,bt709', 'the SDR rung is tagged BT.709 (matrix, transfer, primaries)')

  const got = meanLuma(rung, 'null')
  const want = meanLuma(source, REFERENCE_PQ_TO_SDR)
  const untouched = meanLuma(source, 'format=yuv420p')
  t.ok(Math.abs(got - want) / want < 0.03, `mean luma ${got} within 3% of the reference tone-map's ${want}`)
  // The check can tell: PQ code values shown as SDR are far brighter than the tone-mapped frame.
  t.ok(Math.abs(untouched - want) / want > 0.09, `untone-mapped ${untouched} is far from ${want}`)

  const master = readFileSync(path('master.m3u8'), 'utf8')
  t.notMatch(master, /VIDEO-RANGE=(PQ|HLG)/, 'the SDR ladder is not announced as HDR')
  await rm(result.jobDir, { recursive: true, force: true })
})
