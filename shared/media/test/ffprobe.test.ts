// The reading of ffprobe's JSON and ffmpeg's progress that the origin and the transcoder share.
import t from 'tap'
import { durationOf, ffprobeArgs, firstSecondDecodeArgs, framesFromProgress, mainVideoStream, ratio } from '../index.js'

void t.test('ratio reads num/den, num:den and plain numbers; absent or bad is 0', async (t) => {
  t.equal(ratio('30000/1001'), 30000 / 1001)
  t.equal(ratio('4:3'), 4 / 3)
  t.equal(ratio('12.5'), 12.5)
  t.equal(ratio(undefined), 0)
  t.equal(ratio(''), 0)
  t.equal(ratio('25/0'), 0, 'a zero denominator is not a rate')
  t.equal(ratio('abc'), 0)
  t.equal(ratio('1/abc'), 0)
})

void t.test('the main video stream skips attached cover pictures and non-video streams', async (t) => {
  const json = {
    streams: [
      { index: 0, codec_type: 'audio' },
      { index: 1, codec_type: 'video', disposition: { attached_pic: 1 } },
      { index: 2, codec_type: 'video', width: 640, height: 360 },
    ],
  }
  t.equal(mainVideoStream(json)?.index, 2)
  t.equal(mainVideoStream({ streams: [{ codec_type: 'audio' }] }), undefined)
  t.equal(mainVideoStream({}), undefined)
})

void t.test('the duration is the container’s, else the stream’s', async (t) => {
  t.equal(durationOf({ format: { duration: '12.5' } }, { duration: '3' }), 12.5)
  t.equal(durationOf({ format: {} }, { duration: '3' }), 3)
  t.equal(durationOf({}, {}), 0)
})

void t.test('progress lines give the last frame count; other lines keep it', async (t) => {
  let frames = 0
  for (const line of ['fps=0.0', 'frame=12', 'out_time=00:00:00.5', 'frame=25', 'frame=', 'progress=end'])
    frames = framesFromProgress(line, frames)
  t.equal(frames, 25)
})

void t.test('the argv names the file as one argument and the stream to decode', async (t) => {
  const hostile = '/tmp/a b;$(rm -rf x).mp4'
  t.same(ffprobeArgs(hostile).slice(-2), ['-i', hostile])
  const decode = firstSecondDecodeArgs(hostile, 3)
  t.equal(decode[decode.indexOf('-i') + 1], hostile)
  t.equal(decode[decode.indexOf('-map') + 1], '0:3')
  t.equal(decode[decode.indexOf('-t') + 1], '1', 'only the first second decodes')
})
