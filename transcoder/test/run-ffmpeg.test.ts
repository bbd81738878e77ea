import t from 'tap'
import { isVcdnError } from '../../shared/errors/index.js'
import { isRetryableTranscodeError } from '../src/errors.js'
import { createProgressParser, FfmpegExitError, runFfmpeg } from '../src/run-ffmpeg.js'
import { VcdnError } from '../../shared/errors/index.js'

// An input that never ends: only a signal or a timeout stops it.
const ENDLESS = [
  '-v',
  'error',
  '-nostdin',
  '-re',
  '-f',
  'lavfi',
  '-i',
  'testsrc2=size=64x64:rate=10',
  '-f',
  'null',
  '-',
]

t.test('parses -progress blocks into a monotonic fraction of the duration', async (t) => {
  const seen: number[] = []
  const feed = createProgressParser(8, (f) => seen.push(f))
  for (const line of [
    'frame=1',
    'out_time_us=2000000',
    'progress=continue',
    'out_time_us=N/A',
    'progress=continue',
    'out_time_us=6000000',
    'progress=continue',
    'out_time_us=4000000',
    'progress=continue',
    'progress=end',
  ]) {
    feed(line)
  }
  t.same(seen, [0.25, 0.75, 1])
})

t.test('a non-zero exit is a retryable ERR_TRANSCODE_FFMPEG carrying the stderr tail', async (t) => {
  const err = await runFfmpeg({
    bin: 'ffmpeg',
    args: ['-v', 'error', '-i', '/nonexistent/input.mp4', '-f', 'null', '-'],
  }).catch((e: unknown) => e)
  t.ok(isVcdnError(err))
  t.equal((err as VcdnError).code, 'ERR_TRANSCODE_FFMPEG')
  t.ok((err as VcdnError).cause instanceof FfmpegExitError)
  t.match(((err as VcdnError).cause as FfmpegExitError).stderrTail, /No such file/)
  t.equal(isRetryableTranscodeError(err), true)
})

t.test('a missing binary is a coded error, not a crash', async (t) => {
  await t.rejects(runFfmpeg({ bin: 'ffmpeg-does-not-exist', args: [] }), { code: 'ERR_TRANSCODE_FFMPEG' })
})

t.test('an abort kills ffmpeg and rejects promptly', async (t) => {
  const ac = new AbortController()
  const lines: string[] = []
  const run = runFfmpeg({
    bin: 'ffmpeg',
    args: [...ENDLESS.slice(0, -3), '-progress', 'pipe:1', '-f', 'null', '-'],
    signal: ac.signal,
    onStdoutLine: (l) => lines.push(l),
  })
  // Wait until ffmpeg is really running (its first progress block), then abort.
  const deadline = Date.now() + 10_000
  while (!lines.some((l) => l.startsWith('progress=')) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20))
  const started = Date.now()
  ac.abort(new Error('shutdown'))
  await t.rejects(run, { code: 'ERR_TRANSCODE_ABORTED' })
  t.ok(Date.now() - started < 3000, 'rejected within the kill grace')
})

t.test('an already aborted signal never spawns', async (t) => {
  await t.rejects(runFfmpeg({ bin: 'ffmpeg', args: ENDLESS, signal: AbortSignal.abort() }), {
    code: 'ERR_TRANSCODE_ABORTED',
  })
})

t.test('a timeout kills ffmpeg with ERR_TRANSCODE_TIMEOUT, SIGKILL after the grace', async (t) => {
  const started = Date.now()
  await t.rejects(runFfmpeg({ bin: 'ffmpeg', args: ENDLESS, timeoutMs: 300, killGraceMs: 200 }), {
    code: 'ERR_TRANSCODE_TIMEOUT',
  })
  t.ok(Date.now() - started < 3000)
})

t.test('streams files to stdin in order', async (t) => {
  const lines: string[] = []
  // ffprobe reading this very test file as raw text finds no media: it proves stdin was read.
  const err = await runFfmpeg({
    bin: 'ffprobe',
    args: ['-v', 'error', '-i', 'pipe:0'],
    stdinFiles: [new URL(import.meta.url).pathname],
    onStdoutLine: (l) => lines.push(l),
  }).catch((e: unknown) => e)
  t.match((err as VcdnError).message, /pipe:0|Invalid data/)
})

t.test('validates its options', async (t) => {
  t.throws(() => runFfmpeg({ bin: '', args: [] }), /options\.bin/)
  t.throws(() => runFfmpeg({ bin: 'ffmpeg', args: [1 as never] }), /options\.args/)
  t.throws(() => runFfmpeg({ bin: 'ffmpeg', args: [], timeoutMs: -1 }), /options\.timeoutMs/)
})
