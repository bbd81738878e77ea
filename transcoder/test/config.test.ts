import t from 'tap'
import { join } from 'node:path'
import { EXAMPLE_SECRETS_ENV, ROOT } from '../../shared/testing/index.js'
import { loadTranscoderConfig } from '../src/config.js'

t.test('the example transcoder config loads once its placeholder token is replaced', async (t) => {
  const file = join(ROOT, 'config', 'transcoder.example.json')
  t.throws(() => loadTranscoderConfig({ file, env: {} }), /token is an example placeholder/)
  const c = loadTranscoderConfig({ file, env: EXAMPLE_SECRETS_ENV })
  t.equal(c.origin, 'http://origin.internal:8080')
  t.equal(c.leaseMs, 30_000, 'defaults fill what the file leaves out')
  t.equal(c.maxJobs, 0)
})

t.test('a transcoder without origin, token or workDir is refused, naming each', async (t) => {
  t.throws(
    () => loadTranscoderConfig({ overrides: {}, env: {} }),
    /origin is required.*token is required.*workDir is required/,
  )
})

t.test('bus.kind kafka needs its brokers', async (t) => {
  const base = { origin: 'http://127.0.0.1:1', token: 'a-worker-token-0123456789abcdef-0123456789', workDir: '/tmp/w' }
  t.equal(loadTranscoderConfig({ overrides: base, env: {} }).bus.kind, 'embedded')
  t.throws(
    () => loadTranscoderConfig({ overrides: { ...base, bus: { kind: 'kafka' } }, env: {} }),
    /bus\.kafka\.brokers is required when bus\.kind is kafka/,
  )
  const c = loadTranscoderConfig({
    overrides: { ...base, bus: { kind: 'kafka', kafka: { brokers: '127.0.0.1:9092' } } },
    env: {},
  })
  t.equal(c.bus.kafka.sessionTimeoutMs, 45_000)
})

t.test('ffmpegThreads defaults to 0 (ffmpeg chooses) and takes a count from the environment', async (t) => {
  const base = { origin: 'http://127.0.0.1:1', token: 'a-worker-token-0123456789abcdef-0123456789', workDir: '/tmp/w' }
  t.equal(loadTranscoderConfig({ overrides: base, env: {} }).ffmpegThreads, 0)
  t.equal(loadTranscoderConfig({ overrides: base, env: { VCDN_FFMPEG_THREADS: '1' } }).ffmpegThreads, 1)
  t.throws(() => loadTranscoderConfig({ overrides: { ...base, ffmpegThreads: -1 }, env: {} }), /ffmpegThreads/)
})
