import t from 'tap'
import { tempDir } from '../../shared/testing/index.js'
import { isRetryableTranscodeError, probe, sourceInfoFromProbe } from '../src/probe.js'
import { makeAudioOnly, makeClip, makeCorruptData, makeGarbage, makeImage, makeTruncated } from './fixtures.js'

const tmp = tempDir('vcdn-probe-')
t.teardown(() => tmp.remove())
const clip = makeClip(tmp.dir, 'clip.mp4', { width: 320, height: 180, durationS: 2 })

t.test('reads duration, display size, frame rate and audio of a real clip', async (t) => {
  const info = await probe(clip)
  t.ok(Math.abs(info.durationS - 2) < 0.1, `duration ${info.durationS}`)
  t.equal(info.width, 320)
  t.equal(info.height, 180)
  t.equal(info.fps, 30)
  t.equal(info.hasAudio, true)
  t.equal(info.audioChannels, 1)
  t.equal(info.videoCodec, 'h264')
  t.ok(info.bitRate > 0)
})

const video = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  index: 0,
  codec_type: 'video',
  codec_name: 'h264',
  width: 1920,
  height: 1080,
  avg_frame_rate: '30000/1001',
  r_frame_rate: '30000/1001',
  ...extra,
})
const fmt = { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '10.0', bit_rate: '1000' }

t.test('maps ffprobe JSON to the display size and frame rate', async (t) => {
  const table: [string, Record<string, unknown>, Partial<ReturnType<typeof sourceInfoFromProbe>>][] = [
    ['plain', video(), { width: 1920, height: 1080 }],
    [
      'rotated by display matrix',
      video({ side_data_list: [{ side_data_type: 'Display Matrix', rotation: -90 }] }),
      { width: 1080, height: 1920 },
    ],
    ['rotated by tag', video({ tags: { rotate: '270' } }), { width: 1080, height: 1920 }],
    ['upside down', video({ tags: { rotate: '180' } }), { width: 1920, height: 1080 }],
    ['anamorphic PAL', video({ width: 720, height: 576, sample_aspect_ratio: '16:15' }), { width: 768, height: 576 }],
    ['VFR with a tick-rate r_frame_rate', video({ avg_frame_rate: '24/1', r_frame_rate: '1000/1' }), { fps: 24 }],
    ['no usable frame rate', video({ avg_frame_rate: '0/0', r_frame_rate: '0/0' }), { fps: 30 }],
  ]
  for (const [name, stream, want] of table) {
    const info = sourceInfoFromProbe({ streams: [stream], format: fmt })
    t.match(info, want, name)
  }
  t.ok(Math.abs(sourceInfoFromProbe({ streams: [video()], format: fmt }).fps - 29.97) < 0.001)
})

t.test('skips cover art and maps the real video and audio stream indexes', async (t) => {
  const info = sourceInfoFromProbe({
    streams: [
      { index: 0, codec_type: 'video', codec_name: 'mjpeg', width: 600, height: 600, disposition: { attached_pic: 1 } },
      { index: 1, codec_type: 'audio', codec_name: 'aac', channels: 6 },
      video({ index: 2 }),
    ],
    format: fmt,
  })
  t.equal(info.videoStreamIndex, 2)
  t.equal(info.audioStreamIndex, 1)
  t.equal(info.audioChannels, 6)
})

t.test('refuses what is not a video with ERR_TRANSCODE_NOT_VIDEO', async (t) => {
  const table: [string, Parameters<typeof sourceInfoFromProbe>[0]][] = [
    ['audio only', { streams: [{ index: 0, codec_type: 'audio' }], format: fmt }],
    [
      'music with cover art',
      {
        streams: [
          { index: 0, codec_type: 'audio' },
          { index: 1, codec_type: 'video', disposition: { attached_pic: 1 } },
        ],
        format: fmt,
      },
    ],
    ['still image', { streams: [video({ codec_name: 'png' })], format: { format_name: 'png_pipe' } }],
    ['zero duration', { streams: [video()], format: { ...fmt, duration: '0' } }],
    ['nothing', {}],
  ]
  for (const [name, json] of table) t.throws(() => sourceInfoFromProbe(json), { code: 'ERR_TRANSCODE_NOT_VIDEO' }, name)
})

t.test('real files that are not decodable videos fail with coded non-retryable errors', async (t) => {
  const table: [string, string, string][] = [
    ['audio-only m4a', makeAudioOnly(tmp.dir), 'ERR_TRANSCODE_NOT_VIDEO'],
    ['png image', makeImage(tmp.dir), 'ERR_TRANSCODE_NOT_VIDEO'],
    ['random bytes', makeGarbage(tmp.dir), 'ERR_TRANSCODE_CORRUPT'],
    ['truncated mp4', makeTruncated(tmp.dir, clip), 'ERR_TRANSCODE_CORRUPT'],
    ['valid header, noise for data', makeCorruptData(tmp.dir), 'ERR_TRANSCODE_CORRUPT'],
  ]
  for (const [name, path, code] of table) {
    const err = await probe(path).catch((e: unknown) => e)
    t.match(err, { code, status: 422 }, name)
    t.equal(isRetryableTranscodeError(err), false, `${name} is not retryable`)
  }
})

t.test('a missing source file is not a verdict on the video', async (t) => {
  const err = await probe(`${tmp.dir}/missing.mp4`).catch((e: unknown) => e)
  t.equal(isRetryableTranscodeError(err), true)
})
